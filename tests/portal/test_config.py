import pytest

from portal.config import ConfigError, choose
from wsgi import create_app


def test_config_chosen_by_environment(monkeypatch):
    monkeypatch.setenv("PORTAL_CONFIG", "production")
    assert choose().NAME == "production"
    monkeypatch.setenv("PORTAL_CONFIG", "nonsense")
    with pytest.raises(ConfigError, match="expected one of"):
        choose()


def test_production_refuses_to_start_without_secrets(monkeypatch):
    for key in ("SECRET_KEY", "DATABASE_URL", "VAULT_KEY", "PUBLIC_ORIGIN"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigError) as info:
        create_app("production")
    for key in ("SECRET_KEY", "DATABASE_URL", "VAULT_KEY", "PUBLIC_ORIGIN"):
        assert key in str(info.value)


def test_production_starts_with_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.sqlite3")
    monkeypatch.setenv("VAULT_KEY", "dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q=")
    monkeypatch.setenv("PUBLIC_ORIGIN", "https://portal.example")
    app = create_app("production")
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["RATELIMIT_STORAGE_URI"].startswith("redis://")


def test_vault_key_must_be_32_bytes(monkeypatch, tmp_path):
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/p.sqlite3")
    monkeypatch.setenv("VAULT_KEY", "c2hvcnQ=")
    monkeypatch.setenv("PUBLIC_ORIGIN", "https://portal.example")
    with pytest.raises(ConfigError, match="32 bytes"):
        create_app("production")
