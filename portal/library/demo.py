"""Demo data for the library link: the city library (its terminals are registered by an admin)."""

from __future__ import annotations

from portal.extensions import db
from portal.library.models import Library


def load() -> None:
    db.session.add(Library(code="MINATO-LIB", name_ja="みなと市立図書館", name_en="Minato City Library"))
    db.session.flush()
