"""Pages: log in with the card on a PC, the resident's linked cards, the counter's card scan and
card linking, and the admins' terminal register."""

from __future__ import annotations

from datetime import timedelta

import segno
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.access import service as access
from portal.authz import allow
from portal.cardid import service
from portal.cardid.api import SESSION_KEY, _binding, _origin
from portal.cardid.forms import RotateKeyForm, TerminalForm
from portal.cardid.messages import message_for
from portal.cardid.models import CardChallenge, Terminal
from portal.extensions import db
from portal.models_base import utcnow
from portal.staff.views import staff_actor

bp = Blueprint("cardid", __name__, template_folder="templates")

# How long after a scan the clerk may still open the scanned resident's summary.
SCAN_VIEW_WINDOW = timedelta(minutes=10)


@bp.route("/card-login")
@allow("public")
def card_login():
    """A one-time challenge, shown as a code and a QR code for the PC helper; the page polls."""
    ch = service.issue_challenge("login", origin=_origin(), session_binding=_binding())
    db.session.commit()
    helper_url = f"{_origin()}/c/{ch.code}"
    qr = segno.make(helper_url, error="m").svg_data_uri(scale=4)
    return render_template(
        "cardid/login.html",
        ch=ch,
        helper_url=helper_url,
        qr=qr,
        seconds=current_app.config["CARD_CHALLENGE_SECONDS"],
    )


@bp.route("/c/<code>")
@allow("public")
def helper_landing(code: str):
    """Where the QR code leads in a browser: how to answer the challenge with the card."""
    return render_template("cardid/helper.html", helper_url=f"{_origin()}/c/{code}")


@bp.route("/me/cards")
@allow("resident")
def my_cards():
    return render_template(
        "cardid/my_cards.html", credentials=service.credentials_of(current_user.resident_id), now=utcnow()
    )


@bp.route("/me/cards/<int:credential_id>/revoke", methods=["POST"])
@allow("resident")
def revoke(credential_id: int):
    try:
        service.revoke_credential(credential_id, current_user.resident_id)
    except service.CardIdError:
        abort(404)
    db.session.commit()
    flash(_("The card can no longer be used to log in. Link it again at a counter to use it."), "info")
    return redirect(url_for("cardid.my_cards"))


def _counter_terminals() -> list[Terminal]:
    return list(
        db.session.scalars(
            select(Terminal).where(Terminal.kind == "counter", Terminal.active).order_by(Terminal.code)
        )
    )


@bp.route("/staff/counter/card", methods=["GET", "POST"])
@allow("counter")
def counter():
    """Scan a resident's card (log-in style, 4-digit PIN) or link a card to the register."""
    terminals = _counter_terminals()
    if request.method == "POST":
        chosen = request.form.get("terminal", "")
        if chosen in {t.code for t in terminals}:
            session["counter_terminal"] = chosen
        return redirect(url_for("cardid.counter"))
    return render_template(
        "cardid/counter.html",
        terminals=terminals,
        terminal=session.get("counter_terminal"),
        agent_url=current_app.config["AGENT_ORIGIN"],
    )


def scanned_challenge(challenge_id: str, purposes: tuple[str, ...]) -> CardChallenge:
    """A card scan or link this clerk's session completed in the last minutes, or a 404."""
    ch = db.session.get(CardChallenge, challenge_id)
    if (
        ch is None
        or ch.purpose not in purposes
        or ch.session_binding != session.get(SESSION_KEY)
        or ch.status != "done"
        or ch.resident_id is None
        or (ch.completed_at or utcnow()) + SCAN_VIEW_WINDOW < utcnow()
    ):
        abort(404)
    return ch


@bp.route("/staff/counter/card/<challenge_id>")
@allow("counter")
def counter_result(challenge_id: str):
    """The summary the counter needs of the resident whose card was just scanned; recorded."""
    ch = scanned_challenge(challenge_id, ("counter_scan", "link"))
    from portal.registry.models import Resident

    person = db.session.get(Resident, ch.resident_id)
    items = ["basic4", "register_status"] if ch.purpose == "counter_scan" else ["basic4", "card_credential"]
    access.record(
        staff_actor(),
        resident_id=person.id,
        data_items=items,
        purpose="identity_check: card_scan" if ch.purpose == "counter_scan" else "card_link: counter",
    )
    db.session.commit()
    return render_template("cardid/counter_result.html", person=person, ch=ch)


@bp.route("/staff/admin/terminals", methods=["GET", "POST"])
@allow("admin")
def terminals():
    form = TerminalForm()
    if form.validate_on_submit():
        try:
            service.add_terminal(
                form.code.data.strip(),
                form.kind.data,
                form.name.data.strip(),
                form.organisation.data.strip(),
                form.public_key.data.strip(),
            )
        except (service.CardIdError, ValueError) as exc:
            code = getattr(exc, "code", "terminal_key_type")
            form.public_key.errors.append(message_for(code))
        else:
            db.session.commit()
            flash(_("Terminal registered."), "success")
            return redirect(url_for("cardid.terminals"))
    rows = db.session.scalars(select(Terminal).order_by(Terminal.code)).all()
    return render_template("cardid/terminals.html", form=form, rows=rows, rotate=RotateKeyForm())


@bp.route("/staff/admin/terminals/<int:terminal_id>/active", methods=["POST"])
@allow("admin")
def terminal_toggle(terminal_id: int):
    terminal = db.session.get(Terminal, terminal_id) or abort(404)
    terminal.active = not terminal.active
    db.session.commit()
    flash(_("Terminal enabled.") if terminal.active else _("Terminal disabled."), "info")
    return redirect(url_for("cardid.terminals"))


@bp.route("/staff/admin/terminals/<int:terminal_id>/key", methods=["POST"])
@allow("admin")
def terminal_rotate(terminal_id: int):
    terminal = db.session.get(Terminal, terminal_id) or abort(404)
    form = RotateKeyForm()
    if form.validate_on_submit():
        try:
            service.rotate_terminal_key(terminal, form.public_key.data.strip())
        except (service.CardIdError, ValueError):
            flash(message_for("terminal_key_type"), "error")
        else:
            db.session.commit()
            flash(_("The terminal's key was replaced; the old key no longer works."), "success")
    return redirect(url_for("cardid.terminals"))
