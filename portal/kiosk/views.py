"""Kiosk pages: the start screen (card, PIN keypad), the kiosk session, the menu.

Every route is ``@allow("public")`` at the door (the kiosk page has no portal login) and the pages
of a resident's visit check the kiosk session themselves (:func:`visit_required`): an open, not
idle, not expired :class:`KioskSession` for this browser on this terminal. Every answer is
``no-store``, so neither the back button nor the cache brings a finished visit back.
"""

from __future__ import annotations

from functools import wraps

from flask import (
    Blueprint,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user

from portal.authz import allow
from portal.extensions import db
from portal.kiosk import language, messages, service
from portal.registry.models import Resident

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk", template_folder="templates")

TRIES_LEFT = _l("Tries left before the PIN locks: %(n)s")
DIGITS_ENTERED = _l("%(n)s of 4 digits")
TERMINAL_KEY = "kiosk_terminal"
VISIT_KEY = "kiosk_session"


@bp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store, max-age=0"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.context_processor
def kiosk_context():
    return {
        "_": language.template_gettext,
        "gettext": language.template_gettext,
        "kiosk_lang": language.current(),
        "kiosk_visit": g.get("kiosk_visit"),
        "agent_url": current_app.config["AGENT_ORIGIN"],
        "idle_seconds": current_app.config["KIOSK_IDLE_SECONDS"],
        "idle_warning_seconds": current_app.config["KIOSK_IDLE_WARNING_SECONDS"],
    }


def _page_messages() -> dict:
    """The failure texts the start screen's script shows, in the chosen language."""
    t = language.kgettext
    return {
        "failures": {code: {"title": t(a), "next": t(b)} for code, (a, b) in messages.FAILURES.items()},
        "aliases": messages.ALIASES,
        "tries": t(TRIES_LEFT, n="{n}"),
        "count": t(DIGITS_ENTERED, n="{n}"),
    }


def _error(code: str, status: int = 400):
    title, step = messages.failure(code)
    return jsonify(
        error={"code": code, "message": language.kgettext(title), "next": language.kgettext(step)}
    ), status


def _clear_visit() -> None:
    """Forget everything of the visit in this browser; keep only which terminal this is."""
    terminal = session.get(TERMINAL_KEY)
    session.clear()
    if terminal:
        session[TERMINAL_KEY] = terminal


def visit_required(view):
    """The page of a resident's visit: the open kiosk session of this browser on this terminal."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        visit_id = session.get(VISIT_KEY)
        visit = service.current(visit_id, session.get(TERMINAL_KEY))
        if visit is None:
            reason = None
            if visit_id:
                row = db.session.get(service.KioskSession, visit_id)
                reason = row.end_reason if row is not None else None
            db.session.commit()
            if visit_id:
                _clear_visit()
            if request.is_json or request.method != "GET":
                return _error("timeout", 401)
            return redirect(url_for("kiosk.index", ended=reason) if reason else url_for("kiosk.index"))
        g.kiosk_visit = visit
        db.session.commit()
        return view(*args, **kwargs)

    return wrapper


def visit() -> service.KioskSession:
    return g.kiosk_visit


def visit_resident() -> Resident:
    return db.session.get(Resident, visit().resident_id)


@bp.route("/")
@allow("public")
def index():
    """The start screen. A kiosk's Chromium opens ``/kiosk/?terminal=CODE`` once at boot."""
    code = request.args.get("terminal")
    if code is not None:
        if service.terminal(code) is None:
            return render_template("kiosk/not_set_up.html"), 404
        _clear_visit()
        session[TERMINAL_KEY] = code
        return redirect(url_for("kiosk.index"))
    terminal = service.terminal(session.get(TERMINAL_KEY))
    if terminal is None:
        return render_template("kiosk/not_set_up.html"), 404
    if service.current(session.get(VISIT_KEY), terminal.code, touch=False) is not None:
        db.session.commit()
        return redirect(url_for("kiosk.menu"))
    db.session.commit()
    ended = request.args.get("ended")
    return render_template(
        "kiosk/start.html",
        terminal=terminal,
        ended=messages.ENDED.get(ended) if ended else None,
        kiosk_messages=_page_messages(),
    )


@bp.route("/language", methods=["POST"])
@allow("public")
def set_language():
    language.choose(request.form.get("lang", ""))
    target = request.form.get("next", "")
    if not target.startswith("/kiosk/") or "//" in target or "\\" in target:
        target = url_for("kiosk.index")
    return redirect(target)


@bp.route("/session", methods=["POST"])
@allow("public")
def start_session():
    """The page hands in the ticket its terminal's agent got for the card login."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _error("card_error")
    try:
        row = service.redeem(str(data.get("ticket", "")), session.get(TERMINAL_KEY))
    except service.KioskError as exc:
        db.session.rollback()
        current_app.logger.info("kiosk ticket refused: %s", exc.code)
        return _error(exc.code, exc.status)
    chosen = language.current()
    if current_user.is_authenticated:
        logout_user()
    _clear_visit()
    language.choose(chosen)
    session[VISIT_KEY] = row.id
    db.session.commit()
    current_app.logger.info("kiosk session started on %s", row.terminal_code)
    return jsonify(redirect=url_for("kiosk.menu"))


@bp.route("/session/end", methods=["POST"])
@allow("public")
def end_session():
    """Finish, card removed, or idle: the session ends on the server, the browser forgets it."""
    data = request.get_json(silent=True) if request.is_json else request.form
    reason = str((data or {}).get("reason", "finished"))
    reason = reason if reason in messages.ENDED else "finished"
    visit_id = session.get(VISIT_KEY)
    if visit_id:
        row = db.session.get(service.KioskSession, visit_id)
        if row is not None and row.terminal_code == session.get(TERMINAL_KEY):
            service.end(row, reason)
            current_app.logger.info("kiosk session ended (%s) on %s", reason, row.terminal_code)
    onward = checkin_url() if (data or {}).get("next") == "checkin" else None
    db.session.commit()
    _clear_visit()
    target = onward or url_for("kiosk.index", ended=reason)
    if request.is_json:
        return jsonify(redirect=target)
    return redirect(target)


def checkin_url() -> str | None:
    """The appointment check-in of the office this kiosk stands in (portal/booking, when there):
    ``KIOSK_BOOKING_OFFICES`` {terminal: office code}, else the office named in the terminal's
    organisation, else the only (or first) active office."""
    if "booking_floor.kiosk" not in current_app.view_functions:
        return None
    from sqlalchemy import select

    from portal.booking.models import Office

    terminal = service.terminal(session.get(TERMINAL_KEY))
    if terminal is None:
        return None
    offices = db.session.scalars(select(Office).where(Office.active.is_(True)).order_by(Office.id)).all()
    code = current_app.config.get("KIOSK_BOOKING_OFFICES", {}).get(terminal.code)
    chosen = next((o for o in offices if o.code == code), None) if code else None
    chosen = chosen or next((o for o in offices if o.name_ja and o.name_ja in terminal.organisation), None)
    chosen = chosen or (offices[0] if offices else None)
    return url_for("booking_floor.kiosk", code=chosen.code) if chosen else None


@bp.route("/menu")
@allow("public")
@visit_required
def menu():
    person = visit_resident()
    checkin = checkin_url()
    return render_template(
        "kiosk/menu.html",
        person=person,
        checkin=checkin,
        has_certificates="kiosk.certificates" in current_app.view_functions,
    )


def init_app(app) -> None:
    import importlib.util

    if importlib.util.find_spec("portal.certificates") is not None:
        from portal.kiosk import certificates  # noqa: F401 - its routes join this blueprint

    app.config.setdefault("KIOSK_TICKET_SECONDS", 30)
    app.config.setdefault("KIOSK_IDLE_SECONDS", 120)
    app.config.setdefault("KIOSK_IDLE_WARNING_SECONDS", 30)
    app.config.setdefault("KIOSK_SESSION_MAX_SECONDS", 15 * 60)
    app.register_blueprint(bp)
    from portal.kiosk import api, cli

    app.register_blueprint(api.bp)
    cli.init_app(app)
