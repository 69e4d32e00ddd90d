"""Points pages: the resident's balance, every expiry date, pending points, rank, history,
partners (join/leave), member QR, catalogue and coupons; staff pages for rules, activities with
an uploaded list, health check-ups, the catalogue, partners with API clients and settlement,
and using a coupon at the facility; first-use points from a submitted pre-filing."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from portal.access.models import AccessRecord
from portal.i18n import wareki
from portal.models_base import utcnow
from portal.points import catalogue, ledger, partners, rules
from portal.points.models import (
    Attendance,
    CatalogueItem,
    EarningRule,
    OAuthClient,
    Partner,
    VolunteerActivity,
)
from tests.factories import (
    csrf_from,
    login_resident,
    login_staff,
    make_account,
    make_resident,
    make_staff,
    post_form,
)
from tests.portal.points_helpers import make_partner
from tests.portal.test_prefiling_resident import CERTIFICATE, _form, _start, app_config, family, prefiling_app  # noqa: F401


def _resident(db):
    person = make_resident()
    account = make_account(resident=person)
    db.session.commit()
    return person, account


def _english(client, page="/points/"):
    html = client.get(page).get_data(as_text=True)
    client.post("/lang", data={"lang": "en", "csrf_token": csrf_from(html)})


def test_points_page_shows_balance_expiries_pending_rank_history(client, db):
    person, account = _resident(db)
    now = utcnow()
    ledger.earn(
        person.id, 300, source="rule", actor="t", rule_code="health_checkup", now=now - timedelta(days=300)
    )
    ledger.earn(person.id, 200, source="rule", actor="t", rule_code="volunteer", now=now - timedelta(days=10))
    shop = make_partner(name="みなと商店街", holding_days=14)
    ledger.earn(person.id, 80, source="partner", actor="t", partner_id=shop.id, holding_days=14, now=now)
    ledger.spend(person.id, 50, source="partner", actor="t", partner_id=shop.id, now=now)
    db.session.commit()
    login_resident(client, account)
    html = client.get("/points/").get_data(as_text=True)
    assert "ポイント" in html and '<html lang="ja">' in html
    assert "450" in html  # usable: 300 + 200 − 50
    lots = ledger.balance(person.id).expiries
    assert len(lots) == 3  # three lots, three dates, every one listed
    for day, _points in lots:
        assert wareki(day) in html
    _english(client)
    html = client.get("/points/").get_data(as_text=True)
    assert "points you can use" in html and "80 points pending" in html
    assert "Health check-up" in html and "Volunteer activity" in html and "みなと商店街" in html
    assert "tier-standard" in html and "Rank: Green" in html
    assert html.count("<tr") >= 7


def test_partners_join_and_leave_and_member_qr(client, db):
    person, account = _resident(db)
    shop = make_partner(name="カフェ うみ")
    db.session.commit()
    login_resident(client, account)
    _english(client, "/points/partners")
    resp = post_form(client, "/points/partners", {"partner": shop.id, "action": "join"})
    assert resp.status_code == 302
    member = partners.memberships_of(person.id)[shop.id]
    assert member.active and member.member_id.startswith("m_")
    html = client.get("/points/qr").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in html and "カフェ うみ" in html
    resp = post_form(client, "/points/partners", {"partner": shop.id, "action": "leave"})
    db.session.expire_all()
    assert not partners.memberships_of(person.id)[shop.id].active
    resp = post_form(client, "/points/partners", {"partner": 99999, "action": "join"})
    assert "This partner was not found." in client.get(resp.headers["Location"]).get_data(as_text=True)


def test_catalogue_coupon_used_once_at_the_facility(client, app, db):
    person, account = _resident(db)
    item = CatalogueItem(
        code="pool",
        kind="facility_coupon",
        name_ja="市民プール 1回",
        name_en="City pool",
        place="市民プール",
        points=300,
        stock=5,
    )
    db.session.add(item)
    ledger.earn(person.id, 400, source="rule", actor="t")
    db.session.commit()
    login_resident(client, account)
    _english(client, "/points/catalogue")
    resp = post_form(client, "/points/catalogue", {"item": item.id})
    assert resp.status_code == 302
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", html).group(0)
    assert "Not used yet" in html
    resp = post_form(client, "/points/catalogue", {"item": item.id})
    assert "There are not enough points." in client.get(resp.headers["Location"]).get_data(as_text=True)
    assert ledger.balance(person.id).available == 100
    # At the pool: staff type the code.
    desk = app.test_client()
    clerk = make_staff(roles=["library"])
    db.session.commit()
    login_staff(desk, clerk)
    html = post_form(desk, "/staff/points/coupons", {"code": code.lower()}).get_data(as_text=True)
    assert "flash-success" in html and f"クーポン {code} を使用しました" in html
    record = db.session.scalar(select(AccessRecord).order_by(AccessRecord.id.desc()))
    assert (record.resident_id, record.purpose) == (person.id, "points_coupon: facility")
    html = post_form(desk, "/staff/points/coupons", {"code": code}).get_data(as_text=True)
    assert 'aria-invalid="true"' in html and code in html  # refused, and the typed code is kept
    assert "Used" in client.get("/points/coupons").get_data(as_text=True)


def test_staff_rules_validation_and_save(client, db):
    admin = make_staff(roles=["admin"])
    db.session.commit()
    login_staff(client, admin)
    _english(client, "/staff/points/rules")
    html = post_form(
        client,
        "/staff/points/rules",
        {"code": "volunteer", "points": "abc", "period": "month", "cap": ""},
        page="/staff/points/rules",
    ).get_data(as_text=True)
    assert "Enter a whole number." in html and 'value="abc"' in html
    resp = post_form(
        client,
        "/staff/points/rules",
        {"code": "volunteer", "points": "120", "period": "year", "cap": "600", "active": "1"},
    )
    assert resp.status_code == 302
    rule = db.session.scalar(select(EarningRule).where(EarningRule.code == "volunteer"))
    db.session.refresh(rule)
    assert (rule.points, rule.period, rule.cap, rule.updated_by) == (
        120,
        "year",
        600,
        f"staff:{admin.login_id}",
    )
    resident_client = client.application.test_client()
    _, account = _resident(db)
    login_resident(resident_client, account)
    assert resident_client.get("/staff/points/rules").status_code == 403


def test_activity_attendance_list_all_or_nothing(client, db):
    organiser = make_staff(roles=["counter"])
    a, b = make_resident(), make_resident()
    db.session.commit()
    login_staff(client, organiser)
    _english(client, "/staff/points/activities")
    html = post_form(
        client, "/staff/points/activities", {"title": "", "organiser": "環境課", "held_on": "2026-13-01"}
    ).get_data(as_text=True)
    assert (
        "Enter the activity" in html and "Enter the date as YYYY-MM-DD." in html and 'value="環境課"' in html
    )
    resp = post_form(
        client,
        "/staff/points/activities",
        {"title": "海岸清掃", "organiser": "環境課", "held_on": "2026-11-20", "points": ""},
    )
    page = resp.headers["Location"]
    activity_id = int(page.rsplit("/", 1)[1])
    token = csrf_from(client.get(page).get_data(as_text=True))
    from io import BytesIO

    bad = f"atena_no,name\n{a.atena_no},A\nNOPE,B\n{a.atena_no},C\n".encode()
    resp = client.post(
        f"{page}/list",
        data={"csrf_token": token, "list": (BytesIO(bad), "list.csv")},
        content_type="multipart/form-data",
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "No current resident has this" in html and "twice" in html
    assert db.session.scalar(select(func.count()).select_from(Attendance)) == 0
    good = f"\ufeffatena_no\n{a.atena_no}\n{b.atena_no}\n".encode()
    resp = client.post(
        f"{page}/list",
        data={"csrf_token": token, "list": (BytesIO(good), "list.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(Attendance)) == 2
    assert ledger.balance(a.id).available == rules.DEFAULTS["volunteer"][0]
    # The same list again: nobody gets points twice.
    client.post(
        f"{page}/list",
        data={"csrf_token": token, "list": (BytesIO(good), "list.csv")},
        content_type="multipart/form-data",
    )
    assert ledger.balance(a.id).available == rules.DEFAULTS["volunteer"][0]
    assert db.session.get(VolunteerActivity, activity_id).title == "海岸清掃"


def test_health_checkup_list(client, db):
    admin = make_staff(roles=["admin"])
    person = make_resident()
    db.session.commit()
    login_staff(client, admin)
    from io import BytesIO

    token = csrf_from(client.get("/staff/points/checkups").get_data(as_text=True))
    for _ in range(2):
        resp = client.post(
            "/staff/points/checkups",
            data={"csrf_token": token, "list": (BytesIO(f"atena_no\n{person.atena_no}\n".encode()), "c.csv")},
            content_type="multipart/form-data",
        )
        assert resp.status_code == 302
    assert ledger.balance(person.id).available == rules.DEFAULTS["health_checkup"][0]
    resp = client.post(
        "/staff/points/checkups",
        data={"csrf_token": token, "list": (BytesIO(b"name\nx\n"), "c.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302


def test_partner_admin_client_secret_once_and_settlement(client, db):
    admin = make_staff(roles=["admin"])
    db.session.commit()
    login_staff(client, admin)
    _english(client, "/staff/points/partners")
    html = post_form(
        client, "/staff/points/partners", {"code": "bad code!", "name": "", "holding_days": "x"}
    ).get_data(as_text=True)
    assert html.count('aria-invalid="true"') == 3
    resp = post_form(
        client, "/staff/points/partners", {"code": "shop-1", "name": "みなと商店", "holding_days": "7"}
    )
    assert resp.status_code == 302
    partner = db.session.scalar(select(Partner).where(Partner.code == "shop-1"))
    html = post_form(
        client,
        f"/staff/points/partners/{partner.id}/clients",
        {"scope": ["read", "award"]},
        page="/staff/points/partners",
    ).get_data(as_text=True)
    stored = db.session.scalar(select(OAuthClient))
    secret = re.search(r"Client secret</dt><dd><span class=\"code-small\">([^<]+)<", html).group(1)
    assert stored.scopes == "read award" and secret not in stored.secret_hash
    assert secret not in client.get("/staff/points/partners").get_data(as_text=True)
    month = ledger.local_date().strftime("%Y-%m")
    resp = client.get(f"/staff/points/partners/{partner.id}/settlement?month={month}")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.get_data().decode("utf-8-sig").startswith("date,entry_id,member_id")
    resp = client.get(f"/staff/points/partners/{partner.id}/settlement?month=nope")
    assert resp.status_code == 302


def test_first_prefiling_submitted_earns_points_once(family, client, db):  # noqa: F811
    head, account = family
    login_resident(client, account)
    for _ in range(2):
        pid = _start(client, "certificate_request")
        _html, data = _form(client, pid)
        resp = client.post(f"/me/prefilings/{pid}/edit", data={**data, **CERTIFICATE, "action": "submit"})
        assert resp.status_code == 302
    history = ledger.history(head.id)
    assert [(e.kind, e.rule_code) for e in history] == [("earn", "first_prefiling")]
    assert ledger.balance(head.id).available == rules.DEFAULTS["first_prefiling"][0]
    assert catalogue.tier_of(head.id).code == "standard"
