"""The PO box on the web: the author's console (drafts, live count, preview, a second author's
approval, cancel, figures) and the resident's inbox (reads, replies, settings, escaping, isolation).
Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from portal.access.models import AccessRecord
from portal.models_base import utcnow
from portal.notices.models import Delivery, Notice, NotificationSetting, Reply
from tests.factories import (
    csrf_from,
    login_resident,
    login_staff,
    make_account,
    make_resident,
    make_staff,
    make_ward,
    post_form,
)


@pytest.fixture
def app(app):
    from portal.notices.views import init_app

    if "notices" not in app.blueprints:
        init_app(app)
    return app


def set_lang(client, lang: str) -> None:
    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    client.post("/lang", data={"lang": lang, "csrf_token": csrf_from(html)})


def draft_data(**overrides) -> dict:
    data = {
        "category": "health",
        "title_ja": "{name}様へ 健診のお知らせ",
        "title_en": "Health check for {name}",
        "body_ja": "{ward}にお住まいの{name}様\n\n健診があります。",
        "body_en": "Dear {name} in {ward},\n\nThere is a health check.",
        "reply_kind": "attend",
        "care_level": "",
        "disability": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def city(db):
    north = make_ward(code="01", name_ja="北区", name_en="Kita Ward")
    south = make_ward(code="02", name_ja="南区", name_en="Minami Ward")
    old = make_resident(family="北野", given="一郎", birth=date(1950, 1, 1), sex=1, ward=north)
    young = make_resident(family="北野", given="花子", birth=date(1995, 6, 1), sex=2, ward=north)
    southern = make_resident(family="南", given="次郎", birth=date(1950, 3, 3), sex=1, ward=south)
    author1 = make_staff(roles=["author"], login_id="author1")
    author2 = make_staff(roles=["author"], login_id="author2")
    account = make_account(resident=old)
    other_account = make_account(resident=southern)
    db.session.commit()
    return {
        "north": north,
        "south": south,
        "old": old,
        "young": young,
        "southern": southern,
        "author1": author1,
        "author2": author2,
        "account": account,
        "other_account": other_account,
    }


def create_draft(client, **overrides) -> Notice:
    from portal.extensions import db

    resp = post_form(client, "/staff/notices/new", draft_data(**overrides))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    notice_id = int(re.search(r"/staff/notices/(\d+)", resp.headers["Location"]).group(1))
    return db.session.get(Notice, notice_id)


def send_notice(app, city, **overrides) -> Notice:
    """author1 writes and submits; author2 approves (so it is sent now)."""
    from portal.extensions import db

    c1, c2 = app.test_client(), app.test_client()
    login_staff(c1, city["author1"])
    login_staff(c2, city["author2"])
    notice = create_draft(c1, **overrides)
    page = f"/staff/notices/{notice.id}"
    assert post_form(c1, f"{page}/submit", {}, page=page).status_code == 302
    assert post_form(c2, f"{page}/approve", {}, page=page).status_code == 302
    db.session.expire_all()
    return db.session.get(Notice, notice.id)


def delivery_of(resident) -> Delivery:
    from portal.extensions import db

    return db.session.scalar(select(Delivery).where(Delivery.resident_id == resident.id))


# --- who may use it ------------------------------------------------------------------------------


def test_author_console_is_for_authors_only(app, client, city, db):
    assert client.get("/staff/notices/").status_code == 302  # to the staff login
    counter = make_staff(roles=["counter"])
    db.session.commit()
    login_staff(client, counter)
    assert client.get("/staff/notices/").status_code == 403
    assert client.get("/staff/notices/count").status_code == 403


def test_inbox_is_for_linked_residents(app, client, city, db):
    assert client.get("/me/notices/").status_code == 302
    unlinked = make_account()
    db.session.commit()
    login_resident(client, unlinked)
    assert client.get("/me/notices/").status_code == 403


# --- authoring -----------------------------------------------------------------------------------


def test_draft_turns_target_fields_into_a_rule(app, client, city):
    login_staff(client, city["author1"])
    page = client.get("/staff/notices/new").get_data(as_text=True)
    assert "{child_name}" in page and "{due_date}" in page  # placeholders shown as help
    assert "js/notices.js" in page and "<script>" not in page  # no inline script
    notice = create_draft(
        client,
        wards=["01"],
        sex=["1"],
        age_min="60",
        age_max="90",
        care_level="list",
        care_levels=["care1", "care2"],
        disability="any",
        living_alone="y",
        reply_kind="choice",
        reply_options="午前 | Morning\n午後 | Afternoon",
        send_at="2030-04-01T09:00",
        reply_deadline="2030-04-10T17:30",
    )
    assert json.loads(notice.rule) == {
        "ward": ["01"],
        "sex": [1],
        "age": {"min": 60, "max": 90},
        "care_level": ["care1", "care2"],
        "disability": "any",
        "living_alone": True,
    }
    assert notice.status == "draft" and notice.created_by == "author1"
    assert [o["label_en"] for o in json.loads(notice.reply_options)] == ["Morning", "Afternoon"]
    # Japan time in the form, UTC in the database.
    assert notice.send_at.isoformat() == "2030-04-01T00:00:00+00:00"
    assert notice.reply_deadline.isoformat() == "2030-04-10T08:30:00+00:00"
    edit = client.get(f"/staff/notices/{notice.id}/edit").get_data(as_text=True)
    assert 'value="2030-04-01T09:00"' in edit
    assert "午前 | Morning" in edit


def test_live_count_matches_the_rule(app, client, city):
    login_staff(client, city["author1"])
    assert client.get("/staff/notices/count").get_json() == {"count": 3}
    assert client.get("/staff/notices/count?wards=01").get_json() == {"count": 2}
    assert client.get("/staff/notices/count?wards=01&age_min=65").get_json() == {"count": 1}
    assert client.get("/staff/notices/count?sex=1&age_min=70&age_max=80").get_json() == {"count": 2}
    resp = client.get("/staff/notices/count?age_min=80&age_max=20")
    assert resp.status_code == 400 and resp.get_json() == {"error": "age"}
    assert client.get("/staff/notices/count?age_min=abc").status_code == 400


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_bad_input_re_renders_with_field_errors(app, client, city, lang):
    login_staff(client, city["author1"])
    set_lang(client, lang)
    resp = post_form(
        client,
        "/staff/notices/new",
        draft_data(title_en="", age_min="90", age_max="10", reply_kind="choice", reply_options="only one"),
    )
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert f'<html lang="{lang}">' in html
    for field in ("title_en", "age_min", "reply_options"):
        assert re.search(
            rf'id="{field}"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="{field}"', html
        ), field
        assert f'id="{field}-error"' in html
    assert "{name}様へ" in html  # what was typed is kept
    if lang == "en":
        assert "Enter a title in English." in html
        assert "Give ages from 0 to 130, the lowest first." in html
        assert "Give at least two options." in html
    else:
        assert "英語の件名を入力してください。" in html
        assert "Enter a title in English." not in html


def test_unknown_placeholder_is_refused(app, client, city):
    login_staff(client, city["author1"])
    set_lang(client, "en")
    resp = post_form(client, "/staff/notices/new", draft_data(body_en="Hello {password}"))
    assert resp.status_code == 200
    assert "placeholder that does not exist" in resp.get_data(as_text=True)


def test_edit_a_draft(app, client, city, db):
    login_staff(client, city["author1"])
    notice = create_draft(client)
    url = f"/staff/notices/{notice.id}/edit"
    resp = post_form(client, url, draft_data(title_en="Changed", wards=["02"]))
    assert resp.status_code == 302
    db.session.expire_all()
    assert notice.title_en == "Changed" and json.loads(notice.rule) == {"ward": ["02"]}


def test_same_author_cannot_approve_and_second_author_sends(app, client, city, db):
    login_staff(client, city["author1"])
    set_lang(client, "en")
    notice = create_draft(client, wards=["01"])
    page = f"/staff/notices/{notice.id}"
    post_form(client, f"{page}/submit", {}, page=page)
    db.session.expire_all()
    assert notice.status == "pending_approval"
    # Once submitted, it cannot be edited.
    assert client.get(f"{page}/edit").status_code == 302
    resp = post_form(client, f"{page}/approve", {}, page=page, follow_redirects=True)
    assert "approved by a different author" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert notice.status == "pending_approval"
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0

    other = app.test_client()
    login_staff(other, city["author2"])
    resp = post_form(other, f"{page}/approve", {}, page=page)
    assert resp.status_code == 302
    db.session.expire_all()
    assert notice.status == "sent" and notice.approved_by == "author2" and notice.targeted == 2
    ids = set(db.session.scalars(select(Delivery.resident_id)))
    assert ids == {city["old"].id, city["young"].id}
    # Sent: no cancel any more.
    post_form(client, f"{page}/cancel", {}, page=page)
    db.session.expire_all()
    assert notice.status == "sent"


def test_scheduled_notice_waits_and_can_be_cancelled(app, client, city, db):
    future = (utcnow() + timedelta(days=3)).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    login_staff(client, city["author1"])
    notice = create_draft(client, send_at=future.strftime("%Y-%m-%dT%H:%M"))
    page = f"/staff/notices/{notice.id}"
    post_form(client, f"{page}/submit", {}, page=page)
    other = app.test_client()
    login_staff(other, city["author2"])
    post_form(other, f"{page}/approve", {}, page=page)
    db.session.expire_all()
    assert notice.status == "approved"
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0
    post_form(client, f"{page}/cancel", {}, page=page)
    db.session.expire_all()
    assert notice.status == "cancelled" and notice.cancelled_by == "author1"


def test_preview_as_a_resident_is_recorded(app, client, city, db):
    login_staff(client, city["author1"])
    notice = create_draft(client)
    person = city["old"]
    resp = client.get(f"/staff/notices/{notice.id}/preview?atena_no={person.atena_no}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "北野 一郎様へ" in html and "Health check for 北野 一郎" in html
    record = db.session.scalar(select(AccessRecord).where(AccessRecord.resident_id == person.id))
    assert record.actor_kind == "staff" and record.actor_id == "author1"
    assert "basic4" in record.data_items and str(notice.id) in record.purpose
    # An unknown number reads nothing.
    resp = client.get(f"/staff/notices/{notice.id}/preview?atena_no=NOPE")
    assert resp.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(AccessRecord)) == 1


def test_figures(app, client, city, db):
    notice = send_notice(
        app, city, wards=["01"], reply_kind="choice", reply_options="午前 | Morning\n午後 | Afternoon"
    )
    resident = app.test_client()
    login_resident(resident, city["account"])
    delivery = delivery_of(city["old"])
    post_form(
        resident, f"/me/notices/{delivery.id}/reply", {"option": "option2"}, page=f"/me/notices/{delivery.id}"
    )
    login_staff(client, city["author1"])
    set_lang(client, "en")
    html = client.get(f"/staff/notices/{notice.id}/figures").get_data(as_text=True)
    assert re.search(r'id="fig-targeted">2<', html)
    assert re.search(r'id="fig-opened">1 \(50.0%\)<', html)
    assert re.search(r"Afternoon</th><td>1</td>", html)
    assert re.search(r"Morning</th><td>0</td>", html)
    assert "<meter" in html


# --- the resident's inbox --------------------------------------------------------------------------


def test_inbox_unread_first_filter_and_search(app, client, city, db):
    first = send_notice(app, city, category="tax", title_en="Tax first", title_ja="税1")
    send_notice(app, city, category="health", title_en="Health second", title_ja="健診2")
    login_resident(client, city["account"])
    set_lang(client, "en")
    first_delivery = db.session.scalar(
        select(Delivery).where(Delivery.notice_id == first.id, Delivery.resident_id == city["old"].id)
    )
    client.get(f"/me/notices/{first_delivery.id}")
    html = client.get("/me/notices/").get_data(as_text=True)
    assert html.index("Health second") < html.index("Tax first")  # unread first
    html = client.get("/me/notices/?category=tax").get_data(as_text=True)
    assert "Tax first" in html and "Health second" not in html
    html = client.get("/me/notices/?q=second").get_data(as_text=True)
    assert "Health second" in html and "Tax first" not in html


def test_opening_records_the_read_and_reply_is_changeable(app, client, city, db):
    send_notice(app, city, wards=["01"])
    login_resident(client, city["account"])
    delivery = delivery_of(city["old"])
    assert delivery.read_at is None
    html = client.get(f"/me/notices/{delivery.id}").get_data(as_text=True)
    db.session.expire_all()
    assert delivery.read_at is not None and delivery.read_by_account == city["account"].id
    assert "北野 一郎様へ" in html and 'value="attend"' in html
    url = f"/me/notices/{delivery.id}/reply"
    assert post_form(client, url, {"option": "attend"}, page=f"/me/notices/{delivery.id}").status_code == 302
    assert post_form(client, url, {"option": "absent"}, page=f"/me/notices/{delivery.id}").status_code == 302
    replies = db.session.scalars(select(Reply)).all()
    assert [r.option for r in replies] == ["absent"]
    html = client.get(f"/me/notices/{delivery.id}").get_data(as_text=True)
    assert re.search(r'value="absent" aria-pressed="true"', html)
    assert re.search(r'value="attend" class="secondary">', html)
    # A reply without the CSRF token is refused.
    assert client.post(url, data={"option": "attend"}).status_code == 400
    assert post_form(client, url, {"option": "nope"}, page=f"/me/notices/{delivery.id}").status_code == 400


def test_no_reply_after_the_deadline(app, client, city, db):
    notice = send_notice(app, city, wards=["01"])
    notice.reply_deadline = utcnow() - timedelta(minutes=1)
    db.session.commit()
    login_resident(client, city["account"])
    set_lang(client, "en")
    delivery = delivery_of(city["old"])
    html = client.get(f"/me/notices/{delivery.id}").get_data(as_text=True)
    assert "deadline for replies has passed" in html and 'name="option"' not in html
    resp = post_form(client, f"/me/notices/{delivery.id}/reply", {"option": "attend"}, page="/me/notices/")
    assert resp.status_code == 409
    assert db.session.scalar(select(func.count()).select_from(Reply)) == 0


def test_another_residents_delivery_is_404(app, client, city, db):
    send_notice(app, city)
    login_resident(client, city["other_account"])
    theirs = delivery_of(city["old"])
    assert client.get(f"/me/notices/{theirs.id}").status_code == 404
    resp = post_form(client, f"/me/notices/{theirs.id}/reply", {"option": "attend"}, page="/me/notices/")
    assert resp.status_code == 404
    assert client.get("/me/notices/999999").status_code == 404
    db.session.expire_all()
    assert theirs.read_at is None
    assert "北野" not in client.get("/me/notices/").get_data(as_text=True)


def test_placeholder_holding_script_shows_as_text(app, client, city, db):
    person = city["old"]
    person.given_name = "<script>alert(1)</script>"
    db.session.commit()
    send_notice(app, city, wards=["01"])
    login_resident(client, city["account"])
    delivery = delivery_of(person)
    for url in ("/me/notices/", f"/me/notices/{delivery.id}"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    staff = app.test_client()
    login_staff(staff, city["author1"])
    notice_id = delivery.notice_id
    html = staff.get(f"/staff/notices/{notice_id}/preview?atena_no={person.atena_no}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html


def test_parent_sees_the_childs_notice(app, client, city, db):
    parent = city["old"]
    child = make_resident(
        family="北野",
        given="太郎",
        birth=utcnow().date() - timedelta(days=80),
        household=parent.household,
        relation="child",
        ward=city["north"],
    )
    db.session.commit()
    send_notice(app, city, title_en="Vaccination for {name}")
    login_resident(client, city["account"])
    set_lang(client, "en")
    delivery = delivery_of(child)
    html = client.get("/me/notices/").get_data(as_text=True)
    assert "Vaccination for 北野 太郎" in html
    html = client.get(f"/me/notices/{delivery.id}").get_data(as_text=True)
    assert "addressed to 北野 太郎" in html
    db.session.expire_all()
    assert delivery.read_by_account == city["account"].id


def test_notification_settings(app, client, city, db):
    login_resident(client, city["account"])
    html = client.get("/me/notices/settings").get_data(as_text=True)
    assert html.count("checked") == 16  # 8 categories × 2 channels, on by default
    data = {
        f"{c}-{ch}": "on"
        for c in ("tax", "child", "care", "health", "disaster", "card", "procedure", "event")
        for ch in ("push", "email")
    }
    del data["tax-email"], data["event-push"]
    resp = post_form(client, "/me/notices/settings", data)
    assert resp.status_code == 302
    off = {
        (s.category, s.channel)
        for s in db.session.scalars(
            select(NotificationSetting).where(
                NotificationSetting.account_id == city["account"].id, NotificationSetting.enabled.is_(False)
            )
        )
    }
    assert off == {("tax", "email"), ("event", "push")}
    html = client.get("/me/notices/settings").get_data(as_text=True)
    assert html.count("checked") == 14
    assert csrf_from(html)


def test_nav_partial_links_and_unread_count(app, city, db):
    from flask import render_template_string
    from flask_login import login_user

    send_notice(app, city, wards=["01"])
    template = '<ul>{% include "notices/_nav.html" %}</ul>'
    # Each in a fresh app context: flask_login keeps its user in ``g``.
    with app.app_context(), app.test_request_context("/"):
        login_user(db.session.merge(city["account"]))
        html = render_template_string(template)
    assert 'href="/me/notices/"' in html and "未読1件" in html
    with app.app_context(), app.test_request_context("/"):
        login_user(db.session.merge(city["author1"]))
        html = render_template_string(template)
    assert 'href="/staff/notices/"' in html and "/me/notices" not in html
    with app.app_context(), app.test_request_context("/"):
        assert "<li>" not in render_template_string(template)
