"""Shelter check-in (避難所チェックイン): shelters opened for a disaster event, evacuees checked in by
card (online or queued offline in the terminal agent) or by hand, the roster with needs, moves
between shelters, and family members seeing where someone checked in."""
