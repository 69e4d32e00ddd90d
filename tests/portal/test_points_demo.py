"""The demo city's points: partners, catalogue, resident1's history, and `flask points
demo-clients` printing API credentials that work; `flask points daily` is safe to run twice."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from portal import demo
from portal.accounts.models import ResidentAccount
from portal.points import ledger
from portal.points.models import CatalogueItem, Partner
from tests.portal.points_helpers import bearer, token


def test_demo_points_and_clients(app, db, client):
    demo.load(households=8)
    account = db.session.scalar(select(ResidentAccount).where(ResidentAccount.email.like("resident1@%")))
    b = ledger.balance(account.resident_id)
    assert b.available > 0 and b.pending > 0 and len(b.expiries) >= 3
    kinds = {e.kind for e in ledger.history(account.resident_id)}
    assert {"earn", "redeem", "reverse"} <= kinds
    assert db.session.scalar(select(func.count()).select_from(Partner)) == 3
    assert db.session.scalar(select(func.count()).select_from(CatalogueItem)) == 4
    assert ledger.ledger_total(account.resident_id) == b.available + b.pending
    runner = app.test_cli_runner()
    result = runner.invoke(args=["points", "demo-clients"])
    assert result.exit_code == 0, result.output
    found = re.findall(r"(\S+)\s+client_id=(\S+)\s+client_secret=(\S+)", result.output)
    assert [code for code, _, _ in found] == ["shop-minato", "cafe-umi", "npo-green"]
    _, client_id, secret = found[0]
    tok = token(client, client_id, secret)
    assert client.get("/api/points/members/m_unknown/balance", headers=bearer(tok)).status_code == 404
    first = runner.invoke(args=["points", "daily"])
    second = runner.invoke(args=["points", "daily"])
    assert first.exit_code == second.exit_code == 0
    assert "0 lots activated, 0 lots expired, 0 tiers changed" in second.output
    demo.load(households=8)  # again: nothing more
    assert db.session.scalar(select(func.count()).select_from(Partner)) == 3
