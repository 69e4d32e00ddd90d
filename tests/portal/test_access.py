import itertools
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from portal.access import service as access
from portal.access.models import AccessRecord
from portal.models_base import utcnow
from tests.factories import login_resident, login_staff, make_account, make_resident, make_staff

ACTOR = access.Actor(kind="staff", id="counter9", role="counter", organisation="中央区役所 市民課")


def _records(resident, n):
    for i in range(n):
        access.record(ACTOR, resident_id=resident.id, data_items=["basic4"], purpose=f"identity_check: {i}")


def test_chain_links_each_row_to_the_previous(app, db):
    resident = make_resident()
    _records(resident, 5)
    db.session.commit()
    rows = list(db.session.scalars(select(AccessRecord).order_by(AccessRecord.id)))
    assert rows[0].prev_hash == access.GENESIS
    assert all(b.prev_hash == a.row_hash for a, b in itertools.pairwise(rows))
    assert access.verify_chain().ok and access.verify_chain().checked == 5


def test_database_refuses_update_and_delete(app, db):
    resident = make_resident()
    _records(resident, 1)
    db.session.commit()
    for statement in ("UPDATE access_records SET purpose = 'x'", "DELETE FROM access_records"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(sa.text(statement))


def _tamper(db, statement):
    """An attacker with DDL rights: drop the guard, change a row (the chain must still tell)."""
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE access_records DISABLE TRIGGER access_records_no_change"))
            conn.execute(sa.text(statement))
            conn.execute(sa.text("ALTER TABLE access_records ENABLE TRIGGER access_records_no_change"))
        else:
            conn.execute(sa.text("DROP TRIGGER access_records_no_update"))
            conn.execute(sa.text("DROP TRIGGER access_records_no_delete"))
            conn.execute(sa.text(statement))


def test_verify_names_the_first_changed_row(app, db):
    resident = make_resident()
    _records(resident, 6)
    db.session.commit()
    _tamper(db, "UPDATE access_records SET purpose = 'nothing to see' WHERE id = 4")
    db.session.expire_all()
    report = access.verify_chain()
    assert not report.ok and report.first_broken_id == 4 and "hash" in report.reason


def test_verify_names_the_row_after_a_deleted_one(app, db):
    resident = make_resident()
    _records(resident, 6)
    db.session.commit()
    _tamper(db, "DELETE FROM access_records WHERE id = 3")
    report = access.verify_chain()
    assert report.first_broken_id == 4 and "prev_hash" in report.reason


def test_cli_audit_verify(app, db):
    resident = make_resident()
    _records(resident, 3)
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "3 rows, chain intact" in result.output
    _tamper(db, "UPDATE access_records SET organisation = 'x' WHERE id = 2")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1 and "row id 2" in result.output


def test_unknown_items_and_empty_purpose_are_refused(app, db):
    resident = make_resident()
    with pytest.raises(ValueError):
        access.record(ACTOR, resident_id=resident.id, data_items=["shoe_size"], purpose="x")
    with pytest.raises(ValueError):
        access.record(ACTOR, resident_id=resident.id, data_items=["basic4"], purpose="  ")


def test_resident_sees_own_history_only_and_can_filter(app, db, client):
    me, other = make_resident(), make_resident(given="次郎")
    account = make_account(resident=me)
    access.record(ACTOR, resident_id=me.id, data_items=["basic4", "household"], purpose="certificate")
    access.record(ACTOR, resident_id=other.id, data_items=["basic4"], purpose="moving")
    db.session.commit()
    login_resident(client, account)
    page = client.get("/me/access-history").get_data(as_text=True)
    assert "中央区役所 市民課" in page
    assert "住民票の写し" in page or "certificate" in page.lower()
    assert "次郎" not in page and page.count("<tr>") == 2  # header + my one row
    tomorrow = (utcnow() + timedelta(days=2)).date().isoformat()
    page = client.get(f"/me/access-history?since={tomorrow}").get_data(as_text=True)
    assert page.count("<tr>") == 0 or "<tbody>" not in page
    bad = client.get("/me/access-history?since=yesterday")
    assert bad.status_code == 200 and 'aria-invalid="true"' in bad.get_data(as_text=True)


def test_auditor_view_filters_by_resident(app, db, client):
    a, b = make_resident(), make_resident(given="次郎")
    access.record(ACTOR, resident_id=a.id, data_items=["basic4"], purpose="certificate")
    access.record(ACTOR, resident_id=b.id, data_items=["basic4"], purpose="moving")
    auditor = make_staff(roles=["auditor"])
    db.session.commit()
    login_staff(client, auditor)
    page = client.get(f"/staff/audit?resident={b.id}").get_data(as_text=True)
    assert page.count("counter9") == 1
