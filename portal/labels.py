"""Translated labels for codes stored in the database."""

from flask_babel import lazy_gettext as _l

RELATIONSHIP = {
    "head": _l("Head of household"),
    "spouse": _l("Spouse"),
    "child": _l("Child"),
    "parent": _l("Parent"),
    "grandchild": _l("Grandchild"),
    "grandparent": _l("Grandparent"),
    "sibling": _l("Sibling"),
    "other": _l("Other"),
}
STATUS = {"active": _l("Resident"), "moved_out": _l("Moved out"), "deceased": _l("Deceased")}
SEX = {1: _l("Male"), 2: _l("Female"), 9: _l("Not applicable")}
SEARCH = _l("search")


def purpose_label(code: str) -> str:
    from portal.staff.purposes import PURPOSES

    head, _, tail = code.partition(":")
    label = PURPOSES.get(head.strip())
    if label is None:
        return code
    return f"{label}（{SEARCH if tail.strip() == 'search' else tail.strip()}）" if tail else str(label)


def register(app) -> None:
    app.jinja_env.globals.update(
        relationship_label=lambda c: RELATIONSHIP.get(c, c),
        status_label=lambda c: STATUS.get(c, c),
        sex_label=lambda c: SEX.get(c, c),
        purpose_label=purpose_label,
    )
