"""Web Push subscriptions, the service worker, and the e-mail unsubscribe link.

``init_app(app)`` registers the blueprint and the ``flask push`` commands:
  ``flask push keys``     make the VAPID key pair once (instance/vapid_private.pem) and print the public key
  ``flask push deliver``  send the e-mail and push rows that are due (retries included)
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

import click
from flask import Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request
from flask.cli import AppGroup
from flask_login import current_user
from sqlalchemy import delete, select

from portal import ROOT
from portal.authz import allow
from portal.extensions import db
from portal.notices import channels
from portal.notices.models import NotificationSetting, PushSubscription

bp = Blueprint("push", __name__, template_folder="templates")


def _b64url(value: object) -> bytes | None:
    if not isinstance(value, str) or not value or len(value) > 200:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def _valid_endpoint(endpoint: object) -> bool:
    if not isinstance(endpoint, str) or len(endpoint) > 1000:
        return False
    parts = urlsplit(endpoint)
    schemes = ("https", "http") if channels.setting("PUSH_ALLOW_HTTP_ENDPOINTS") else ("https",)
    host = (parts.hostname or "").lower()
    if parts.scheme not in schemes or not host or parts.username or parts.password:
        return False
    allowed = channels.setting("PUSH_ENDPOINT_HOSTS")
    return allowed is None or any(host == h or host.endswith("." + h) for h in allowed)


def _bad(code: str, status: int = 400):
    return jsonify(error={"code": code}), status


@bp.get("/api/push/key")
@allow("public")
def public_key():
    key = channels.application_server_key()
    if key is None:
        return _bad("push_not_configured", 503)
    return jsonify(key=key)


@bp.post("/api/push/subscriptions")
@allow("account")
def subscribe():
    """Save the browser's PushSubscription (its toJSON()); an endpoint belongs to one account."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _bad("bad_request")
    endpoint, keys = data.get("endpoint"), data.get("keys")
    if not _valid_endpoint(endpoint) or not isinstance(keys, dict):
        return _bad("bad_subscription")
    p256dh, auth = _b64url(keys.get("p256dh")), _b64url(keys.get("auth"))
    if p256dh is None or len(p256dh) != 65 or p256dh[0] != 4 or auth is None or len(auth) != 16:
        return _bad("bad_subscription")
    sub = db.session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint))
    created = sub is None
    if created:
        sub = PushSubscription(endpoint=endpoint)
        db.session.add(sub)
    sub.account_id, sub.p256dh, sub.auth = current_user.id, keys["p256dh"], keys["auth"]
    db.session.commit()
    current_app.logger.info("push subscription %s saved for account %s", sub.id, current_user.id)
    return jsonify(ok=True, id=sub.id), 201 if created else 200


@bp.delete("/api/push/subscriptions")
@allow("account")
def unsubscribe_push():
    data = request.get_json(silent=True)
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    if not isinstance(endpoint, str):
        return _bad("bad_request")
    gone = db.session.execute(
        delete(PushSubscription).where(
            PushSubscription.endpoint == endpoint, PushSubscription.account_id == current_user.id
        )
    ).rowcount
    db.session.commit()
    return jsonify(ok=True, removed=gone)


@bp.get("/sw.js")
@allow("public")
def service_worker():
    """The service worker at the site root, so its scope is the whole portal."""
    resp = Response((ROOT / "static" / "sw.js").read_bytes(), mimetype="text/javascript")
    resp.headers["Service-Worker-Allowed"] = "/"
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@allow("public")
def unsubscribe_email(token: str):
    """The e-mail's unsubscribe link: GET asks (mail scanners follow links), POST turns the
    category's e-mail off. Needs no login; the signed token names the account and category."""
    parsed = channels.read_unsubscribe_token(token)
    if parsed is None:
        abort(404)
    account_id, category = parsed
    from portal.accounts.models import ResidentAccount

    if db.session.get(ResidentAccount, account_id) is None:
        abort(404)
    done = False
    if request.method == "POST":
        set_channel(account_id, category, "email", enabled=False)
        current_app.logger.info("account %s turned off e-mail for %s", account_id, category)
        done = True
    return render_template(
        "notices/mail/unsubscribe.html",
        category_label=channels.category_label(category),
        done=done,
        token=token,
    )


def set_channel(account_id: int, category: str, channel: str, *, enabled: bool) -> None:
    row = db.session.scalar(
        select(NotificationSetting).where(
            NotificationSetting.account_id == account_id,
            NotificationSetting.category == category,
            NotificationSetting.channel == channel,
        )
    )
    if row is None:
        db.session.add(
            NotificationSetting(account_id=account_id, category=category, channel=channel, enabled=enabled)
        )
    else:
        row.enabled = enabled
    db.session.commit()


# --- command line --------------------------------------------------------------------------------

push_cli = AppGroup("push", help="Web Push keys and channel delivery.")


@push_cli.command("keys")
def keys_command() -> None:
    """Make the VAPID key pair once; print the public key (the browsers' applicationServerKey)."""
    path = channels.vapid_key_path()
    made = channels.make_vapid_key(path)
    click.echo(("made " if made else "kept ") + str(path))
    click.echo("public key: " + (channels.application_server_key() or "?"))


@push_cli.command("deliver")
@click.option("--limit", type=int, default=None)
def deliver_command(limit: int | None) -> None:
    """Send the due e-mail and push rows (retries included)."""
    from portal.notices.delivery import deliver_due

    click.echo(str(deliver_due(limit)))


def init_app(app: Flask) -> None:
    if bp.name not in app.blueprints:
        app.register_blueprint(bp)
    if "push" not in app.cli.commands:
        app.cli.add_command(push_cli)
