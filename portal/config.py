"""Configuration classes, chosen by the PORTAL_CONFIG environment variable.

Development is the default: SQLite in the instance folder, mail written to files, jobs inline.
Production refuses to start without its secrets; nothing secret lives in the repository.
"""

from __future__ import annotations

import base64
import os
from datetime import timedelta
from pathlib import Path
from typing import ClassVar


class ConfigError(RuntimeError):
    """The configuration is unusable; the message names what is missing."""


class BaseConfig:
    NAME = "base"
    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"pool_pre_ping": True}
    # The vault key: 32 bytes, base64. Encrypts the Individual Number (AES-256-GCM); a separate
    # lookup key is derived from it with HKDF for the keyed hash.
    VAULT_KEY: str | None = None
    VAULT_KEY_ID = "k1"

    BABEL_DEFAULT_LOCALE = "ja"
    BABEL_DEFAULT_TIMEZONE = "Asia/Tokyo"
    LANGUAGES = ("ja", "en")

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "portal_session"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SECURE = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = timedelta(hours=8)
    # Idle timeouts enforced on the server (seconds without a request).
    RESIDENT_IDLE_SECONDS = 30 * 60
    STAFF_IDLE_SECONDS = 15 * 60
    # How long a login counts as "fresh" for sensitive actions.
    FRESH_LOGIN_SECONDS = 10 * 60

    WTF_CSRF_TIME_LIMIT = 3600
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    LOGIN_RATE_LIMIT = "10 per minute"

    MAIL_BACKEND = "file"  # file | smtp | memory
    MAIL_SENDER = "no-reply@city.example.jp"
    MAIL_OUTBOX_DIR: str | None = None
    SMTP_HOST = "127.0.0.1"
    SMTP_PORT = 25
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_STARTTLS = False

    REDIS_URL: str | None = None
    # Background jobs (fan-out, e-mail, push): inline here; RQ on Redis in production.
    JOBS_INLINE = True
    JOBS_QUEUE = "portal"

    # Operations (portal/ops): "json" for one JSON object per log line; a bearer token that may
    # read /metrics from elsewhere than loopback; how many proxies (nginx) stand in front.
    LOG_FORMAT = "text"
    METRICS_TOKEN: str | None = None
    PROXY_COUNT = 0

    # Card identity (docs/card-identity.md). Trust anchors: a folder of root certificates (PEM);
    # production pins the JPKI roots shipped in card/trust/jpki. CRLs: files refreshed hourly.
    CARD_TRUST_DIR: str | None = None
    CARD_CRL_FILES: tuple[str, ...] = ()
    CARD_CRL_REFRESH_SECONDS = 3600
    CARD_CHALLENGE_SECONDS = 60
    CARD_CHALLENGE_RATE_LIMIT = "30 per minute"
    # The terminal agent on a counter PC (python -m kiosk.agent), reached by the page over loopback.
    AGENT_ORIGIN = "http://127.0.0.1:47100"
    # The origin card challenges are bound to; by default the one the request came in on.
    PUBLIC_ORIGIN: str | None = None
    CITY_NAME_JA = "みなと市"
    CITY_NAME_EN = "Minato City"
    # argon2id parameters: a profile name from argon2.profiles.
    PASSWORD_HASH_PROFILE = "RFC_9106_LOW_MEMORY"  # noqa: S105 - a parameter set, not a secret
    EMAIL_TOKEN_MAX_AGE = 24 * 3600
    RESET_TOKEN_MAX_AGE = 3600


class DevelopmentConfig(BaseConfig):
    NAME = "development"
    # Plain http on 127.0.0.1 in development; Production sets Secure cookies.
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False


class TestConfig(BaseConfig):
    NAME = "test"
    TESTING = True
    SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105 - tests only
    VAULT_KEY = base64.b64encode(b"t" * 32).decode()
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False
    MAIL_BACKEND = "memory"
    PASSWORD_HASH_PROFILE = "CHEAPEST"  # noqa: S105 - a parameter set, not a secret
    # Point external services at addresses that fail loudly, so nothing unmocked escapes.
    SMTP_HOST = "127.0.0.1"
    SMTP_PORT = 9
    RATELIMIT_ENABLED = True
    WTF_CSRF_ENABLED = True


class ProductionConfig(BaseConfig):
    NAME = "production"
    JOBS_INLINE = False
    # Statement parameters (names, addresses) never reach an exception message or a log.
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"pool_pre_ping": True, "hide_parameters": True}
    LOG_FORMAT = "json"
    PROXY_COUNT = 1
    # Redis down: rate limits fall back to memory per process instead of failing every request.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_STORAGE_URI = "redis://127.0.0.1:6379/1"
    MAIL_BACKEND = "smtp"


CONFIGS = {
    "development": DevelopmentConfig,
    "test": TestConfig,
    "production": ProductionConfig,
}

# Settings read from the environment when present (name → how to parse).
ENV_SETTINGS = {
    "SECRET_KEY": str,
    "DATABASE_URL": str,
    "VAULT_KEY": str,
    "REDIS_URL": str,
    "RATELIMIT_STORAGE_URI": str,
    "MAIL_BACKEND": str,
    "MAIL_SENDER": str,
    "SMTP_HOST": str,
    "SMTP_PORT": int,
    "SMTP_USERNAME": str,
    "SMTP_PASSWORD": str,
    "CARD_TRUST_DIR": str,
    "VAPID_PRIVATE_KEY_FILE": str,
    "VAPID_SUBJECT": str,
    "EID_OIDC_ISSUER": str,
    "EID_OIDC_CLIENT_ID": str,
    "EID_OIDC_CLIENT_SECRET": str,
    "CARD_CRL_FILES": lambda v: tuple(p for p in v.split(",") if p),
    "AGENT_ORIGIN": str,
    "PUBLIC_ORIGIN": str,
    "MAIL_OUTBOX_DIR": str,
    "LOG_FORMAT": str,
    "METRICS_TOKEN": str,
    "PROXY_COUNT": int,
    "DELIVERY_LEASE_SECONDS": int,
    "DELIVERY_BATCH": int,
    "PREFILING_ATTACHMENT_DIR": str,
    # a load test from one address turns the per-address limits off (bench/load.py)
    "RATELIMIT_ENABLED": lambda v: v.lower() not in ("0", "false", "no", "off"),
}


def choose(name: str | None = None) -> type[BaseConfig]:
    name = (name or os.environ.get("PORTAL_CONFIG") or "development").lower()
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(f"PORTAL_CONFIG={name!r}: expected one of {', '.join(CONFIGS)}") from None


def finalise(config: dict, instance_path: str) -> None:
    """Fill in environment settings and derived defaults; refuse unsafe production settings."""
    for key, parse in ENV_SETTINGS.items():
        if key in os.environ and os.environ[key] != "":
            target = "SQLALCHEMY_DATABASE_URI" if key == "DATABASE_URL" else key
            config[target] = parse(os.environ[key])
    if config.get("SMTP_STARTTLS") is None:
        config["SMTP_STARTTLS"] = False
    name = config.get("NAME")
    if name == "production":
        missing = [
            env
            for env, key in (
                ("SECRET_KEY", "SECRET_KEY"),
                ("DATABASE_URL", "SQLALCHEMY_DATABASE_URI"),
                ("VAULT_KEY", "VAULT_KEY"),
                # Card challenges are bound to the public origin; behind a proxy the request's
                # host is not it, and terminals would refuse every challenge.
                ("PUBLIC_ORIGIN", "PUBLIC_ORIGIN"),
            )
            if not config.get(key)
        ]
        if missing:
            raise ConfigError("production needs these environment variables: " + ", ".join(missing))
    else:
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        if not config.get("SQLALCHEMY_DATABASE_URI"):
            config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(instance_path, "portal.sqlite3")
        if not config.get("SECRET_KEY") or not config.get("VAULT_KEY"):
            _development_secrets(config, instance_path)
        if not config.get("MAIL_OUTBOX_DIR"):
            config["MAIL_OUTBOX_DIR"] = os.path.join(instance_path, "outbox")
    _card_defaults(config, instance_path)
    if config.get("REDIS_URL") and config.get("RATELIMIT_STORAGE_URI", "").startswith("memory"):
        config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"]
    key = base64.b64decode(config["VAULT_KEY"])
    if len(key) != 32:
        raise ConfigError("VAULT_KEY must be 32 bytes, base64-encoded")


def _development_secrets(config: dict, instance_path: str) -> None:
    """Development keys are made once per checkout and kept in the instance folder (not in git)."""
    path = Path(instance_path) / "dev-secrets.env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                values[k] = v
    changed = False
    for key, make in (
        ("SECRET_KEY", lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()),
        ("VAULT_KEY", lambda: base64.b64encode(os.urandom(32)).decode()),
    ):
        if key not in values:
            values[key] = make()
            changed = True
        if not config.get(key):
            config[key] = values[key]
    if changed:
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)


def _card_defaults(config: dict, instance_path: str) -> None:
    """Outside production, the demo cards' test PKI (made by flask demo cards) is trusted when it
    exists; otherwise, and in production, the JPKI roots."""
    demo_pki = Path(instance_path) / "cards" / "pki"
    use_demo = config.get("NAME") != "production" and (demo_pki / "auth_root.pem").exists()
    if not config.get("CARD_TRUST_DIR"):
        config["CARD_TRUST_DIR"] = str(
            demo_pki if use_demo else Path(__file__).parent.parent / "card/trust/jpki"
        )
    if not config.get("CARD_CRL_FILES") and use_demo:
        config["CARD_CRL_FILES"] = tuple(
            str(p) for p in (demo_pki / "auth_crl.der", demo_pki / "sign_crl.der") if p.exists()
        )
