"""The PO box core: approval by a second person, idempotent fan-out, rendering, inbox, replies."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from portal.models_base import utcnow
from portal.notices import service
from portal.notices.models import Delivery, Notice
from tests.factories import make_resident


def _notice(db, rule=None, **kw) -> Notice:
    notice = Notice(
        category=kw.pop("category", "health"),
        title_ja="健康診査のお知らせ",
        title_en="Health check-up",
        body_ja=kw.pop("body_ja", "{name}さん、健診の季節です。"),
        body_en="Dear {name}, it is check-up time.",
        rule=json.dumps(rule or {}),
        created_by="author1",
        **kw,
    )
    db.session.add(notice)
    db.session.commit()
    return notice


def _count(db, notice):
    return db.session.scalar(select(func.count()).where(Delivery.notice_id == notice.id))


def test_a_second_person_approves_before_anything_is_sent(app, db):
    notice = _notice(db)
    with pytest.raises(service.NoticeError):
        service.fan_out(notice.id)  # a draft never goes out
    service.submit(notice)
    with pytest.raises(service.NoticeError) as info:
        service.approve(notice, "author1")
    assert info.value.code == "same_person"
    service.approve(notice, "author2")
    assert notice.status == "approved" and notice.approved_by == "author2"


def test_cancel_before_send_only(app, db):
    notice = _notice(db)
    service.submit(notice)
    service.approve(notice, "author2")
    service.cancel(notice, "author1")
    with pytest.raises(service.NoticeError):
        service.fan_out(notice.id)
    sent = _notice(db, status="sent")
    with pytest.raises(service.NoticeError):
        service.cancel(sent, "author1")


def test_fan_out_targets_by_rule_and_never_duplicates(app, db):
    old = [make_resident(given=f"老{i}", birth=date(1940, 1, 1 + i)) for i in range(5)]
    make_resident(given="若", birth=date(2000, 1, 1))
    make_resident(given="転", birth=date(1940, 2, 1), status="moved_out")
    notice = _notice(db, {"age": {"min": 75, "max": 130}}, status="approved")
    assert service.recipient_count({"age": {"min": 75, "max": 130}}) == 5
    assert service.fan_out(notice.id, batch=2) == 5
    # a crash after some batches: the status is still sending, the re-run adds nothing twice
    notice.status = "sending"
    db.session.commit()
    assert service.fan_out(notice.id, batch=3) == 5
    assert _count(db, notice) == 5
    assert {d.resident_id for d in db.session.scalars(select(Delivery))} == {p.id for p in old}


def test_placeholders_are_text_never_markup_or_attribute_access(app, db):
    person = make_resident(family="<script>alert(1)</script>", given="花子")
    db.session.commit()
    assert service.fill("{name}さん", service.placeholders_for(person)).startswith("<script>")
    assert service.fill("{name.__class__} {unknown}", {"name": "x"}) == "{name.__class__} {unknown}"
    notice = _notice(db, body_ja="{family_name}様")
    with pytest.raises(service.NoticeError):
        service.validate(_notice(db, body_ja="{password}"))
    assert service.render(notice, person, "ja").body == "<script>alert(1)</script>様"


def test_inbox_household_proxy_and_isolation(app, db):
    parent = make_resident(given="母", birth=date(1990, 1, 1), sex=2)
    baby = make_resident(
        given="赤",
        birth=date.today() - timedelta(days=70),
        household=parent.household,
        relation="child",
        ward=parent.ward,
    )
    stranger = make_resident(family="他人", given="太郎")
    notice = _notice(db, {"age": {"min": 0, "max": 0}}, status="approved", category="child")
    service.fan_out(notice.id)
    assert [d.resident_id for d, _n in service.inbox(parent)] == [baby.id]  # the parent sees the baby's
    assert service.inbox(stranger) == []
    delivery = db.session.scalar(select(Delivery))
    with pytest.raises(service.NoticeError) as info:
        service.open_delivery(stranger, delivery.id, account_id=99)
    assert info.value.status == 404
    assert service.unread_count(parent) == 1
    opened = service.open_delivery(parent, delivery.id, account_id=7)
    assert opened.read_at is not None and opened.read_by_account == 7
    first_read = opened.read_at
    assert service.open_delivery(parent, delivery.id, account_id=8).read_at == first_read  # first read kept


def test_one_reply_changeable_until_the_deadline(app, db):
    person = make_resident()
    notice = _notice(db, status="approved", reply_kind="attend", reply_deadline=utcnow() + timedelta(days=1))
    service.fan_out(notice.id)
    delivery = db.session.scalar(select(Delivery))
    service.answer(delivery, "attend", account_id=1)
    service.answer(delivery, "absent", account_id=1)
    db.session.commit()
    assert service.current_reply(delivery).option == "absent"
    assert service.figures(notice)["replies"] == {"absent": 1}
    with pytest.raises(service.NoticeError):
        service.answer(delivery, "maybe", account_id=1)
    notice.reply_deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    with pytest.raises(service.NoticeError) as info:
        service.answer(delivery, "attend", account_id=1)
    assert info.value.code == "reply_closed"
    assert person.id == delivery.resident_id
