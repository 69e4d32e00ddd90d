"""Merge translations from a Python dict file into the Japanese catalogue.

Usage: .venv/bin/python scripts/i18n_fill.py TRANSLATIONS.py|OTHER.po
A .py file holds a dict JA mapping English msgids to Japanese; a .po file (for example another
branch's catalogue, `git show branch:portal/translations/ja/LC_MESSAGES/messages.po`) gives its
translated, non-fuzzy entries, so two branches' catalogues merge without hand-editing.
`make translations` extracts and updates the catalogue
first; this fills what a translator wrote. Untranslated entries fail tests/portal/test_i18n.py.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "portal/translations/ja/LC_MESSAGES/messages.po"


def _table(source: str) -> dict[str, str]:
    if not source.endswith(".po"):
        return runpy.run_path(source)["JA"]
    with open(source, "rb") as fh:
        other = read_po(fh, locale="ja")
    return {
        m.id: m.string
        for m in other
        if m.id and isinstance(m.id, str) and m.string and "fuzzy" not in m.flags
    }


def main(source: str) -> None:
    table = _table(source)
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="ja")
    filled = 0
    for message in catalog:
        if message.id and message.id in table:
            message.string = table[message.id]
            message.flags.discard("fuzzy")
            filled += 1
    with PO.open("wb") as fh:
        write_po(fh, catalog, width=100, omit_header=False)
    print(f"filled {filled} of {len([m for m in catalog if m.id])}")


if __name__ == "__main__":
    main(sys.argv[1])
