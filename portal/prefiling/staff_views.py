"""Staff side of web pre-filing: the processing centre (queue, review, correction, ready), the
express counter (find by reservation number, QR or card → open → complete) and the statistics.

Every view of a pre-filing writes an access record (item ``prefiling``). Changes carry the
``version`` the page was rendered with: a second clerk acting on a stale page gets a 409
"changed meanwhile, reload", never a silent overwrite.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.access import service as access
from portal.authz import allow
from portal.extensions import db
from portal.models_base import utcnow
from portal.notices.service import TOKYO
from portal.prefiling import service
from portal.prefiling.models import Attachment, PreFiling, PreFilingEvent
from portal.registry.models import Resident, Ward

bp = Blueprint("prefiling_staff", __name__, template_folder="templates")

PAGE_SIZE = 50
QUEUE_STATUSES = ("submitted", "correction_requested", "ready", "arrived", "completed", "withdrawn")
# What the express counter lists for a resident: what can be opened now, and what is open.
COUNTER_STATUSES = ("ready", "submitted", "arrived")

STATUS_LABELS = {
    "draft": _l("Draft"),
    "submitted": _l("Submitted"),
    "correction_requested": _l("Correction requested"),
    "ready": _l("Ready for the counter"),
    "arrived": _l("At the counter"),
    "completed": _l("Completed"),
    "withdrawn": _l("Withdrawn"),
}
ACTION_LABELS = {
    "created": _l("Started"),
    "saved": _l("Saved"),
    "signed": _l("Signed with the card"),
    **STATUS_LABELS,
}
_NUMBER_IN_TEXT = re.compile(r"(\d{4})[-\s]?(\d{4})[-\s]?([A-Za-z])")


# --- the catalogue (names and labels; the code and the raw keys when a definition is missing) ----


def _lang() -> str:
    return "ja" if str(get_locale()) == "ja" else "en"


def _pick(text, lang: str, fallback: str = "") -> str:
    if isinstance(text, dict):
        return text.get(lang) or text.get("ja") or text.get("en") or fallback
    return str(text) if text else fallback


@dataclass
class ProcedureInfo:
    code: str
    name_ja: str
    name_en: str
    defn: dict | None = None

    def name(self) -> str:
        return self.name_ja if _lang() == "ja" else self.name_en


def _definition(code: str, version: int | None) -> dict | None:
    try:
        from portal.prefiling import catalogue

        return catalogue.get(code, version) or catalogue.get(code)
    except Exception:  # no catalogue yet, or a broken file: show the code and the raw keys
        return None


def procedure_info(code: str, version: int | None) -> ProcedureInfo:
    defn = _definition(code, version)
    if not defn:
        return ProcedureInfo(code, code, code)
    name = defn.get("name") or {}
    ja = _pick(name, "ja", code)
    return ProcedureInfo(code, ja, _pick(name, "en", ja), defn)


def _show(field: dict, value, lang: str) -> str:
    try:
        from portal.prefiling.forms import display
    except ImportError:
        return display_value(value)
    if field.get("type") == "group" and isinstance(value, list):
        subs = field.get("fields", [])
        rows = [
            ", ".join(
                f"{_pick(s.get('label'), lang, s['name'])}: {_show(s, row.get(s['name']), lang)}"
                for s in subs
                if isinstance(row, dict) and row.get(s["name"]) not in (None, "")
            )
            for row in value
        ]
        return "; ".join(r for r in rows if r) or "—"
    try:
        text = display(field, value, lang)
    except Exception:  # a value the definition does not expect: show it as stored
        text = display_value(value)
    return text if text not in ("", None) else "—"


def field_rows(info: ProcedureInfo, values: dict) -> list[tuple[str, str, str]]:
    """(section, label, value) in the form's order; keys the definition does not know at the end."""
    lang, rows, seen = _lang(), [], set()
    for section in (info.defn or {}).get("sections", []):
        title = _pick(section.get("title"), lang, section.get("id", ""))
        for item in section.get("fields", []):
            name = item.get("name")
            if name in values:
                seen.add(name)
                rows.append((title, _pick(item.get("label"), lang, name), _show(item, values[name], lang)))
    rows += [("", k, display_value(v)) for k, v in values.items() if k not in seen]
    return rows


def display_value(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list):
        return "; ".join(display_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {display_value(v)}" for k, v in value.items())
    return str(value)


def access_purpose(code: str, detail: str) -> str:
    """The staff purpose (利用目的) a procedure serves, for the access record."""
    c = code.lower()
    if "child" in c or "jidou" in c:
        head = "child_allowance"
    elif "seal" in c or "inkan" in c:
        head = "seal_registration"
    elif "certificate" in c or "copy" in c or "juminhyo" in c:
        head = "certificate"
    elif any(w in c for w in ("mov", "ten", "transfer", "relocat")):
        head = "moving"
    else:
        head = "identity_check"
    return f"{head}: {detail}"


# --- helpers -------------------------------------------------------------------------------------


def tokyo_time(at: datetime | None) -> str:
    if at is None:
        return ""
    return at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M")


def reservation(number: str | None) -> str:
    return service.format_reservation_no(number) if number else "—"


@bp.context_processor
def _helpers():
    return {
        "tokyo_time": tokyo_time,
        "reservation": reservation,
        "status_name": lambda s: STATUS_LABELS.get(s, s),
        "action_name": lambda a: ACTION_LABELS.get(a, a),
        "display_value": display_value,
        "minutes_between": service.minutes_between,
    }


def _actor():
    from portal.staff.views import staff_actor

    return staff_actor()


def _actor_id() -> str:
    return f"staff:{_actor().id}"


def _get(prefiling_id: int) -> PreFiling:
    prefiling = db.session.get(PreFiling, prefiling_id)
    if prefiling is None or prefiling.status == "draft":
        abort(404)
    return prefiling


def _conflict(prefiling_id: int, back: str):
    db.session.rollback()
    current = db.session.get(PreFiling, prefiling_id)
    return (
        render_template(
            "prefiling/staff_conflict.html",
            back=back,
            status=current.status if current else None,
        ),
        409,
    )


def _expected_version() -> int:
    try:
        return int(request.form.get("version", ""))
    except ValueError:
        abort(400)


def _record_view(prefiling: PreFiling, detail: str) -> None:
    access.record(
        _actor(),
        resident_id=prefiling.resident_id,
        data_items=["basic4", "prefiling"],
        purpose=access_purpose(prefiling.procedure_code, detail),
    )


def _notify(prefiling: PreFiling, status_code: str, reference: str) -> int | None:
    """Tell the resident in the caller's transaction; returns the notice id to hand to the channels."""
    from portal.notices.models import Delivery
    from portal.notices.triggers import notify_procedure_status

    info = procedure_info(prefiling.procedure_code, prefiling.procedure_version)
    delivery_id = notify_procedure_status(
        prefiling.resident_id,
        info.name_ja,
        info.name_en,
        status_code,
        reference=reference,
        commit=False,
    )
    if delivery_id is None:
        return None
    return db.session.get(Delivery, delivery_id).notice_id


def _send(notice_id: int | None) -> None:
    if notice_id is None:
        return
    from portal.notices import delivery

    try:
        delivery.schedule_send(notice_id)
    except Exception:  # the inbox row is committed; a channel failure must not undo the change
        current_app.logger.exception("prefiling: sending notice %s to the channels failed", notice_id)


def _change(prefiling_id: int, to: str, back: str, *, note: str | None = None, notify: str | None = None):
    """Apply one status change with optimistic locking; returns a response on conflict, else None."""
    prefiling = _get(prefiling_id)
    if prefiling.version != _expected_version():
        return _conflict(prefiling_id, back), None
    reference = f"prefiling:{prefiling.id}"
    if to == "correction_requested":  # each request for a correction is told
        count = db.session.scalar(
            select(db.func.count())
            .select_from(PreFilingEvent)
            .where(PreFilingEvent.prefiling_id == prefiling.id, PreFilingEvent.action == to)
        )
        reference = f"{reference}:correction:{count + 1}"
    try:
        service.transition(prefiling, to, actor=_actor_id(), note=note)
    except service.PreFilingError:
        return _conflict(prefiling_id, back), None
    notice_id = _notify(prefiling, notify, reference) if notify else None
    db.session.commit()
    _send(notice_id)
    return None, prefiling


# --- processing centre ---------------------------------------------------------------------------


def _parse_date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _tokyo_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), TOKYO).astimezone(UTC)


def _procedure_choices() -> list[tuple[str, str]]:
    try:
        from portal.prefiling import catalogue

        codes = [d["code"] for d in catalogue.latest()]
    except Exception:  # no catalogue yet: the codes in use
        codes = sorted(db.session.scalars(select(PreFiling.procedure_code).distinct()))
    return [(c, procedure_info(c, None).name()) for c in codes]


@bp.route("/staff/prefilings")
@allow("processing")
def queue():
    args = request.args
    status = args.get("status", "submitted")
    procedure = args.get("procedure", "")
    ward = args.get("ward", "")
    since, until = _parse_date(args.get("from")), _parse_date(args.get("to"))
    try:
        page = max(1, int(args.get("page", "1")))
    except ValueError:
        page = 1
    stmt = (
        select(PreFiling, Ward)
        .join(Resident, Resident.id == PreFiling.resident_id)
        .join(Ward, Ward.id == Resident.ward_id)
    )
    if status in QUEUE_STATUSES:
        stmt = stmt.where(PreFiling.status == status)
    else:
        status = ""
        stmt = stmt.where(PreFiling.status != "draft")
    if procedure:
        stmt = stmt.where(PreFiling.procedure_code == procedure)
    if ward:
        stmt = stmt.where(Ward.code == ward)
    if since:
        stmt = stmt.where(PreFiling.submitted_at >= _tokyo_midnight(since))
    if until:
        stmt = stmt.where(PreFiling.submitted_at < _tokyo_midnight(until + timedelta(days=1)))
    stmt = stmt.order_by(PreFiling.submitted_at.asc(), PreFiling.id.asc())
    rows = list(db.session.execute(stmt.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    filters = {"status": status, "procedure": procedure, "ward": ward, "from": args.get("from", "")}
    filters["to"] = args.get("to", "")
    return render_template(
        "prefiling/staff_queue.html",
        rows=[(p, w, procedure_info(p.procedure_code, p.procedure_version)) for p, w in rows],
        filters=filters,
        page=page,
        more=more,
        statuses=QUEUE_STATUSES,
        procedures=_procedure_choices(),
        wards=list(db.session.scalars(select(Ward).order_by(Ward.code))),
        date_error=bool((args.get("from") and not since) or (args.get("to") and not until)),
    )


def _detail_context(prefiling: PreFiling) -> dict:
    info = procedure_info(prefiling.procedure_code, prefiling.procedure_version)
    values = service.values(prefiling)
    return {
        "p": prefiling,
        "info": info,
        "person": prefiling.resident,
        "fields": field_rows(info, values),
        "attachments": list(
            db.session.scalars(
                select(Attachment).where(Attachment.prefiling_id == prefiling.id).order_by(Attachment.id)
            )
        ),
        "events": list(
            db.session.scalars(
                select(PreFilingEvent)
                .where(PreFilingEvent.prefiling_id == prefiling.id)
                .order_by(PreFilingEvent.at, PreFilingEvent.id)
            )
        ),
    }


@bp.route("/staff/prefilings/<int:prefiling_id>")
@allow("processing")
def review(prefiling_id: int):
    prefiling = _get(prefiling_id)
    _record_view(prefiling, "prefiling_review")
    context = _detail_context(prefiling)
    db.session.commit()
    return render_template("prefiling/staff_review.html", **context)


@bp.route("/staff/prefilings/<int:prefiling_id>/correction", methods=["POST"])
@allow("processing")
def request_correction(prefiling_id: int):
    note = request.form.get("note", "").strip()
    back = url_for(".review", prefiling_id=prefiling_id)
    if not note:
        flash(_("Say what the resident must correct."), "error")
        return redirect(back)
    conflict, _p = _change(prefiling_id, "correction_requested", back, note=note, notify="action_required")
    if conflict:
        return conflict
    flash(_("The resident has been asked to correct the pre-filing."), "success")
    return redirect(back)


@bp.route("/staff/prefilings/<int:prefiling_id>/ready", methods=["POST"])
@allow("processing")
def mark_ready(prefiling_id: int):
    back = url_for(".review", prefiling_id=prefiling_id)
    conflict, _p = _change(prefiling_id, "ready", back, notify="ready")
    if conflict:
        return conflict
    flash(_("Marked ready: the resident has been told to come to the counter."), "success")
    return redirect(back)


@bp.route("/staff/prefilings/<int:prefiling_id>/attachments/<int:attachment_id>")
@allow("processing", "counter")
def attachment(prefiling_id: int, attachment_id: int):
    prefiling = _get(prefiling_id)
    row = db.session.get(Attachment, attachment_id)
    if row is None or row.prefiling_id != prefiling.id or "/" in row.stored_name or ".." in row.stored_name:
        abort(404)
    try:
        from portal.prefiling import attachments
    except ImportError:  # the resident side's storage has not landed: its default folder
        attachments = None
    folder = (
        attachments.directory()
        if attachments is not None
        else Path(
            current_app.config.get("PREFILING_ATTACHMENT_DIR")
            or Path(current_app.instance_path) / "attachments"
        )
    )
    if not (folder / row.stored_name).is_file():
        abort(404)
    _record_view(prefiling, "prefiling_attachment")
    db.session.commit()
    if attachments is not None:
        return attachments.send(row)
    response = send_file(
        folder / row.stored_name, mimetype=row.content_type, as_attachment=True, download_name=row.filename
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- express counter -----------------------------------------------------------------------------


def _number_from(text: str) -> str | None:
    """A reservation number typed or read from a QR code (plain, or inside a URL)."""
    number = service.normalise_reservation_no(text)
    if number is None:
        m = _NUMBER_IN_TEXT.search(text or "")
        if m:
            number = service.normalise_reservation_no("".join(m.groups()))
    return number


def _resident_list(resident_id: int) -> list[PreFiling]:
    return list(
        db.session.scalars(
            select(PreFiling)
            .where(PreFiling.resident_id == resident_id, PreFiling.status.in_(COUNTER_STATUSES))
            .order_by(PreFiling.submitted_at, PreFiling.id)
        )
    )


def _express_page(*, typed: str = "", error: str | None = None, person=None, found=None, status: int = 200):
    prefilings = _resident_list(person.id) if person is not None else []
    if person is not None:
        access.record(
            _actor(),
            resident_id=person.id,
            data_items=["basic4", "prefiling"],
            purpose="identity_check: express_counter",
        )
        db.session.commit()
    return (
        render_template(
            "prefiling/staff_express.html",
            typed=typed,
            error=error,
            person=person,
            found=found,
            prefilings=[(p, procedure_info(p.procedure_code, p.procedure_version)) for p in prefilings],
        ),
        status,
    )


@bp.route("/staff/express")
@allow("counter")
def express():
    typed = request.args.get("no", "").strip()
    if not typed:
        return _express_page()
    number = _number_from(typed)
    if number is None:
        return _express_page(
            typed=typed,
            error=_(
                "This is not a valid reservation number. It has 8 digits and a check letter "
                "(for example 1234-5678-K); check the digits and the letter at the end."
            ),
            status=400,
        )
    prefiling = db.session.scalar(select(PreFiling).where(PreFiling.reservation_no == number))
    if prefiling is None or prefiling.status == "draft":
        return _express_page(typed=typed, error=_("No pre-filing has this reservation number."), status=404)
    return _express_page(
        typed=service.format_reservation_no(number), person=prefiling.resident, found=prefiling
    )


@bp.route("/staff/express/card/<challenge_id>")
@allow("counter")
def express_card(challenge_id: str):
    """The pre-filings of the resident whose card was just scanned at this desk (the card-scan
    result links here); the same checks as the scan's own result page."""
    from portal.cardid.views import scanned_challenge

    ch = scanned_challenge(challenge_id, ("counter_scan",))
    return _express_page(person=db.session.get(Resident, ch.resident_id))


@bp.route("/staff/express/<int:prefiling_id>")
@allow("counter")
def express_detail(prefiling_id: int):
    prefiling = _get(prefiling_id)
    _record_view(prefiling, "express_counter")
    context = _detail_context(prefiling)
    db.session.commit()
    return render_template("prefiling/staff_express_detail.html", **context)


@bp.route("/staff/express/<int:prefiling_id>/open", methods=["POST"])
@allow("counter")
def express_open(prefiling_id: int):
    back = url_for(".express_detail", prefiling_id=prefiling_id)
    conflict, _p = _change(prefiling_id, "arrived", url_for(".express"))
    if conflict:
        return conflict
    return redirect(back)


@bp.route("/staff/express/<int:prefiling_id>/complete", methods=["POST"])
@allow("counter")
def express_complete(prefiling_id: int):
    back = url_for(".express_detail", prefiling_id=prefiling_id)
    conflict, prefiling = _change(prefiling_id, "completed", back, notify="completed")
    if conflict:
        return conflict
    minutes = service.minutes_between(prefiling.arrived_at, prefiling.completed_at)
    flash(_("Completed in %(minutes)s minutes at the counter.", minutes=f"{minutes:.1f}"), "success")
    return redirect(back)


def express_url_for_challenge(challenge_id: str) -> str:
    return url_for("prefiling_staff.express_card", challenge_id=challenge_id)


# --- statistics ----------------------------------------------------------------------------------


@dataclass
class Figures:
    completed: int = 0
    counter: list[float] = field(default_factory=list)
    to_ready: list[float] = field(default_factory=list)

    @staticmethod
    def _avg(xs):
        return sum(xs) / len(xs) if xs else None

    @property
    def counter_avg(self):
        return self._avg(self.counter)

    @property
    def counter_median(self):
        return statistics.median(self.counter) if self.counter else None

    @property
    def ready_avg(self):
        return self._avg(self.to_ready)

    @property
    def ready_median(self):
        return statistics.median(self.to_ready) if self.to_ready else None


def compute_stats(since: datetime, until: datetime | None = None) -> tuple[dict, Figures]:
    """Completed pre-filings by (procedure, Tokyo month of completion), and all of them together."""
    stmt = select(
        PreFiling.procedure_code,
        PreFiling.submitted_at,
        PreFiling.ready_at,
        PreFiling.arrived_at,
        PreFiling.completed_at,
    ).where(PreFiling.status == "completed", PreFiling.completed_at >= since)
    if until is not None:
        stmt = stmt.where(PreFiling.completed_at < until)
    groups: dict[tuple[str, str], Figures] = {}
    total = Figures()
    for code, submitted, ready, arrived, completed in db.session.execute(stmt):
        month = completed.astimezone(TOKYO).strftime("%Y-%m")
        for fig in (groups.setdefault((code, month), Figures()), total):
            fig.completed += 1
            at_counter = service.minutes_between(arrived, completed)
            if at_counter is not None:
                fig.counter.append(at_counter)
            to_ready = service.minutes_between(submitted, ready)
            if to_ready is not None:
                fig.to_ready.append(to_ready)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0]))), total


@bp.route("/staff/prefilings/stats")
@allow("processing", "counter", "admin")
def stats():
    try:
        months = min(60, max(1, int(request.args.get("months", "12"))))
    except ValueError:
        months = 12
    today = utcnow().astimezone(TOKYO).date()
    y, m = today.year, today.month - (months - 1)
    while m <= 0:
        y, m = y - 1, m + 12
    since = _tokyo_midnight(date(y, m, 1))
    groups, total = compute_stats(since)
    baseline = current_app.config.get("PREFILING_WALKIN_BASELINE_MINUTES")
    return render_template(
        "prefiling/staff_stats.html",
        groups=[(procedure_info(code, None), month, fig) for (code, month), fig in groups.items()],
        total=total,
        months=months,
        since=date(y, m, 1),
        baseline=baseline,
        baseline_source=current_app.config.get("PREFILING_WALKIN_BASELINE_SOURCE"),
    )


def init_app(app) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["prefiling_express_url"] = express_url_for_challenge
