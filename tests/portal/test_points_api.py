"""The partner API over HTTP: OAuth2 client credentials, scopes, award/redeem/reverse, balance and
transactions (each read recorded), Idempotency-Key, member QR, JSON errors, settlement; and 100
concurrent redeems against one balance on PostgreSQL (threads, each with its own connection)."""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from portal.access.models import AccessRecord
from portal.extensions import db as database
from portal.points import ledger, partners
from portal.points.models import IdempotentRequest, LedgerEntry, OAuthToken
from tests.portal.points_helpers import bearer, make_client, make_member, make_partner, token


@pytest.fixture
def shop(db):
    partner = make_partner(name="みなと商店街")
    client_id, secret = make_client(partner)
    return partner, client_id, secret


def _award(client, tok, member, points, key, **extra):
    return client.post(
        f"/api/points/members/{member}/awards", json={"points": points, **extra}, headers=bearer(tok, key)
    )


def _redeem(client, tok, member, points, key):
    return client.post(
        f"/api/points/members/{member}/redemptions", json={"points": points}, headers=bearer(tok, key)
    )


def test_token_and_award_redeem_balance(client, db, shop):
    partner, client_id, secret = shop
    person, member = make_member(partner)
    tok = token(client, client_id, secret)
    stored = db.session.scalar(select(OAuthToken))
    assert stored.token_hash != tok and len(stored.token_hash) == 64  # only the hash is kept
    resp = _award(client, tok, member, 120, "a-1", reference="R-1")
    assert resp.status_code == 201, resp.get_json()
    entry = resp.get_json()["entry"]
    assert (entry["kind"], entry["points"], entry["status"], entry["member_id"]) == (
        "earn",
        120,
        "active",
        member,
    )
    resp = _redeem(client, tok, member, 50, "r-1")
    assert resp.status_code == 201
    assert resp.get_json()["entry"]["points"] == -50
    before = db.session.scalar(select(func.count()).select_from(AccessRecord))
    body = client.get(f"/api/points/members/{member}/balance", headers=bearer(tok)).get_json()
    assert (body["available"], body["pending"], body["tier"]) == (70, 0, "standard")
    assert [e["points"] for e in body["expiries"]] == [70]
    txs = client.get(f"/api/points/members/{member}/transactions", headers=bearer(tok)).get_json()
    assert [e["kind"] for e in txs["entries"]] == ["redeem", "earn"]
    records = db.session.scalars(select(AccessRecord).order_by(AccessRecord.id)).all()[before:]
    assert [(r.actor_kind, r.resident_id, r.purpose) for r in records] == [
        ("partner", person.id, "points_partner: balance"),
        ("partner", person.id, "points_partner: transactions"),
    ]
    assert records[0].organisation == "みなと商店街" and records[0].actor_id == client_id


def test_pending_award_with_holding_period(client, db):
    partner = make_partner(holding_days=14)
    client_id, secret = make_client(partner)
    _, member = make_member(partner)
    tok = token(client, client_id, secret)
    assert _award(client, tok, member, 100, "k").get_json()["entry"]["status"] == "pending"
    body = client.get(f"/api/points/members/{member}/balance", headers=bearer(tok)).get_json()
    assert (body["available"], body["pending"]) == (0, 100)
    resp = _redeem(client, tok, member, 10, "r")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "insufficient_points"


def test_idempotent_retries(client, db, shop):
    partner, client_id, secret = shop
    person, member = make_member(partner)
    tok = token(client, client_id, secret)
    first = _award(client, tok, member, 100, "same-key")
    again = _award(client, tok, member, 100, "same-key")
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = _award(client, tok, member, 999, "same-key")
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"
    missing = client.post(f"/api/points/members/{member}/awards", json={"points": 5}, headers=bearer(tok))
    assert missing.status_code == 400
    assert missing.get_json()["error"]["code"] == "idempotency_key_required"
    assert ledger.balance(person.id).available == 100
    # A refused write is not stored: after the member earns more, the same key works.
    assert _redeem(client, tok, member, 150, "spend-1").status_code == 409
    _award(client, tok, member, 100, "more")
    assert _redeem(client, tok, member, 150, "spend-1").status_code == 201
    assert ledger.balance(person.id).available == 50
    # Keys are per partner: another partner may use the same key.
    other_partner = make_partner(name="カフェ")
    cid, sec = make_client(other_partner)
    database.session.commit()
    member2 = partners.opt_in(person.id, other_partner.id).member_id
    database.session.commit()
    assert _award(client, token(client, cid, sec), member2, 10, "same-key").status_code == 201


def test_scopes_are_enforced(client, db):
    partner = make_partner()
    client_id, secret = make_client(partner, scopes=("read", "award"))
    _, member = make_member(partner)
    read_only = token(client, client_id, secret, scope="read")
    resp = _award(client, read_only, member, 10, "x")
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "insufficient_scope"
    full = token(client, client_id, secret)
    assert _award(client, full, member, 10, "y").status_code == 201
    resp = _redeem(client, full, member, 5, "z")  # the client was never given redeem
    assert resp.status_code == 403
    # Asking for a scope the client does not have gives a token without it.
    asked = token(client, client_id, secret, scope="redeem read")
    assert _redeem(client, asked, member, 5, "w").status_code == 403
    for headers in ({}, {"Authorization": "Bearer nonsense"}):
        resp = client.get(f"/api/points/members/{member}/balance", headers=headers)
        assert resp.status_code == 401
        assert resp.get_json()["error"]["code"] == "invalid_token"


def test_wrong_secret_and_revoked_client(client, db, shop):
    partner, client_id, secret = shop
    resp = client.post(
        "/api/points/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "wrong"},
    )
    assert resp.status_code in (400, 401)
    assert resp.get_json()["error"] == "invalid_client"
    tok = token(client, client_id, secret)
    _, member = make_member(partner)
    from portal.models_base import utcnow
    from portal.points.models import OAuthClient

    database.session.scalar(select(OAuthClient)).revoked_at = utcnow()
    database.session.commit()
    assert client.get(f"/api/points/members/{member}/balance", headers=bearer(tok)).status_code == 401


def test_members_are_per_partner_and_opt_out_hides_them(client, db, shop):
    partner, client_id, secret = shop
    person, member = make_member(partner)
    other = make_partner(name="他の店")
    other_member = partners.opt_in(person.id, other.id).member_id
    database.session.commit()
    assert other_member != member
    tok = token(client, client_id, secret)
    assert client.get(f"/api/points/members/{other_member}/balance", headers=bearer(tok)).status_code == 404
    partners.opt_out(person.id, partner.id)
    database.session.commit()
    resp = client.get(f"/api/points/members/{member}/balance", headers=bearer(tok))
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "member_unknown"


def test_member_qr_identifies_the_member(client, app, db, shop):
    partner, client_id, secret = shop
    person, member = make_member(partner)
    qr = partners.member_qr_token(person.id)
    database.session.commit()
    tok = token(client, client_id, secret)
    resp = client.post("/api/points/members/identify", json={"qr": qr}, headers=bearer(tok))
    assert resp.status_code == 200 and resp.get_json() == {"member_id": member}
    payload = json.loads(base64.urlsafe_b64decode(qr.split(".")[0] + "=="))
    assert set(payload) == {"s", "n"}  # an opaque subject and a nonce: no resident id, no name
    assert payload["s"] == ledger.find_account(person.id).qr_subject
    record = database.session.scalar(select(AccessRecord).order_by(AccessRecord.id.desc()))
    assert record.purpose == "points_partner: identify_qr"
    bad = client.post("/api/points/members/identify", json={"qr": qr[:-2] + "xx"}, headers=bearer(tok))
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "qr_invalid"
    # Not joined: the partner learns nothing.
    stranger = make_partner(name="知らない店")
    cid, sec = make_client(stranger)
    resp = client.post(
        "/api/points/members/identify", json={"qr": qr}, headers=bearer(token(client, cid, sec))
    )
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "not_a_member"
    app.config["POINTS_QR_SECONDS"] = -1
    resp = client.post("/api/points/members/identify", json={"qr": qr}, headers=bearer(tok))
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "qr_expired"


def test_reversal_over_the_api(client, db, shop):
    partner, client_id, secret = shop
    person, member = make_member(partner)
    tok = token(client, client_id, secret)
    _award(client, tok, member, 100, "a")
    spent = _redeem(client, tok, member, 60, "r").get_json()["entry"]
    resp = client.post(
        f"/api/points/entries/{spent['id']}/reversal", json={"reason": "返品"}, headers=bearer(tok, "rev")
    )
    assert resp.status_code == 201
    body = resp.get_json()["entry"]
    assert (body["kind"], body["points"], body["reverses"]) == ("reverse", 60, spent["id"])
    again = client.post(f"/api/points/entries/{spent['id']}/reversal", json={}, headers=bearer(tok, "rev-2"))
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_reversed"
    assert ledger.balance(person.id).available == 100
    # Another partner cannot reverse this partner's entries.
    other = make_partner(name="別の店")
    cid, sec = make_client(other)
    resp = client.post(
        f"/api/points/entries/{spent['id']}/reversal", json={}, headers=bearer(token(client, cid, sec), "x")
    )
    assert resp.status_code == 404


@pytest.mark.parametrize(
    "payload",
    [
        {"points": 0},
        {"points": -5},
        {"points": "10"},
        {"points": True},
        {"points": 1.5},
        {},
        {"points": 5, "x": 1},
    ],
)
def test_bad_bodies_get_json_errors_and_change_nothing(client, db, shop, payload):
    partner, client_id, secret = shop
    _person, member = make_member(partner)
    tok = token(client, client_id, secret)
    resp = client.post(f"/api/points/members/{member}/awards", json=payload, headers=bearer(tok, "k"))
    assert resp.status_code == 400
    assert resp.is_json and resp.get_json()["error"]["code"] in ("points_positive", "bad_request")
    resp = client.post(
        f"/api/points/members/{member}/awards",
        data="not json",
        headers=bearer(tok, "k2"),
        content_type="text/plain",
    )
    assert resp.status_code == 400 and resp.is_json
    assert database.session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    assert database.session.scalar(select(func.count()).select_from(IdempotentRequest)) == 0


def test_unknown_routes_and_methods_are_json(client, db):
    resp = client.get("/api/points/nothing-here")
    assert resp.status_code == 404 and resp.is_json
    resp = client.get("/api/points/members/x/awards")
    assert resp.status_code == 405 and resp.is_json


def test_openapi_document(client, db):
    doc = client.get("/api/points/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["components"]["securitySchemes"]["partner"]["flows"]["clientCredentials"]["scopes"]) == {
        "read",
        "award",
        "redeem",
    }
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method == "post" and path != "/oauth/token" and "Idempotency" not in json.dumps(op):
                assert path in ("/members/challenges", "/members/identify"), path


def test_settlement_csv(client, db, shop, app):
    partner, client_id, secret = shop
    _, member = make_member(partner)
    tok = token(client, client_id, secret)
    _award(client, tok, member, 100, "a")
    _redeem(client, tok, member, 30, "b")
    month = ledger.local_date().strftime("%Y-%m")
    body = partners.settlement_csv(partner, month)
    lines = body.strip().split("\r\n")
    assert lines[0] == ",".join(partners.SETTLEMENT_HEADER)
    assert [line.split(",")[3] for line in lines[1:3]] == ["earn", "redeem"]
    assert all(member in line for line in lines[1:3])
    assert lines[-1].split(",")[4] == "70"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["points", "settlement", partner.code, month])
    assert (
        result.exit_code == 0
        and result.output.replace("\r\n", "\n").strip() == body.replace("\r\n", "\n").strip()
    )
    assert runner.invoke(args=["points", "settlement", partner.code, "2026-13"]).exit_code != 0


def test_rate_limit_answers_json(client, app, db, shop):
    partner, client_id, secret = shop
    _, member = make_member(partner)
    tok = token(client, client_id, secret)
    app.config["POINTS_API_RATE_LIMIT"] = "3 per minute"
    codes = [
        client.get(f"/api/points/members/{member}/balance", headers=bearer(tok)).status_code for _ in range(5)
    ]
    assert codes[:3] == [200, 200, 200] and codes[-1] == 429
    resp = client.get(f"/api/points/members/{member}/balance", headers=bearer(tok))
    assert resp.is_json and resp.get_json()["error"]["code"] == "rate_limited"


def test_hundred_concurrent_redeems_never_overspend(app, client, db, shop, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks under real concurrency: PostgreSQL")
    partner, client_id, secret = shop
    person, member = make_member(partner)
    ledger.earn(person.id, 500, source="rule", actor="test")
    database.session.commit()
    tok = token(client, client_id, secret)
    start = threading.Barrier(20)

    def redeem(i: int, together: bool = True) -> int:
        if together and i < 20:
            start.wait()
        # Each request runs in its own app context: its own session and database connection.
        return _redeem(app.test_client(), tok, member, 10, f"k-{i}").status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(redeem, range(100)))
    assert codes.count(201) == 50 and codes.count(409) == 50, codes
    database.session.expire_all()
    assert ledger.balance(person.id).available == 0
    assert ledger.ledger_total(person.id) == 0
    spent = database.session.scalar(select(func.sum(LedgerEntry.points)).where(LedgerEntry.kind == "redeem"))
    assert spent == -500
    # Retrying every request with its key changes nothing: the same answers come back.
    with ThreadPoolExecutor(max_workers=10) as pool:
        again = list(pool.map(lambda i: redeem(i, together=False), range(100)))
    # Stored answers come back for the 50 that succeeded; the 50 refusals were not stored and are
    # refused again (the balance is still zero).
    assert [a for a, c in zip(again, codes, strict=True) if c == 201] == [201] * 50
    assert again.count(409) == 50
    database.session.expire_all()
    assert ledger.ledger_total(person.id) == 0
