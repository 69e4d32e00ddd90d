"""Factories for the points tests: partners with OAuth2 clients, members, bearer tokens."""

from __future__ import annotations

import base64
import itertools

from portal.extensions import db
from portal.points import oauth, partners
from portal.points.models import Partner
from tests.factories import make_resident

_seq = itertools.count(1)


def make_partner(*, name: str = "みなと商店街", holding_days: int = 0, code: str | None = None) -> Partner:
    partner = Partner(code=code or f"p{next(_seq)}", name=name, holding_days=holding_days)
    db.session.add(partner)
    db.session.flush()
    return partner


def make_client(partner: Partner, scopes=("read", "award", "redeem")) -> tuple[str, str]:
    client, secret = oauth.new_client(partner, list(scopes))
    db.session.commit()
    return client.client_id, secret


def token(client, client_id: str, secret: str, scope: str | None = None) -> str:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    resp = client.post("/api/points/oauth/token", data=data, headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["access_token"]


def bearer(access_token: str, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {access_token}"}
    if key:
        headers["Idempotency-Key"] = key
    return headers


def make_member(partner: Partner, **resident_kw):
    person = make_resident(**resident_kw)
    membership = partners.opt_in(person.id, partner.id)
    db.session.commit()
    return person, membership.member_id
