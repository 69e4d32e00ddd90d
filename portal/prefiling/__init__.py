"""Web pre-filing (web事前手続き) and the express counter: residents fill in counter procedures
before they come; the processing centre reviews them; the counter finishes them in minutes."""
