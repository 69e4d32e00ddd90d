"""Shelter pages (staff role ``shelter``): shelters open for an event, shelter mode (check-in by
card through the terminal agent, by register search or for a person not registered), the roster
with head count and needs, one stay (needs, check-out, move); the resident's family page; and the
terminal API that takes check-ins (online or from the agent's offline queue)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.access import service as access
from portal.authz import allow
from portal.cardid import service as cardid
from portal.cardid.api import _origin
from portal.cardid.messages import message_for
from portal.cardid.models import Terminal
from portal.extensions import csrf, db, limiter
from portal.registry.models import Resident
from portal.shelter import service
from portal.shelter.models import DisasterEvent, Shelter, ShelterOpening, ShelterStay

TOKYO = ZoneInfo("Asia/Tokyo")
bp = Blueprint("shelter", __name__, template_folder="templates")
api = Blueprint("shelter_api", __name__, url_prefix="/api/shelter")

TERMINAL = "shelter_terminal"
NEED_LIMIT = 500


def _actor() -> access.Actor:
    return access.Actor(
        kind="staff",
        id=current_user.login_id,
        role="shelter",
        organisation=current_user.organisation,
        terminal_id=session.get(TERMINAL),
    )


def _opening(code: str):
    try:
        return service.opening_by_code(code)
    except service.ShelterError:
        abort(404)


def _needs(form) -> service.Needs:
    def clean(name: str) -> str | None:
        return (form.get(name) or "").strip()[:NEED_LIMIT] or None

    return service.Needs(clean("allergy"), clean("care"), clean("disability"))


@bp.route("/staff/shelter/")
@allow("shelter")
def index():
    openings = service.open_openings()
    counts = service.head_counts([o.id for o in openings])
    return render_template(
        "shelter/index.html",
        events=service.current_events(),
        shelters=service.shelters(),
        openings=openings,
        counts=counts,
        form=request.args,
        errors={},
    )


@bp.route("/staff/shelter/open", methods=["POST"])
@allow("shelter")
def open_shelter():
    event = db.session.get(DisasterEvent, request.form.get("event", type=int) or 0)
    shelter = db.session.get(Shelter, request.form.get("shelter", type=int) or 0)
    errors = {}
    capacity = request.form.get("capacity", "").strip()
    if event is None or event.ended_at is not None:
        errors["event"] = _("Choose the disaster event.")
    if shelter is None:
        errors["shelter"] = _("Choose the shelter.")
    if not capacity.isdigit():
        errors["capacity"] = str(service.MESSAGES["capacity"])
    if not errors:
        try:
            opening = service.open_shelter(event, shelter, int(capacity), by=current_user.login_id)
        except service.ShelterError as exc:
            errors["capacity" if exc.code == "capacity" else "shelter"] = exc.message
        else:
            db.session.commit()
            flash(_("The shelter is open."), "success")
            return redirect(url_for("shelter.mode", code=opening.code))
    openings = service.open_openings()
    return render_template(
        "shelter/index.html",
        events=service.current_events(),
        shelters=service.shelters(),
        openings=openings,
        counts=service.head_counts([o.id for o in openings]),
        form=request.form,
        errors=errors,
    ), 400


@bp.route("/staff/shelter/<code>/", methods=["GET", "POST"])
@allow("shelter")
def mode(code: str):
    """Shelter mode: check in by card, by register search, or a person not registered."""
    opening = _opening(code)
    terminals = list(
        db.session.scalars(
            select(Terminal).where(Terminal.kind == "shelter", Terminal.active).order_by(Terminal.code)
        )
    )
    if request.method == "POST":
        chosen = request.form.get("terminal", "")
        if chosen in {t.code for t in terminals}:
            session[TERMINAL] = chosen
        return redirect(url_for("shelter.mode", code=code))
    query = request.args.get("q", "").strip()
    found = service.search(query, actor=_actor()) if query else []
    if found:
        db.session.commit()
    return _mode_page(opening, terminals, query=query, found=found)


def _mode_page(opening, terminals=None, *, query="", found=(), guest=None, errors=None, status=200):
    if terminals is None:
        terminals = list(
            db.session.scalars(
                select(Terminal).where(Terminal.kind == "shelter", Terminal.active).order_by(Terminal.code)
            )
        )
    count = service.head_counts([opening.id]).get(opening.id, 0)
    return render_template(
        "shelter/mode.html",
        opening=opening,
        count=count,
        terminals=terminals,
        terminal=session.get(TERMINAL),
        agent_url=current_app.config["AGENT_ORIGIN"],
        query=query,
        found=found,
        guest=guest or {},
        errors=errors or {},
    ), status


@bp.route("/staff/shelter/<code>/count")
@allow("shelter")
def count(code: str):
    """The head count, for shelter mode to show after each card check-in."""
    opening = _opening(code)
    n = service.head_counts([opening.id]).get(opening.id, 0)
    return jsonify(
        count=n,
        capacity=opening.capacity,
        text=_("Checked in: %(n)d of %(cap)d", n=n, cap=opening.capacity),
        full=n >= opening.capacity,
    )


@bp.route("/staff/shelter/<code>/checkin", methods=["POST"])
@allow("shelter")
def check_in_by_hand(code: str):
    opening = _opening(code)
    resident = db.session.get(Resident, request.form.get("resident", type=int) or 0)
    if resident is None or resident.status != "active":
        abort(404)
    try:
        stay, moved_from = service.check_in(
            opening, resident=resident, method="hand", actor=_actor(), needs=_needs(request.form)
        )
    except service.ShelterError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("shelter.mode", code=code))
    except service.AlreadyHere:
        db.session.rollback()
        flash(_("%(name)s is already checked in here.", name=resident.full_name), "info")
        return redirect(url_for("shelter.mode", code=code))
    db.session.commit()
    _flash_checked_in(stay, moved_from)
    return redirect(url_for("shelter.mode", code=code))


@bp.route("/staff/shelter/<code>/guest", methods=["POST"])
@allow("shelter")
def check_in_guest(code: str):
    opening = _opening(code)
    name = request.form.get("name", "").strip()
    if not name:
        return _mode_page(
            opening, guest=request.form, errors={"name": str(service.MESSAGES["name_required"])}, status=400
        )
    stay, _moved = service.check_in(
        opening,
        resident=None,
        guest_name=name,
        guest_note=request.form.get("note", "")[:NEED_LIMIT],
        method="unregistered",
        actor=_actor(),
        needs=_needs(request.form),
    )
    db.session.commit()
    _flash_checked_in(stay, None)
    return redirect(url_for("shelter.mode", code=code))


def _flash_checked_in(stay: ShelterStay, moved_from: ShelterStay | None) -> None:
    if moved_from is not None:
        flash(
            _(
                "%(name)s moved here from %(shelter)s.",
                name=stay.display_name,
                shelter=moved_from.opening.shelter.name_ja,
            ),
            "success",
        )
    else:
        flash(_("%(name)s is checked in.", name=stay.display_name), "success")


@bp.route("/staff/shelter/<code>/roster")
@allow("shelter")
def roster(code: str):
    opening = _opening(code)
    stays = service.roster(opening, actor=_actor())
    db.session.commit()
    return render_template(
        "shelter/roster.html",
        opening=opening,
        stays=stays,
        count=len(stays),
        needs_count=sum(1 for s in stays if s.allergy or s.care or s.disability),
    )


@bp.route("/staff/shelter/stays/<int:stay_id>", methods=["GET", "POST"])
@allow("shelter")
def stay(stay_id: int):
    row = db.session.get(ShelterStay, stay_id) or abort(404)
    if request.method == "POST":
        service.update_needs(row, _needs(request.form))
        db.session.commit()
        flash(_("Needs saved."), "success")
        return redirect(url_for("shelter.stay", stay_id=stay_id))
    if row.resident_id is not None:
        access.record(
            _actor(), resident_id=row.resident_id, data_items=["basic4", "shelter"], purpose="shelter_roster"
        )
        db.session.commit()
    targets = [o for o in service.open_openings() if o.id != row.opening_id]
    return render_template("shelter/stay.html", stay=row, targets=targets)


@bp.route("/staff/shelter/stays/<int:stay_id>/checkout", methods=["POST"])
@allow("shelter")
def check_out(stay_id: int):
    row = db.session.get(ShelterStay, stay_id) or abort(404)
    try:
        service.check_out(row)
    except service.ShelterError as exc:
        flash(exc.message, "error")
        return redirect(url_for("shelter.stay", stay_id=stay_id))
    db.session.commit()
    flash(_("%(name)s is checked out.", name=row.display_name), "success")
    return redirect(url_for("shelter.roster", code=row.opening.code))


@bp.route("/staff/shelter/stays/<int:stay_id>/move", methods=["POST"])
@allow("shelter")
def move(stay_id: int):
    row = db.session.get(ShelterStay, stay_id) or abort(404)
    target = db.session.scalar(
        select(ShelterOpening).where(ShelterOpening.code == request.form.get("target", ""))
    )
    if target is None:
        flash(str(service.MESSAGES["same_shelter"]), "error")
        return redirect(url_for("shelter.stay", stay_id=stay_id))
    try:
        new = service.move(row, target, actor=_actor())
    except service.ShelterError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("shelter.stay", stay_id=stay_id))
    db.session.commit()
    flash(
        _("%(name)s moved to %(shelter)s.", name=new.display_name, shelter=target.shelter.name_ja), "success"
    )
    return redirect(url_for("shelter.roster", code=row.opening.code))


@bp.route("/me/shelter")
@allow("resident")
def family():
    person = current_user.resident
    actor = access.Actor(kind="resident", id=f"account:{current_user.id}", role="family", organisation="")
    rows = service.family_stays(person, actor=actor)
    db.session.commit()
    return render_template("shelter/family.html", rows=rows, me=person)


# --- terminal API -----------------------------------------------------------------------------------


@api.errorhandler(service.ShelterError)
def api_error(exc: service.ShelterError):
    db.session.rollback()
    return jsonify(error={"code": exc.code, "message": exc.message}), exc.status


@api.errorhandler(cardid.CardIdError)
def terminal_error(exc: cardid.CardIdError):
    db.session.rollback()
    return jsonify(error={"code": exc.code, "message": str(message_for(exc.code))}), exc.status


@api.route("/checkins", methods=["POST"])
@allow("public")  # terminal-signed only: checked below, before anything is read
@csrf.exempt
@limiter.exempt  # a shelter's queue after an outage arrives at once; each request is signed
def checkins():
    """``{"entries": [entry, …]}`` from a shelter terminal's agent → ``{"results": [...]}``, one per
    entry, in order. Safe to send again: a UUID already here answers ``duplicate``."""
    terminal = cardid.authenticate_terminal(
        request.headers,
        request.method,
        request.script_root + request.full_path.rstrip("?"),
        request.get_data(),
    )
    if terminal is None:
        raise cardid.CardIdError("terminal_required", 401)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise service.ShelterError("entry_invalid")
    db.session.commit()  # the terminal's last_seen_at
    results = service.apply_batch(data.get("entries"), terminal, origin=_origin())
    return jsonify(results=results)


METHOD_LABELS = {
    "card": _l("card"),
    "text_ap": _l("card details (not linked)"),
    "hand": _l("by hand"),
    "unregistered": _l("not registered"),
}
STATUS_LABELS = {
    "active": _l("staying"),
    "moved": _l("moved to another shelter"),
    "left": _l("left the shelter"),
}


def shelter_time(when) -> str:
    return when.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M") if when else ""


def init_app(app) -> None:
    from portal.shelter import models as _tables  # noqa: F401 - tables known to migrations

    app.config.setdefault("SHELTER_OFFLINE_MAX_SECONDS", 3 * 86400)
    app.jinja_env.filters["shelter_time"] = shelter_time
    app.jinja_env.globals.update(
        stay_method_label=lambda c: str(METHOD_LABELS.get(c, c)),
        stay_status_label=lambda c: str(STATUS_LABELS.get(c, c)),
    )
    app.register_blueprint(bp)
    app.register_blueprint(api)
