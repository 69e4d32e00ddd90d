"""Public verification (/verify page, /api/certificates/verify) and the payment simulator's
endpoint. ``init_app`` registers them, the configuration defaults and the CLI."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, render_template, request

from portal.authz import allow
from portal.certificates import payment, service
from portal.extensions import csrf, db, limiter
from portal.i18n import local_date

bp = Blueprint("certificates", __name__, template_folder="templates")

DEFAULTS = {
    # 200 yen a copy, as at most cities' convenience-store issuance.
    "CERTIFICATE_FEES": {"residence": 200, "seal": 200, "income": 200},
    "CERTIFICATE_MAX_COPIES": 10,
    "CERTIFICATE_PAYMENT_PROVIDER": "simulator",
    "CERTIFICATE_VERIFY_RATE_LIMIT": "30 per minute",
    "CERTIFICATE_VERIFY_URL": None,
    "CERTIFICATE_HSM_MODULE": "/usr/lib/softhsm/libsofthsm2.so",
    "CERTIFICATE_HSM_TOKEN": "city-certificates",
    "CERTIFICATE_HSM_KEY": "city-signing",
    "CERTIFICATE_HSM_PIN": None,
}
ENV = ("CERTIFICATE_HSM_DIR", "CERTIFICATE_HSM_MODULE", "CERTIFICATE_HSM_PIN", "CERTIFICATE_PAYMENT_PROVIDER")


def _rate() -> str:
    return current_app.config["CERTIFICATE_VERIFY_RATE_LIMIT"]


@bp.route("/verify")
@allow("public")
@limiter.limit(_rate)
def verify():
    serial = request.args.get("serial", "").strip()[:40]
    code = request.args.get("code", "").strip()[:40]
    result, errors = None, {}
    if "serial" in request.args or "code" in request.args:
        if not serial:
            errors["serial"] = "missing"
        if not code:
            errors["code"] = "missing"
        if not errors:
            result = service.verify(serial, code)
    return render_template(
        "certificates/verify.html",
        serial=serial,
        code=code,
        result=result,
        errors=errors,
        titles=service.TITLES,
        local_date=local_date,
    )


@bp.route("/api/certificates/verify", methods=["GET", "POST"])
@allow("public")
@csrf.exempt  # a read-only check; JSON or query, no cookies needed
@limiter.limit(_rate)
def verify_api():
    data = request.get_json(silent=True) if request.method == "POST" else None
    source = data if isinstance(data, dict) else request.args
    serial, code = source.get("serial"), source.get("code")
    if not isinstance(serial, str) or not isinstance(code, str) or not serial.strip() or not code.strip():
        return (
            jsonify(error={"code": "bad_request", "message": "give serial and code (strings)"}),
            400,
        )
    return jsonify(service.verify(serial, code).as_json())


@bp.route("/kiosk/payments/sim/<payment_id>/pay", methods=["POST"])
@allow("public")  # the payment id is a 144-bit secret only the kiosk page that started it holds
@csrf.exempt
def simulate_payment(payment_id: str):
    """The local simulator's "coins inserted" / "IC touched" (``{"outcome": "failed"}`` for a
    declined card). Refused unless the simulator is the provider and enabled (never by default
    in production)."""
    if not current_app.config.get("CERTIFICATE_PAYMENT_SIMULATOR"):
        abort(404)
    provider = payment.provider()
    if not isinstance(provider, payment.SimulatorProvider):
        abort(404)
    data = request.get_json(silent=True) or {}
    outcome = data.get("outcome", "paid") if isinstance(data, dict) else "paid"
    if outcome not in ("paid", "failed"):
        return jsonify(error={"code": "bad_request", "message": "outcome: paid or failed"}), 400
    try:
        paid = provider.settle(payment_id, paid=outcome == "paid")
    except payment.PaymentError as exc:
        db.session.rollback()
        return jsonify(
            error={"code": exc.code, "message": str(service.refusal_message(exc.code))}
        ), exc.status
    return jsonify(id=paid.id, amount=paid.amount, method=paid.method, status=paid.status)


def init_app(app) -> None:
    import os

    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    for key in ENV:
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    app.config.setdefault("CERTIFICATE_PAYMENT_SIMULATOR", app.config.get("NAME") != "production")
    if not app.config.get("CERTIFICATE_HSM_DIR") and app.config.get("NAME") != "test":
        app.config["CERTIFICATE_HSM_DIR"] = os.path.join(app.instance_path, "hsm")
    from portal.certificates import cli, models  # noqa: F401 - tables known to migrations

    app.register_blueprint(bp)
    from portal.certificates import staff_views

    staff_views.init_app(app)
    cli.init_app(app)
