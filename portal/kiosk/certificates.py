"""Certificate ordering at the kiosk, as at a convenience store (コンビニ交付): choose the
certificate → options (household members, items, year) and copies → the fee → payment (cash or IC,
through the configured payment provider) → the signed PDF is "printed" → done.

Built only on the certificate backend's contract (/work/wt/CERTS_CONTRACT.md: ``service.offer``,
``quote``, ``issue``, ``refusal_message``, ``payment.provider``). The order being made lives in the
browser session, tied to the visit: a finished visit takes it along. The issued PDF is held in
:class:`KioskPrint` only until the visit ends.
"""

from __future__ import annotations

import secrets

from flask import abort, current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l

from portal.authz import allow
from portal.certificates import payment, service
from portal.extensions import db
from portal.kiosk import service as kiosk
from portal.kiosk.models import KioskPrint
from portal.kiosk.views import bp, visit, visit_required, visit_resident
from portal.models_base import utcnow

ORDER_KEY = "kiosk_order"
METHODS = {"cash": _l("Cash"), "ic": _l("IC card (e-money)")}
CHOOSE_MEMBER = _l("Choose at least one person.")
CHOOSE_YEAR = _l("Choose the year.")
REFUND = _l("The payment was cancelled; nothing was charged.")


def _terminal():
    return kiosk.terminal(visit().terminal_code)


def _order() -> dict | None:
    order = session.get(ORDER_KEY)
    if not isinstance(order, dict) or order.get("visit") != visit().id:
        return None
    return order


def _offer(kind: str):
    if kind not in service.KINDS:
        abort(404)
    return service.offer(visit_resident(), kind)


def _refusal(code: str):
    return render_template("kiosk/refused.html", message=service.refusal_message(code)), 409


@bp.route("/certificates")
@allow("public")
@visit_required
def certificates():
    resident = visit_resident()
    offers = [service.offer(resident, kind) for kind in service.KINDS]
    db.session.commit()
    return render_template("kiosk/certificates.html", offers=offers, refusal_message=service.refusal_message)


@bp.route("/certificates/<kind>", methods=["GET", "POST"])
@allow("public")
@visit_required
def certificate_options(kind: str):
    offer = _offer(kind)
    if offer.refusal:
        return _refusal(offer.refusal)
    errors: list = []
    previous = _order() if (_order() or {}).get("kind") == kind else None
    chosen = {
        "members": (previous or {}).get("members") or [visit().resident_id],
        "items": (previous or {}).get("items") or [],
        "year": (previous or {}).get("year") or (offer.years[0] if offer.years else None),
        "copies": (previous or {}).get("copies") or 1,
    }
    if request.method == "POST":
        member_ids = {m for m, _ in offer.members}
        item_codes = {c for c, _ in offer.items}
        try:
            members = [int(m) for m in request.form.getlist("members")]
            copies = int(request.form.get("copies", "1"))
            year = int(request.form["year"]) if offer.years else None
        except (ValueError, KeyError):
            abort(400)
        items = request.form.getlist("items")
        if not set(members) <= member_ids or not set(items) <= item_codes:
            abort(400)  # not a choice the page offered
        if not 1 <= copies <= offer.max_copies:
            abort(400)
        chosen = {"members": members, "items": items, "year": year, "copies": copies}
        if offer.members and not members:
            errors.append(CHOOSE_MEMBER)
        if offer.years and year not in offer.years:
            errors.append(CHOOSE_YEAR)
        if not errors:
            session[ORDER_KEY] = {"visit": visit().id, "kind": kind, **chosen, "payment": None}
            return redirect(url_for("kiosk.order"))
    return render_template("kiosk/options.html", offer=offer, chosen=chosen, errors=errors), (
        400 if errors else 200
    )


@bp.route("/certificates/order", methods=["GET"])
@allow("public")
@visit_required
def order():
    current = _order()
    if current is None:
        return redirect(url_for("kiosk.certificates"))
    offer = _offer(current["kind"])
    if offer.refusal:
        return _refusal(offer.refusal)
    fee = service.quote(current["kind"], current["copies"])
    return render_template(
        "kiosk/order.html",
        offer=offer,
        order=current,
        fee=fee,
        members=[name for m, name in offer.members if m in current["members"]],
        items=[label for c, label in offer.items if c in current["items"]],
        methods=METHODS,
    )


@bp.route("/certificates/order/pay", methods=["POST"])
@allow("public")
@visit_required
def order_pay():
    current = _order()
    method = request.form.get("method", "")
    if current is None or method not in METHODS:
        return redirect(url_for("kiosk.certificates"))
    provider = payment.provider()
    if current.get("payment"):
        provider.cancel(current["payment"])  # a changed mind: the earlier one is dropped
    fee = service.quote(current["kind"], current["copies"])
    pay = provider.start(fee, method, "kiosk-" + secrets.token_urlsafe(9))
    current["payment"] = pay.id
    session[ORDER_KEY] = current
    db.session.commit()
    return redirect(url_for("kiosk.order_payment"))


@bp.route("/certificates/order/payment")
@allow("public")
@visit_required
def order_payment():
    current = _order()
    if current is None or not current.get("payment"):
        return redirect(url_for("kiosk.certificates"))
    pay = payment.provider().status(current["payment"])
    simulator = bool(current_app.config.get("CERTIFICATE_PAYMENT_SIMULATOR"))
    return render_template(
        "kiosk/payment.html",
        pay=pay,
        method_label=METHODS.get(pay.method, pay.method),
        simulator_url=f"/kiosk/payments/sim/{pay.id}/pay" if simulator else None,
    )


@bp.route("/certificates/order/payment/status")
@allow("public")
@visit_required
def order_payment_status():
    current = _order()
    if current is None or not current.get("payment"):
        return jsonify(status="none"), 404
    return jsonify(status=payment.provider().status(current["payment"]).status)


@bp.route("/certificates/order/cancel", methods=["POST"])
@allow("public")
@visit_required
def order_cancel():
    current = _order()
    if current is not None and current.get("payment"):
        payment.provider().cancel(current["payment"])
        db.session.commit()
    session.pop(ORDER_KEY, None)
    return redirect(url_for("kiosk.menu"))


@bp.route("/certificates/order/issue", methods=["POST"])
@allow("public")
@visit_required
def order_issue():
    """Paid: the backend issues the signed PDF (and writes the access record); it is "printed"."""
    current = _order()
    if current is None or not current.get("payment"):
        return redirect(url_for("kiosk.certificates"))
    provider = payment.provider()
    if provider.status(current["payment"]).status != "paid":
        return redirect(url_for("kiosk.order_payment"))
    terminal = _terminal()
    try:
        issued = service.issue(
            visit_resident(),
            current["kind"],
            members=current["members"],
            items=current["items"],
            year=current["year"],
            copies=current["copies"],
            payment_id=current["payment"],
            terminal=terminal,
            actor=f"kiosk:{visit().terminal_code}",
        )
    except service.Refused as exc:
        db.session.rollback()
        code = getattr(exc, "code", None) or (exc.args[0] if exc.args else "refused")
        current_app.logger.info("kiosk certificate refused: %s", code)
        provider.cancel(current["payment"])
        db.session.commit()
        session.pop(ORDER_KEY, None)
        return render_template(
            "kiosk/refused.html", message=service.refusal_message(code), refund=REFUND
        ), 409
    row = KioskPrint(
        session_id=visit().id,
        kind=current["kind"],
        serial=str(issued.serial),
        issued_id=str(issued.id),
        copies=current["copies"],
        pdf=issued.pdf,
    )
    db.session.add(row)
    db.session.commit()
    session.pop(ORDER_KEY, None)
    current_app.logger.info("kiosk certificate issued on %s", visit().terminal_code)
    return redirect(url_for("kiosk.printed", print_id=row.id))


def _print(print_id: int) -> KioskPrint:
    row = db.session.get(KioskPrint, print_id)
    if row is None or row.session_id != visit().id:
        abort(404)
    return row


@bp.route("/certificates/printed/<int:print_id>")
@allow("public")
@visit_required
def printed(print_id: int):
    row = _print(print_id)
    return render_template("kiosk/printed.html", row=row, title=_offer(row.kind).title)


@bp.route("/certificates/printed/<int:print_id>/document.pdf")
@allow("public")
@visit_required
def printed_pdf(print_id: int):
    """The "printer": the signed PDF, once per visit's page; recorded as printed."""
    row = _print(print_id)
    if row.pdf is None:
        abort(410)
    if row.printed_at is None:
        row.printed_at = utcnow()
    response = current_app.response_class(row.pdf, mimetype="application/pdf")
    db.session.commit()
    response.headers["Content-Disposition"] = f'inline; filename="certificate-{row.serial}.pdf"'
    g.frame_self = True  # shown in a frame of the kiosk's own page (portal/security.py)
    return response
