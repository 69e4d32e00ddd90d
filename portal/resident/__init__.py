"""The resident's own pages."""
