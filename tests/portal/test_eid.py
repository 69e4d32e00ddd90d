"""External eID login over OpenID Connect, against a real local provider (tests/portal/oidc_provider.py)
on 127.0.0.1: the portal's test client starts the flow, ``requests`` follows the redirect to the
provider (which auto-approves its test user), and the portal's callback exchanges the code over HTTP."""

from __future__ import annotations

import logging
import time
from datetime import date
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from flask import render_template_string
from flask_babel import refresh
from joserfc.jwk import RSAKey
from sqlalchemy import func, select

from portal import eid
from portal.access.models import AccessRecord
from portal.cardid.models import ExternalIdentity
from tests.factories import make_account, make_resident
from tests.portal.oidc_provider import OIDCProvider

CLIENT_ID = "portal-test"
CLIENT_SECRET = "eid-client-secret-for-tests"
CALLBACK = "http://portal.test/eid/callback"
BASIC4_CLAIM = "https://eid.example.jp/claims/basic4"

HANAKO = {
    "sub": "pairwise-hanako-01",
    "name": "山田　花子",
    "birthdate": "1985-04-01",
    "gender": "female",
    "address": {
        "formatted": "千葉県みなと市中央区本町1丁目1番1号",
        "postal_code": "260-0001",
        "country": "JP",
    },
}


@pytest.fixture(scope="module")
def provider():
    idp = OIDCProvider(CLIENT_ID, CLIENT_SECRET, [CALLBACK]).start()
    yield idp
    idp.stop()


@pytest.fixture
def idp(provider):
    provider.reset()
    provider.user = dict(HANAKO)
    return provider


@pytest.fixture
def app_config(idp):
    return {
        "EID_OIDC_ISSUER": idp.issuer,
        "EID_OIDC_CLIENT_ID": CLIENT_ID,
        "EID_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "EID_NAME_JA": "テスト電子認証",
        "EID_NAME_EN": "Test eID",
        "RATELIMIT_ENABLED": False,
    }


@pytest.fixture(autouse=True)
def eid_registered(app):
    """Until the app factory calls it: init_app registers the blueprint only once."""
    eid.init_app(app)
    return app


@pytest.fixture
def client(app):
    c = app.test_client()
    c.set_cookie("lang", "en", domain="portal.test")  # the pages in English, whatever the catalogue says
    return c


def hanako(**kw):
    return make_resident(family="山田", given="花子", birth=date(1985, 4, 1), sex=2, **kw)


def to_provider(client):
    """The portal's redirect to the provider, and the provider's redirect back (not yet followed)."""
    start = client.get("/eid/login")
    assert start.status_code == 302, start.get_data(as_text=True)[:300]
    answer = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:300]
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return back


def eid_login(client):
    back = to_provider(client)
    return client.get(f"{back.path}?{back.query}")


def refused(resp, code: str, status: int) -> str:
    page = resp.get_data(as_text=True)
    assert resp.status_code == status, page[:500]
    assert f'data-eid-error="{code}"' in page, page[:1500]
    return page


def logged_in(client) -> bool:
    return client.get("/me/").status_code == 200


def records(db) -> list[AccessRecord]:
    return list(db.session.scalars(select(AccessRecord).order_by(AccessRecord.id)))


# --- the happy paths -----------------------------------------------------------------------------


def test_first_login_links_the_identity_records_it_and_logs_in(app, db, client, idp):
    person = hanako()
    make_account(resident=person)
    db.session.commit()

    resp = eid_login(client)
    assert resp.status_code == 302 and resp.headers["Location"] == "/me/"
    assert "山田" in client.get("/me/").get_data(as_text=True)

    # the request carried PKCE (S256), state, nonce and the configured scopes
    asked = idp.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
    assert asked["state"] and asked["nonce"] and asked["response_type"] == "code"
    assert asked["scope"].split() == ["openid", "profile", "address"]
    assert asked["redirect_uri"] == CALLBACK

    db.session.expire_all()
    link = db.session.scalar(select(ExternalIdentity))
    assert (link.issuer, link.subject, link.resident_id) == (idp.issuer, HANAKO["sub"], person.id)
    [rec] = records(db)
    assert rec.resident_id == person.id
    assert (rec.actor_kind, rec.actor_id, rec.actor_role) == ("partner", urlsplit(idp.issuer).netloc, "eid")
    assert rec.organisation == "テスト電子認証"
    assert (rec.data_items, rec.purpose) == ("basic4", "eid_link")
    assert idp.userinfo_requests == 0  # the ID token carried the basic 4 info


def test_second_login_uses_the_stored_identity(app, db, client, idp):
    person = hanako()
    make_account(resident=person)
    db.session.commit()
    assert eid_login(client).status_code == 302

    # Next time the provider sends no personal claims at all: iss + sub is enough.
    idp.user = {"sub": HANAKO["sub"]}
    other = app.test_client()
    resp = eid_login(other)
    assert resp.status_code == 302 and resp.headers["Location"] == "/me/"
    assert logged_in(other)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(ExternalIdentity)) == 1
    assert len(records(db)) == 1  # the register was read once, at linking
    assert db.session.scalar(select(ExternalIdentity.last_used_at)) is not None


def test_basic4_from_the_userinfo_endpoint(app, db, client, idp):
    make_account(resident=hanako())
    db.session.commit()
    idp.claims_in = "userinfo"
    assert eid_login(client).status_code == 302
    assert idp.userinfo_requests == 1
    assert logged_in(client)


def test_userinfo_for_another_subject_is_refused(app, db, client, idp):
    make_account(resident=hanako())
    db.session.commit()
    idp.claims_in = "userinfo"
    idp.userinfo_overrides = {"sub": "someone-else"}
    refused(eid_login(client), "provider_error", 502)
    assert not logged_in(client)
    assert db.session.scalar(select(func.count()).select_from(ExternalIdentity)) == 0


def test_custom_basic4_claim(app, db, client, idp):
    app.config["EID_OIDC_BASIC4_CLAIM"] = BASIC4_CLAIM
    make_account(resident=hanako())
    db.session.commit()
    idp.user = {
        "sub": "pairwise-custom",
        BASIC4_CLAIM: {
            "name": "山田花子",
            "address": "千葉県みなと市中央区本町１丁目１番１号",
            "birth_date": "19850401",
            "sex": "2",
        },
    }
    assert eid_login(client).status_code == 302
    assert logged_in(client)


def test_tokens_and_the_pkce_verifier_stay_out_of_the_logs(app, db, client, idp, caplog):
    caplog.set_level(logging.DEBUG)
    make_account(resident=hanako())
    db.session.commit()
    assert eid_login(client).status_code == 302
    assert len(idp.secrets_seen) >= 4  # code, verifier, access token, ID token
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "eid login ok" in logged
    assert [s for s in idp.secrets_seen if s and s in logged] == []


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"nonce": "not-the-nonce-the-portal-sent"},
        {"aud": "another-client", "azp": CLIENT_ID},
        {"iss": "http://127.0.0.1:1"},
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
    ],
    ids=["wrong-nonce", "wrong-audience", "wrong-issuer", "expired"],
)
def test_id_token_checks(app, db, client, idp, overrides):
    make_account(resident=hanako())
    db.session.commit()
    idp.id_token_overrides = overrides
    page = refused(eid_login(client), "token_invalid", 400)
    assert "could not be verified" in page
    assert not logged_in(client)
    assert db.session.scalar(select(func.count()).select_from(ExternalIdentity)) == 0


def test_id_token_signed_with_another_key_is_refused(app, db, client, idp):
    make_account(resident=hanako())
    db.session.commit()
    idp.signing_key = RSAKey.generate_key(2048, parameters={"kid": idp.key.kid})
    refused(eid_login(client), "token_invalid", 400)
    assert not logged_in(client)


def test_wrong_state_is_refused_before_the_code_is_used(app, db, client, idp):
    make_account(resident=hanako())
    db.session.commit()
    back = to_provider(client)
    query = dict(parse_qsl(back.query))
    tampered = urlencode({**query, "state": "forged-state"})
    refused(client.get(f"{back.path}?{tampered}"), "state_mismatch", 400)
    # another browser (no session state) cannot complete it either
    refused(app.test_client().get(f"{back.path}?{back.query}"), "state_mismatch", 400)
    assert idp.token_requests == 0
    assert not logged_in(client)


def test_a_completed_callback_cannot_be_replayed(app, db, client, idp):
    make_account(resident=hanako())
    db.session.commit()
    back = to_provider(client)
    assert client.get(f"{back.path}?{back.query}").status_code == 302
    refused(client.get(f"{back.path}?{back.query}"), "state_mismatch", 400)


def test_user_cancels_at_the_provider(app, db, client, idp):
    idp.deny = "access_denied"
    page = refused(eid_login(client), "cancelled", 400)
    assert "You cancelled the login at Test eID" in page
    assert idp.token_requests == 0


def test_no_matching_resident(app, db, client, idp):
    make_account(resident=hanako())
    db.session.commit()
    idp.user = {**HANAKO, "birthdate": "1985-04-02"}
    page = refused(eid_login(client), "no_match", 403)
    assert "No current resident of the city matches" in page
    assert not logged_in(client)
    assert db.session.scalar(select(func.count()).select_from(ExternalIdentity)) == 0
    assert records(db) == []


def test_moved_out_resident_does_not_match_the_first_time(app, db, client, idp):
    make_account(resident=hanako(status="moved_out"))
    db.session.commit()
    refused(eid_login(client), "no_match", 403)


def test_ambiguous_match_is_refused(app, db, client, idp):
    make_account(resident=hanako())
    hanako()  # the same basic 4 info on a second register record
    db.session.commit()
    page = refused(eid_login(client), "ambiguous", 409)
    assert "More than one resident matches" in page
    assert db.session.scalar(select(func.count()).select_from(ExternalIdentity)) == 0
    assert records(db) == []


def test_missing_claims_are_refused(app, db, client, idp):
    make_account(resident=hanako())
    db.session.commit()
    idp.user = {"sub": "pairwise-shy", "name": "山田 花子"}
    refused(eid_login(client), "claims_missing", 403)
    assert idp.userinfo_requests == 1  # it asked the UserInfo endpoint before giving up


def test_linked_resident_who_moved_out_is_refused(app, db, client, idp):
    person = hanako()
    make_account(resident=person)
    db.session.commit()
    assert eid_login(client).status_code == 302
    person.status = "moved_out"
    db.session.commit()
    other = app.test_client()
    refused(eid_login(other), "resident_not_active", 403)
    assert not logged_in(other)


def test_identified_resident_without_an_account(app, db, client, idp):
    person = hanako()
    db.session.commit()
    page = refused(eid_login(client), "no_account", 403)
    assert "Create an account first" in page and 'href="/register"' in page
    assert not logged_in(client)
    # the identity stays linked: once there is an account, the next login needs nothing more
    db.session.expire_all()
    assert db.session.scalar(select(ExternalIdentity.resident_id)) == person.id
    make_account(resident=person)
    db.session.commit()
    assert eid_login(client).status_code == 302
    assert logged_in(client)
    assert len(records(db)) == 1


def test_discovery_naming_another_issuer_is_refused(app, db, client, idp):
    idp.discovery_overrides = {"issuer": "http://127.0.0.1:1"}
    refused(client.get("/eid/login"), "provider_error", 502)


def test_provider_unreachable(app, db, client):
    app.config["EID_OIDC_ISSUER"] = "http://127.0.0.1:9"  # discard port: nothing listens
    refused(client.get("/eid/login"), "provider_unavailable", 502)


# --- configuration ---------------------------------------------------------------------------------

BUTTON = '{% include "eid/login_button.html" %}'


def render_button(app, **headers) -> str:
    with app.test_request_context("/login", headers=headers):
        refresh()  # the locale is cached on the test's app context
        return render_template_string(BUTTON)


def test_login_button_when_configured(app, client):
    html = render_button(app, Cookie="lang=en")
    assert 'href="/eid/login"' in html and "Log in with Test eID" in html
    assert "テスト電子認証" in render_button(app)  # Japanese by default


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": False}])
def test_feature_off_without_an_issuer(app, client):
    assert client.get("/eid/login").status_code == 404
    assert client.get("/eid/callback?code=x&state=y").status_code == 404
    assert render_button(app).strip() == ""
