"""Library pages: the library terminal (staff links a card to a patron number, looks a card up)
and the resident's own links in the portal."""

from __future__ import annotations

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
from flask_login import current_user
from sqlalchemy import select

from portal.access import service as access
from portal.authz import allow
from portal.cardid import service as cardid
from portal.cardid.api import SESSION_KEY, _binding, _origin
from portal.cardid.messages import message_for
from portal.cardid.models import CardChallenge, CardCredential, Terminal
from portal.cardid.views import scanned_challenge
from portal.extensions import db
from portal.library import service
from portal.library.models import Library
from portal.models_base import utcnow

bp = Blueprint("library", __name__, template_folder="templates")

DESK = "library_desk"
PENDING = "library_pending"


def _actor(terminal_code: str | None) -> access.Actor:
    return access.Actor(
        kind="staff",
        id=current_user.login_id,
        role="library",
        organisation=current_user.organisation,
        terminal_id=terminal_code,
    )


def _desk() -> tuple[Terminal, Library]:
    desk = session.get(DESK) or {}
    terminal = db.session.scalar(
        select(Terminal).where(
            Terminal.code == desk.get("terminal", ""), Terminal.kind == "library", Terminal.active
        )
    )
    library = db.session.scalar(select(Library).where(Library.code == desk.get("library", "")))
    if terminal is None or library is None:
        raise service.LibraryError("library_unknown", 409)
    return terminal, library


def _json_error(code: str, message: str, status: int):
    return jsonify(error={"code": code, "message": message}), status


@bp.route("/staff/library/card", methods=["GET", "POST"])
@allow("library")
def desk():
    terminals = list(
        db.session.scalars(
            select(Terminal).where(Terminal.kind == "library", Terminal.active).order_by(Terminal.code)
        )
    )
    libraries = service.libraries()
    if request.method == "POST":
        chosen_t, chosen_l = request.form.get("terminal", ""), request.form.get("library", "")
        if chosen_t in {t.code for t in terminals} and chosen_l in {lib.code for lib in libraries}:
            session[DESK] = {"terminal": chosen_t, "library": chosen_l}
        else:
            flash(_("Choose the library and the card reader."), "error")
        return redirect(url_for("library.desk"))
    desk = session.get(DESK) or {}
    if not desk and len(libraries) == 1:
        desk = {"library": libraries[0].code}
    return render_template(
        "library/desk.html",
        terminals=terminals,
        libraries=libraries,
        desk=desk,
        ready=bool(desk.get("terminal")),
        agent_url=current_app.config["AGENT_ORIGIN"],
    )


@bp.route("/staff/library/challenges", methods=["POST"])
@allow("library")
def new_challenge():
    """The page asks for a challenge for the card on this desk's reader (CSRF header checked)."""
    data = request.get_json(silent=True) or {}
    purpose = str(data.get("purpose", ""))
    if purpose not in (service.PURPOSE_LINK, service.PURPOSE_LOOKUP):
        return _json_error("bad_request", str(message_for("bad_request")), 400)
    try:
        terminal, _library = _desk()
        patron = (
            service.normalise_patron_number(str(data.get("patron_number", "")))
            if purpose == service.PURPOSE_LINK
            else None
        )
    except service.LibraryError as exc:
        return _json_error(exc.code, exc.message, exc.status)
    ch = cardid.issue_challenge(purpose, origin=_origin(), session_binding=_binding(), terminal=terminal)
    db.session.commit()
    if patron:
        session[PENDING] = {ch.id: patron}
    import base64

    return jsonify(
        id=ch.id,
        purpose=ch.purpose,
        message=base64.b64encode(cardid.challenge_message(ch)).decode(),
        status_url=url_for("library.challenge_status", challenge_id=ch.id),
    ), 201


@bp.route("/staff/library/challenges/<challenge_id>")
@allow("library")
def challenge_status(challenge_id: str):
    """Polled by the page: when the card has answered, a link is made here (once)."""
    ch = db.session.scalar(select(CardChallenge).where(CardChallenge.id == challenge_id).with_for_update())
    if ch is None or ch.purpose not in (service.PURPOSE_LINK, service.PURPOSE_LOOKUP):
        abort(404)
    if ch.session_binding != session.get(SESSION_KEY):
        abort(404)
    if ch.status == "failed":
        return jsonify(
            status="failed", error={"code": ch.error_code, "message": str(message_for(ch.error_code or ""))}
        )
    if ch.status == "pending":
        if ch.expires_at <= utcnow():
            return jsonify(
                status="failed",
                error={"code": "challenge_expired", "message": str(message_for("challenge_expired"))},
            )
        return jsonify(status="pending")
    result = url_for("library.result", challenge_id=ch.id)
    if ch.purpose == service.PURPOSE_LINK and ch.consumed_at is None:
        ch.consumed_at = utcnow()
        patron = (session.get(PENDING) or {}).get(ch.id)
        try:
            if patron is None:
                raise service.LibraryError("patron_format")
            terminal, library = _desk()
            service.link(
                library, db.session.get(CardCredential, ch.credential_id), patron, actor=_actor(terminal.code)
            )
        except service.LibraryError as exc:
            db.session.rollback()
            ch = db.session.get(CardChallenge, challenge_id)
            ch.consumed_at, ch.status, ch.error_code = utcnow(), "failed", exc.code
            db.session.commit()
            return jsonify(status="failed", error={"code": exc.code, "message": exc.message})
        session.pop(PENDING, None)
        db.session.commit()
    return jsonify(status="done", redirect=result)


@bp.route("/staff/library/card/<challenge_id>")
@allow("library")
def result(challenge_id: str):
    """The patron number for the card just read — and nothing else of the resident."""
    ch = scanned_challenge(challenge_id, (service.PURPOSE_LINK, service.PURPOSE_LOOKUP))
    try:
        terminal, library = _desk()
        credential = db.session.get(CardCredential, ch.credential_id)
        if ch.purpose == service.PURPOSE_LINK:  # the link just made (its access record is written)
            patron = service.patron_number_linked(library, credential)
        else:
            patron = service.lookup(library, credential, actor=_actor(terminal.code))
    except service.LibraryError as exc:
        db.session.rollback()
        return render_template("library/result.html", error=exc.message, linked=False), exc.status
    db.session.commit()
    return render_template(
        "library/result.html",
        patron=patron,
        library=library,
        linked=ch.purpose == service.PURPOSE_LINK,
        error=None,
    )


@bp.route("/me/library")
@allow("resident")
def my_links():
    return render_template("library/my_links.html", links=service.links_of(current_user.resident_id))


@bp.route("/me/library/<int:link_id>/remove", methods=["POST"])
@allow("resident")
def remove(link_id: int):
    try:
        service.remove(link_id, current_user.resident_id)
    except service.LibraryError:
        abort(404)
    db.session.commit()
    flash(_("The library link was removed. Your card no longer finds your library patron number."), "info")
    return redirect(url_for("library.my_links"))


def init_app(app) -> None:
    from portal.library import models as _tables  # noqa: F401 - tables known to migrations

    for purpose in (service.PURPOSE_LINK, service.PURPOSE_LOOKUP):
        cardid.add_terminal_purpose(purpose)
    app.register_blueprint(bp)
