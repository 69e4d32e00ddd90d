"""Access records (情報提供等記録): who read which of a resident's data, when and why."""
