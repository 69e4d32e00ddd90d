"""The resident's access history (情報提供等記録表示) and the auditors' view."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.access import service as access
from portal.authz import allow

bp = Blueprint("access", __name__)
TOKYO = ZoneInfo("Asia/Tokyo")

ITEM_LABELS = {
    "basic4": _l("Name, address, date of birth, sex"),
    "household": _l("Household members"),
    "register_status": _l("Register status (moves)"),
    "attributes": _l("Care, disability and pregnancy information"),
    "individual_number": _l("Individual Number (マイナンバー)"),
    "contact": _l("Contact details"),
    "card_credential": _l("Card certificate link"),
    "certificate": _l("Issued certificate"),
    "prefiling": _l("Pre-filed application"),
    "booking": _l("Appointment"),
    "points": _l("Citizen points"),
    "library": _l("Library link"),
    "shelter": _l("Shelter check-in"),
}
ACTOR_LABELS = {
    "staff": _l("City staff"),
    "terminal": _l("City terminal"),
    "partner": _l("Partner"),
    "job": _l("Automatic process"),
    "resident": _l("You"),
}


def _parse_day(name: str) -> tuple[date | None, str | None]:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None, None
    try:
        return date.fromisoformat(raw), None
    except ValueError:
        return None, _("Enter a date like 2026-04-01.")


def _bounds(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    start = datetime.combine(since, time(), TOKYO).astimezone(UTC) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), TOKYO).astimezone(UTC) if until else None
    return start, end


def _filters():
    since, err1 = _parse_day("since")
    until, err2 = _parse_day("until")
    errors = {k: v for k, v in (("since", err1), ("until", err2)) if v}
    if since and until and since > until:
        errors["until"] = _("The end date is before the start date.")
    return since, until, errors


@bp.route("/me/access-history")
@allow("resident")
def history():
    since, until, errors = _filters()
    rows = []
    if not errors:
        start, end = _bounds(since, until)
        rows = access.history_for(current_user.resident_id, since=start, until=end)
    return render_template(
        "access/history.html",
        rows=rows,
        since=since,
        until=until,
        errors=errors,
        item_labels=ITEM_LABELS,
        actor_labels=ACTOR_LABELS,
        tz=TOKYO,
    )


@bp.route("/staff/audit")
@allow("auditor")
def audit():
    since, until, errors = _filters()
    resident_id = request.args.get("resident", type=int)
    actor_id = request.args.get("actor", "").strip() or None
    rows = []
    if not errors:
        start, end = _bounds(since, until)
        rows = access.search(resident_id=resident_id, actor_id=actor_id, since=start, until=end)
    return render_template(
        "access/audit.html",
        rows=rows,
        since=since,
        until=until,
        errors=errors,
        resident_id=resident_id,
        actor_id=actor_id or "",
        item_labels=ITEM_LABELS,
        tz=TOKYO,
    )
