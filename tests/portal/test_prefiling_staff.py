"""Processing centre, express counter and statistics of web pre-filing (staff side)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.access.models import AccessRecord
from portal.models_base import utcnow
from portal.notices.models import Delivery, Notice
from portal.prefiling import service
from tests.factories import (
    csrf_from,
    login_resident,
    login_staff,
    make_account,
    make_resident,
    make_staff,
    make_ward,
)


@pytest.fixture(autouse=True)
def _blueprint(app):
    if "prefiling_staff" not in app.blueprints:
        from portal.prefiling import staff_views

        staff_views.init_app(app)


def _submitted(db, *, resident=None, code="moving_in", data=None, at=None):
    resident = resident or make_resident()
    account = make_account(resident=resident)
    p = service.create_draft(
        resident_id=resident.id,
        account_id=account.id,
        code=code,
        version=1,
        data=data
        if data is not None
        else {
            "new_address": "本町2丁目3番4号",
            "has_children": True,
            "members": [{"family_name": "山田", "given_name": "太郎", "relationship": "child"}],
            "unknown_key": "kept",
        },
    )
    service.transition(p, "submitted", actor=f"account:{account.id}")
    if at is not None:
        p.submitted_at = at
    db.session.flush()
    return p


def _records(db) -> int:
    return db.session.scalar(select(func.count()).select_from(AccessRecord))


def _staff(db, client, *roles):
    user = make_staff(roles=list(roles))
    db.session.commit()
    client.set_cookie("lang", "en", domain="portal.test")  # English pages: English text is asserted
    login_staff(client, user)
    return user


def _post(client, url, page, data):
    html = client.get(page).get_data(as_text=True)
    return client.post(url, data={"csrf_token": csrf_from(html), **data})


def _deliveries(db, resident_id) -> list[Notice]:
    return list(
        db.session.scalars(
            select(Notice)
            .join(Delivery, Delivery.notice_id == Notice.id)
            .where(Delivery.resident_id == resident_id)
        )
    )


# --- processing centre -----------------------------------------------------------------------------


def test_queue_oldest_first_and_filters(app, db, client):
    north, south = make_ward(name_en="North Ward"), make_ward(name_en="South Ward")
    t0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
    newer = _submitted(db, resident=make_resident(ward=north), at=t0 + timedelta(days=2))
    older = _submitted(db, resident=make_resident(ward=south), code="child_allowance", at=t0)
    middle = _submitted(db, resident=make_resident(ward=north), at=t0 + timedelta(days=1))
    ready = _submitted(db, at=t0 - timedelta(days=5))
    service.transition(ready, "ready", actor="staff:x")
    db.session.commit()
    _staff(db, client, "processing")

    def shown(query=""):
        html = client.get("/staff/prefilings" + query).get_data(as_text=True)
        return re.findall(r"\d{4}-\d{4}-[A-Z]", html)

    f = service.format_reservation_no
    assert shown() == [f(older.reservation_no), f(middle.reservation_no), f(newer.reservation_no)]
    assert shown("?procedure=child_allowance") == [f(older.reservation_no)]
    assert shown(f"?ward={north.code}") == [f(middle.reservation_no), f(newer.reservation_no)]
    assert shown("?status=ready") == [f(ready.reservation_no)]
    assert shown("?from=2026-11-03&to=2026-11-03") == [f(middle.reservation_no)]
    assert len(shown("?status=all")) == 4
    # the queue shows no names, so it writes no access record; opening one does
    assert _records(db) == 0


def test_queue_pages(app, db, client, monkeypatch):
    from portal.prefiling import staff_views

    monkeypatch.setattr(staff_views, "PAGE_SIZE", 2)
    t0 = datetime(2026, 11, 2, tzinfo=UTC)
    rows = [_submitted(db, at=t0 + timedelta(hours=i)) for i in range(3)]
    db.session.commit()
    _staff(db, client, "processing")
    first = client.get("/staff/prefilings").get_data(as_text=True)
    second = client.get("/staff/prefilings?page=2").get_data(as_text=True)
    assert service.format_reservation_no(rows[2].reservation_no) not in first and "page=2" in first
    assert service.format_reservation_no(rows[2].reservation_no) in second


def test_review_writes_an_access_record_and_shows_the_signature(app, db, client):
    p = _submitted(db)
    p.signature_verified_at = utcnow()
    db.session.commit()
    user = _staff(db, client, "processing")
    before = _records(db)
    resp = client.get(f"/staff/prefilings/{p.id}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Signed with the card, verified" in html and "本町2丁目3番4号" in html and "New address" in html
    assert "Notification of moving in" in html and "Relationship: Child" in html and "unknown_key" in html
    assert _records(db) == before + 1
    rec = db.session.scalar(select(AccessRecord).order_by(AccessRecord.id.desc()))
    assert rec.resident_id == p.resident_id and rec.actor_id == user.login_id
    assert "prefiling" in rec.data_items.split(",") and rec.purpose.startswith("moving:")


def test_correction_is_requested_and_the_resident_told(app, db, client):
    p = _submitted(db)
    db.session.commit()
    _staff(db, client, "processing")
    page = f"/staff/prefilings/{p.id}"
    resp = _post(client, f"{page}/correction", page, {"version": p.version, "note": ""})
    assert resp.status_code == 302
    db.session.refresh(p)
    assert p.status == "submitted"  # an empty note is refused
    resp = _post(
        client, f"{page}/correction", page, {"version": p.version, "note": "住民票の写しが不鮮明です"}
    )
    assert resp.status_code == 302
    db.session.refresh(p)
    assert p.status == "correction_requested" and p.correction_note == "住民票の写しが不鮮明です"
    notices = _deliveries(db, p.resident_id)
    assert len(notices) == 1 and notices[0].category == "procedure"
    assert notices[0].trigger_key.endswith(":action_required")
    # the resident corrects; a second request is told again
    service.transition(p, "submitted", actor="account:1")
    db.session.commit()
    _post(client, f"{page}/correction", page, {"version": p.version, "note": "印鑑が必要です"})
    assert len(_deliveries(db, p.resident_id)) == 2


def test_mark_ready_tells_the_resident(app, db, client):
    p = _submitted(db)
    db.session.commit()
    _staff(db, client, "processing")
    page = f"/staff/prefilings/{p.id}"
    assert _post(client, f"{page}/ready", page, {"version": p.version}).status_code == 302
    db.session.refresh(p)
    assert p.status == "ready" and p.ready_at is not None
    [notice] = _deliveries(db, p.resident_id)
    assert notice.trigger_key.endswith(":ready")


def test_two_staff_cannot_overwrite_each_other(app, db, client):
    p = _submitted(db)
    db.session.commit()
    _staff(db, client, "processing")
    other = app.test_client()
    _staff(db, other, "processing")
    page = f"/staff/prefilings/{p.id}"
    html_a = client.get(page).get_data(as_text=True)
    html_b = other.get(page).get_data(as_text=True)
    version = re.search(r'name="version" value="(\d+)"', html_b).group(1)
    resp = client.post(f"{page}/ready", data={"csrf_token": csrf_from(html_a), "version": version})
    assert resp.status_code == 302
    resp = other.post(
        f"{page}/correction", data={"csrf_token": csrf_from(html_b), "version": version, "note": "late"}
    )
    assert resp.status_code == 409 and "changed this pre-filing" in resp.get_data(as_text=True)
    db.session.refresh(p)
    assert p.status == "ready" and p.correction_note is None
    assert [n.trigger_key.rsplit(":", 1)[1] for n in _deliveries(db, p.resident_id)] == ["ready"]


# --- express counter -------------------------------------------------------------------------------


def test_express_counter_by_number(app, db, client):
    p = _submitted(db)
    service.transition(p, "ready", actor="staff:x")
    db.session.commit()
    _staff(db, client, "counter")
    number = p.reservation_no
    wrong = number[:8] + ("A" if number[8] != "A" else "B")
    resp = client.get(f"/staff/express?no={wrong}")
    assert resp.status_code == 400 and "check letter" in resp.get_data(as_text=True)
    assert _records(db) == 0
    digits = f"{(int(number[:8]) + 1) % 10**8:08d}"
    unknown = digits + service.check_letter(digits)
    assert client.get(f"/staff/express?no={unknown}").status_code == 404

    typed = f"{number[:4]}-{number[4:8]} {number[8].lower()}"
    resp = client.get("/staff/express", query_string={"no": typed})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "山田" in html and service.format_reservation_no(number) in html
    assert _records(db) == 1
    # a QR code may hold a URL with the number in it
    assert client.get("/staff/express", query_string={"no": f"https://x/p/{number}"}).status_code == 200

    before = _records(db)
    resp = _post(client, f"/staff/express/{p.id}/open", "/staff/express", {"version": p.version})
    assert resp.status_code == 302
    assert client.get(resp.headers["Location"]).status_code == 200
    db.session.refresh(p)
    assert p.status == "arrived" and p.arrived_at is not None
    assert _records(db) == before + 1  # opening shows the pre-filing: recorded
    page = f"/staff/express/{p.id}"
    resp = _post(client, f"{page}/complete", page, {"version": p.version})
    assert resp.status_code == 302
    db.session.refresh(p)
    assert p.status == "completed" and p.completed_at >= p.arrived_at
    assert {n.trigger_key.rsplit(":", 1)[1] for n in _deliveries(db, p.resident_id)} == {"completed"}
    # a stale page cannot open it again
    resp = _post(client, f"/staff/express/{p.id}/open", "/staff/express", {"version": 1})
    assert resp.status_code == 409


def test_express_counter_from_the_card_scan(app, db, client):
    from portal.cardid.api import SESSION_KEY
    from portal.cardid.models import CardChallenge

    resident = make_resident()
    p = _submitted(db, resident=resident)
    service.transition(p, "ready", actor="staff:x")
    elsewhere = _submitted(db)
    service.transition(elsewhere, "ready", actor="staff:x")
    now = utcnow()
    db.session.add(
        CardChallenge(
            id="ch-1",
            nonce="n",
            purpose="counter_scan",
            session_binding="bound",
            origin="http://portal.test",
            expires_at=now + timedelta(minutes=5),
            status="done",
            completed_at=now,
            resident_id=resident.id,
        )
    )
    db.session.commit()
    _staff(db, client, "counter")
    assert client.get("/staff/express/card/ch-1").status_code == 404  # not this session's scan
    with client.session_transaction() as sess:
        sess[SESSION_KEY] = "bound"
    html = client.get("/staff/express/card/ch-1").get_data(as_text=True)
    assert service.format_reservation_no(p.reservation_no) in html
    assert service.format_reservation_no(elsewhere.reservation_no) not in html
    result = client.get("/staff/counter/card/ch-1").get_data(as_text=True)
    assert "/staff/express/card/ch-1" in result


# --- statistics ------------------------------------------------------------------------------------


def _completed(db, code, *, submitted, ready, arrived, minutes):
    p = _submitted(db, code=code)
    service.transition(p, "ready", actor="s")
    service.transition(p, "arrived", actor="s")
    service.transition(p, "completed", actor="s")
    p.submitted_at, p.ready_at, p.arrived_at = submitted, ready, arrived
    p.completed_at = arrived + timedelta(minutes=minutes)
    return p


def test_stats_from_known_times(app, db, client):
    from portal.prefiling.staff_views import compute_stats

    now = utcnow().replace(microsecond=0)
    day = now - timedelta(hours=1)
    for minutes, ready_hours in ((4, 24), (6, 48), (20, 3)):
        _completed(
            db,
            "moving_in",
            submitted=day - timedelta(hours=ready_hours + 1),
            ready=day - timedelta(hours=1),
            arrived=day,
            minutes=minutes,
        )
    _completed(
        db,
        "seal_registration",
        submitted=day - timedelta(hours=3),
        ready=day - timedelta(hours=2),
        arrived=day,
        minutes=10,
    )
    _submitted(db)  # not completed: not counted
    db.session.commit()
    groups, total = compute_stats(now - timedelta(days=40))
    [moving] = [f for (code, _m), f in groups.items() if code == "moving_in"]
    assert moving.completed == 3
    assert moving.counter_avg == pytest.approx(10.0) and moving.counter_median == pytest.approx(6.0)
    assert moving.ready_median == pytest.approx(24 * 60) and moving.ready_avg == pytest.approx(25 * 60)
    assert total.completed == 4 and total.counter_median == pytest.approx(8.0)

    _staff(db, client, "counter")
    html = client.get("/staff/prefilings/stats").get_data(as_text=True)
    assert "10.0" in html and "6.0" in html and "24.0" in html  # average, median minutes; median hours
    assert "Not measured" in html


def test_roles(app, db, client):
    p = _submitted(db)
    account = make_account(resident=make_resident())
    db.session.commit()
    assert client.get("/staff/prefilings").status_code == 302  # to the staff login
    login_resident(client, account)
    for url in (
        "/staff/prefilings",
        "/staff/express",
        "/staff/prefilings/stats",
        f"/staff/prefilings/{p.id}",
    ):
        assert client.get(url).status_code == 403
    counter, processing = app.test_client(), app.test_client()
    _staff(db, counter, "counter")
    _staff(db, processing, "processing")
    assert counter.get("/staff/prefilings").status_code == 403
    assert counter.get(f"/staff/prefilings/{p.id}").status_code == 403
    assert processing.get("/staff/express").status_code == 403
    assert processing.get(f"/staff/express/{p.id}").status_code == 403
    assert counter.get("/staff/prefilings/stats").status_code == 200
    assert processing.get("/staff/prefilings/stats").status_code == 200


@pytest.fixture
def app_config(tmp_path):
    return {"PREFILING_ATTACHMENT_DIR": str(tmp_path / "attachments")}


def test_attachment_download_is_recorded(app, db, client, monkeypatch):
    import io

    attachments = pytest.importorskip("portal.prefiling.attachments")

    p = _submitted(db)
    pdf = b"%PDF-1.4\n% test\n"
    row = attachments.store(p, {"code": "id_document", "types": ["pdf"]}, io.BytesIO(pdf), "passport.pdf")
    db.session.commit()
    _staff(db, client, "processing")
    review = client.get(f"/staff/prefilings/{p.id}").get_data(as_text=True)
    url = f"/staff/prefilings/{p.id}/attachments/{row.id}"
    assert url in review and "passport.pdf" in review
    before = _records(db)
    with client.get(url) as resp:
        assert resp.status_code == 200 and resp.data == pdf and resp.mimetype == "application/pdf"
    assert _records(db) == before + 1
    import sys

    import portal.prefiling

    monkeypatch.setitem(sys.modules, "portal.prefiling.attachments", None)  # the view's own fallback
    monkeypatch.delattr(portal.prefiling, "attachments")
    with client.get(url) as resp:
        assert resp.status_code == 200 and resp.data == pdf
    other = _submitted(db)
    db.session.commit()
    assert client.get(f"/staff/prefilings/{other.id}/attachments/{row.id}").status_code == 404


def test_pages_in_japanese(app, db, client):
    p = _submitted(db)
    db.session.commit()
    user = make_staff(roles=["processing", "counter"])
    db.session.commit()
    login_staff(client, user)  # no language chosen: Japanese
    review = client.get(f"/staff/prefilings/{p.id}").get_data(as_text=True)
    assert "転入届" in review and "新住所" in review and "続柄: 子" in review and "受付番号" in review
    assert "審査待ちの事前申請" in client.get("/staff/prefilings").get_data(as_text=True)
    resp = client.get("/staff/express?no=1234-5678-Z")
    assert resp.status_code == 400 and "チェック文字" in resp.get_data(as_text=True)
    assert "計測していません" in client.get("/staff/prefilings/stats").get_data(as_text=True)


def test_a_save_between_reading_and_writing_is_a_conflict_too(app, db, client, monkeypatch):
    """The version matched when the request read it, but another clerk saved before this one's
    UPDATE: the version counter in the UPDATE refuses it (StaleDataError → 409)."""
    import sqlalchemy as sa

    p = _submitted(db)
    db.session.commit()
    _staff(db, client, "processing")
    page = f"/staff/prefilings/{p.id}"
    original = service.transition

    def meanwhile(prefiling, to, **kwargs):
        with db.engine.begin() as conn:
            bump = sa.text("UPDATE prefilings SET version = version + 1 WHERE id = :i")
            conn.execute(bump, {"i": prefiling.id})
        return original(prefiling, to, **kwargs)

    monkeypatch.setattr(service, "transition", meanwhile)
    resp = _post(client, f"{page}/ready", page, {"version": p.version})
    assert resp.status_code == 409
    db.session.expire_all()
    assert db.session.get(type(p), p.id).status == "submitted"
    assert _deliveries(db, p.resident_id) == []
