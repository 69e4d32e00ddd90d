"""The two outside channels of a notice: e-mail (``portal.mail.send``) and Web Push (pywebpush).

Each ``send_*`` returns nothing on success and raises ``ChannelError`` with a short code (never
personal data: no address, endpoint or token) that becomes the delivery's reason. ``final``
errors are not retried. What a channel carries: the notice's title (filled for the resident) and
a link to the inbox item; the body stays behind the login, where reading it records the read.
"""

from __future__ import annotations

import base64
import json
import os
import smtplib
from functools import lru_cache
from pathlib import Path

from flask import current_app
from flask_babel import force_locale
from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import FileSystemLoader
from sqlalchemy import delete, update

from portal import mail
from portal.extensions import db
from portal.models_base import utcnow
from portal.notices.models import CATEGORIES, PushSubscription

# Settings and their defaults; the app's config wins (``setting``).
DEFAULTS: dict = {
    "VAPID_PRIVATE_KEY_FILE": None,  # None: <instance>/vapid_private.pem
    "VAPID_SUBJECT": None,  # None: mailto:<MAIL_SENDER>
    "PUSH_TTL": 86400,
    "PUSH_URGENCY": {"disaster": "high"},  # category → very-low | low | normal | high
    "PUSH_TIMEOUT": 10,
    # Only https push services in production; tests point a subscription at a loopback receiver.
    "PUSH_ALLOW_HTTP_ENDPOINTS": False,
    # The push services a subscription may name (a host or its subdomains); None: any host.
    # The server POSTs to the endpoint, so an open list would let anyone aim it at any address.
    "PUSH_ENDPOINT_HOSTS": (
        "fcm.googleapis.com",
        "push.services.mozilla.com",
        "notify.windows.com",
        "push.apple.com",
    ),
    "DELIVERY_MAX_ATTEMPTS": 5,
    "DELIVERY_RETRY_BASE_SECONDS": 60,
    "DELIVERY_RETRY_MAX_SECONDS": 6 * 3600,
    "DELIVERY_LEASE_SECONDS": 300,
    "DELIVERY_BATCH": 200,
    # The inbox item's path; the inbox views own the route.
    "NOTICE_ITEM_PATH": "/me/notices/{delivery_id}",
}
UNSUBSCRIBE_SALT = "notice-unsubscribe"
TOPIC_PREFIX = "notice"


class ChannelError(Exception):
    def __init__(self, code: str, *, final: bool = False) -> None:
        super().__init__(code)
        self.code = code[:200]
        self.final = final


def setting(name: str):
    return current_app.config.get(name, DEFAULTS[name]) if name in DEFAULTS else current_app.config[name]


def public_base() -> str:
    cfg = current_app.config
    if cfg.get("PUBLIC_ORIGIN"):
        return cfg["PUBLIC_ORIGIN"].rstrip("/")
    if cfg.get("SERVER_NAME"):
        return f"{cfg.get('PREFERRED_URL_SCHEME', 'http')}://{cfg['SERVER_NAME']}"
    return "http://localhost"


def item_url(delivery_id: int) -> str:
    return public_base() + setting("NOTICE_ITEM_PATH").format(delivery_id=delivery_id)


# --- unsubscribe links ---------------------------------------------------------------------------


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(account_id: int, category: str) -> str:
    return _serializer().dumps({"a": account_id, "c": category})


def read_unsubscribe_token(token: str) -> tuple[int, str] | None:
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("c") not in CATEGORIES or not isinstance(data.get("a"), int):
        return None
    return data["a"], data["c"]


def unsubscribe_url(account_id: int, category: str) -> str:
    return public_base() + "/unsubscribe/" + unsubscribe_token(account_id, category)


# --- e-mail --------------------------------------------------------------------------------------


def category_label(category: str) -> str:
    from portal.notices.forms import CATEGORY_LABELS  # the labels the inbox and settings show

    return str(CATEGORY_LABELS.get(category, category))


def _mail_templates():
    """This package's templates on the app's Jinja environment (its i18n and autoescape), usable
    in a worker whether or not a notices blueprint is registered."""
    env = current_app.extensions.get("notice_mail_env")
    if env is None:
        folder = Path(__file__).parent / "templates"
        env = current_app.jinja_env.overlay(loader=FileSystemLoader(str(folder)))
        current_app.extensions["notice_mail_env"] = env
    return env


def send_email(*, account, title: str, category: str, delivery_id: int) -> None:
    if not account.email or account.email_verified_at is None:
        raise ChannelError("no_verified_address", final=True)
    lang = account.locale if account.locale in current_app.config["LANGUAGES"] else "ja"
    context = {
        "title": title,
        "url": item_url(delivery_id),
        "unsubscribe_url": unsubscribe_url(account.id, category),
        "category": category,
        "lang": lang,
        "city": current_app.config["CITY_NAME_EN" if lang == "en" else "CITY_NAME_JA"],
    }
    env = _mail_templates()
    with force_locale(lang):
        context["category_label"] = category_label(category)
        text = env.get_template("notices/mail/notice.txt").render(**context)
        html = env.get_template("notices/mail/notice.html").render(**context)
    try:
        mail.send(account.email, title, text, html)
    except smtplib.SMTPRecipientsRefused:
        raise ChannelError("smtp_recipient_refused", final=True) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise ChannelError("smtp_" + type(exc).__name__) from None


# --- Web Push ------------------------------------------------------------------------------------


def vapid_key_path() -> Path:
    configured = setting("VAPID_PRIVATE_KEY_FILE")
    return Path(configured) if configured else Path(current_app.instance_path) / "vapid_private.pem"


def make_vapid_key(path: Path) -> bool:
    """Write a new P-256 private key (PEM, mode 0600) unless the file exists. True if written."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return True


@lru_cache(maxsize=4)
def _vapid(path: str, mtime: float):
    from py_vapid import Vapid

    return Vapid.from_file(private_key_file=path)


def vapid():
    path = vapid_key_path()
    if not path.exists():
        raise ChannelError("no_vapid_key", final=False)
    return _vapid(str(path), path.stat().st_mtime)


def application_server_key() -> str | None:
    """The public VAPID key as the browser's applicationServerKey (base64url, uncompressed point)."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = vapid()
    except ChannelError:
        return None
    raw = key.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def vapid_subject() -> str:
    return setting("VAPID_SUBJECT") or "mailto:" + current_app.config["MAIL_SENDER"]


def push_payload(*, title: str, category: str, delivery_id: int) -> str:
    return json.dumps(
        {
            "title": title,
            "url": item_url(delivery_id),
            "tag": f"{TOPIC_PREFIX}-{delivery_id}",
            "category": category,
        },
        ensure_ascii=False,
    )


def send_push(*, account, title: str, category: str, delivery_id: int) -> None:
    """Push to every browser the account subscribed. Sent when at least one accepted; subscriptions
    the push service calls gone (404/410) are deleted; none left is a final failure."""
    from pywebpush import WebPushException, webpush

    subs = list(
        db.session.scalars(db.select(PushSubscription).where(PushSubscription.account_id == account.id))
    )
    if not subs:
        raise ChannelError("no_subscription", final=True)
    key = vapid()
    data = push_payload(title=title, category=category, delivery_id=delivery_id)
    headers = {
        "Urgency": setting("PUSH_URGENCY").get(category, "normal"),
        # A later copy of the same delivery replaces one still waiting at the push service.
        "Topic": f"{TOPIC_PREFIX}{delivery_id}",
    }
    accepted, gone, errors = 0, 0, []
    for sub in subs:
        info = {"endpoint": sub.endpoint, "keys": {"p256dh": sub.p256dh, "auth": sub.auth}}
        try:
            webpush(
                info,
                data=data,
                vapid_private_key=key,
                vapid_claims={"sub": vapid_subject()},
                ttl=int(setting("PUSH_TTL")),
                headers=headers,
                timeout=setting("PUSH_TIMEOUT"),
            )
        except WebPushException as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (404, 410):
                db.session.execute(delete(PushSubscription).where(PushSubscription.id == sub.id))
                gone += 1
            else:
                errors.append(f"push_http_{status}" if status else "push_error")
        except OSError as exc:  # requests' ConnectionError and timeouts are OSErrors
            errors.append("push_" + type(exc).__name__)
        else:
            accepted += 1
            db.session.execute(
                update(PushSubscription).where(PushSubscription.id == sub.id).values(last_success_at=utcnow())
            )
    db.session.commit()
    current_app.logger.info(
        "push for delivery %s: %s accepted, %s gone, %s failed", delivery_id, accepted, gone, len(errors)
    )
    if accepted:
        return
    if errors:
        raise ChannelError(errors[0])
    raise ChannelError("push_subscription_gone", final=True)
