"""Library link (図書館カード連携): a resident's card, linked at a library terminal, stands for their
library patron number — and for nothing else (never the Individual Number)."""
