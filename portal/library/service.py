"""Library links: made at a library terminal with the resident's card and PIN, looked up by card.

A look-up answers the patron number and nothing else: the library never learns the resident's
name, address or Individual Number from the city (least data). Every link and look-up writes an
access record. No flask.request here."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.access import service as access
from portal.cardid.models import CardCredential
from portal.extensions import db
from portal.library.models import Library, LibraryLink
from portal.models_base import utcnow

PURPOSE_LINK = "library_link"
PURPOSE_LOOKUP = "library_lookup"
_PATRON = re.compile(r"^[0-9A-Z]{4,16}$")

MESSAGES = {
    "patron_format": _l("A patron number has 4 to 16 letters and digits."),
    "patron_taken": _l("This patron number is linked to another card. Check the number."),
    "library_not_linked": _l(
        "This card is not linked to a library patron number yet. Link it with the resident's consent."
    ),
    "library_unknown": _l("Choose the library and the card reader first."),
    "link_unknown": _l("This library link was not found."),
}


class LibraryError(Exception):
    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status

    @property
    def message(self) -> str:
        return str(MESSAGES.get(self.code, self.code))


def normalise_patron_number(raw: str) -> str:
    """Upper case, without spaces and hyphens (as printed on library cards: 0012-3456)."""
    clean = re.sub(r"[\s\-‐－ー]", "", raw or "").upper()
    clean = clean.translate({c: c - 0xFEE0 for c in range(0xFF10, 0xFF5B)})  # full-width → ASCII
    if not _PATRON.match(clean):
        raise LibraryError("patron_format")
    return clean


def libraries() -> list[Library]:
    return list(db.session.scalars(select(Library).order_by(Library.code)))


def _link_of(library_id: int, resident_id: int) -> LibraryLink | None:
    return db.session.scalar(
        select(LibraryLink).where(
            LibraryLink.library_id == library_id, LibraryLink.resident_id == resident_id
        )
    )


def link(
    library: Library, credential: CardCredential, patron_number: str, *, actor: access.Actor
) -> LibraryLink:
    """Link (or re-link to another number) the card holder's patron number at this library."""
    number = normalise_patron_number(patron_number)
    taken = db.session.scalar(
        select(LibraryLink).where(LibraryLink.library_id == library.id, LibraryLink.patron_number == number)
    )
    if taken is not None and taken.resident_id != credential.resident_id:
        raise LibraryError("patron_taken", 409)
    row = _link_of(library.id, credential.resident_id)
    if row is None:
        row = LibraryLink(library_id=library.id, resident_id=credential.resident_id)
        db.session.add(row)
    row.patron_number = number
    row.credential_id = credential.id
    row.linked_at, row.relinked_at = utcnow(), None
    row.linked_by, row.terminal_code = actor.id, actor.terminal_id or ""
    db.session.flush()
    access.record(
        actor,
        resident_id=credential.resident_id,
        data_items=["library", "card_credential"],
        purpose="library_link",
    )
    return row


def lookup(library: Library, credential: CardCredential, *, actor: access.Actor) -> str:
    """The patron number for this card at this library, and only that."""
    row = _link_of(library.id, credential.resident_id)
    if row is None:
        raise LibraryError("library_not_linked", 404)
    if row.credential_id != credential.id:
        # A renewed certificate: the card (a new credential of the same resident, linked again at a
        # counter, which superseded the old one) carries the library link over.
        row.credential_id, row.relinked_at = credential.id, utcnow()
    row.last_used_at = utcnow()
    access.record(actor, resident_id=credential.resident_id, data_items=["library"], purpose="library_lookup")
    return row.patron_number


def patron_number_linked(library: Library, credential: CardCredential) -> str:
    """The number a link made with this card just now holds (shown once to the clerk who made it)."""
    row = _link_of(library.id, credential.resident_id)
    if row is None or row.credential_id != credential.id:
        raise LibraryError("library_not_linked", 404)
    return row.patron_number


def links_of(resident_id: int) -> list[LibraryLink]:
    return list(
        db.session.scalars(
            select(LibraryLink).where(LibraryLink.resident_id == resident_id).order_by(LibraryLink.linked_at)
        )
    )


def remove(link_id: int, resident_id: int) -> None:
    row = db.session.get(LibraryLink, link_id)
    if row is None or row.resident_id != resident_id:
        raise LibraryError("link_unknown", 404)
    db.session.delete(row)
