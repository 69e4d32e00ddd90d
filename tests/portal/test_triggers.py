"""Life-event triggers: vaccination ages, card certificates expiring, pre-filing status changes.
Each resident gets each trigger once; a second run the same day adds nothing."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.cardid.models import CardCredential
from portal.notices import service, triggers
from portal.notices.models import Delivery, Notice, TriggerFired
from tests.factories import make_resident, make_ward

ON = date(2026, 11, 27)


def _deliveries(db, resident_id=None):
    stmt = select(Notice.trigger_key, Delivery.resident_id).join(Notice, Notice.id == Delivery.notice_id)
    if resident_id is not None:
        stmt = stmt.where(Delivery.resident_id == resident_id)
    return sorted(db.session.execute(stmt).all())


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def _family(db, child_birth: date):
    ward = make_ward()
    mother = make_resident(given="花子", birth=date(1990, 5, 1), ward=ward)
    child = make_resident(
        given="陽菜", birth=child_birth, ward=ward, household=mother.household, relation="child"
    )
    db.session.commit()
    return mother, child


def test_a_child_reaching_two_months_gets_the_two_month_vaccinations_once(app, db):
    mother, child = _family(db, date(2026, 9, 27))  # 2 months on ON
    fired = triggers.run_triggers(ON)
    keys = {k for k, v in fired.items() if v}
    assert keys == {"vaccination:hepb", "vaccination:rota", "vaccination:dpt_ipv_hib", "vaccination:pcv"}
    assert {k for k, r in _deliveries(db)} == keys
    assert all(r == child.id for _, r in _deliveries(db))  # addressed to the child, not the mother
    notice = db.session.scalar(select(Notice).where(Notice.trigger_key == "vaccination:bcg"))
    assert notice is None  # BCG is at 5 months
    rota = db.session.scalar(select(Notice).where(Notice.trigger_key == "vaccination:rota"))
    assert rota.category == "child" and rota.status == "sent" and rota.created_by == "system"
    assert "ロタウイルス" in rota.title_ja and "Rotavirus" in rota.title_en
    assert "ロタウイルス" in rota.body_ja and "Rotavirus" in rota.body_en
    assert rota.targeted == 1
    # The household proxy: the mother's inbox shows the child's notices.
    assert len(service.inbox(mother)) == 4

    # Idempotent: the same day again, and the next day, add nothing.
    before = (_count(db, Notice), _count(db, Delivery), _count(db, TriggerFired))
    assert sum(triggers.run_triggers(ON).values()) == 0
    assert sum(triggers.run_triggers(ON + timedelta(days=1)).values()) == 0
    assert (_count(db, Notice), _count(db, Delivery), _count(db, TriggerFired)) == before


def test_the_day_before_is_too_early_and_the_age_fires_on_its_day(app, db):
    _, child = _family(db, date(2026, 6, 28))  # 5 months on 2026-11-28
    triggers.run_triggers(date(2026, 11, 27))
    assert "vaccination:bcg" not in {k for k, _ in _deliveries(db, child.id)}
    triggers.run_triggers(date(2026, 11, 28))
    assert "vaccination:bcg" in {k for k, _ in _deliveries(db, child.id)}


def test_a_month_end_birthday_reaches_the_age_when_the_month_is_complete(app, db):
    # Months counted as Resident.age_in_months_on and the targeting rules count them: born on
    # 31 December, 2 months are complete on 1 March (February has no 31st).
    _, child = _family(db, date(2025, 12, 31))
    assert not triggers.run_triggers(date(2026, 2, 28))["vaccination:rota"]
    assert child.age_in_months_on(date(2026, 3, 1)) == 2
    assert triggers.run_triggers(date(2026, 3, 1))["vaccination:rota"] == 1


def test_a_feb_29_child_turns_one_on_march_1_in_a_common_year(app, db):
    _, child = _family(db, date(2024, 2, 29))
    assert not triggers.run_triggers(date(2025, 2, 28))["vaccination:mr1"]
    assert child.age_in_months_on(date(2025, 3, 1)) == 12
    assert triggers.run_triggers(date(2025, 3, 1))["vaccination:mr1"] == 1


def test_one_notice_per_trigger_per_day_shared_by_the_days_children(app, db):
    _family(db, date(2026, 9, 27))
    _family(db, date(2026, 9, 27))
    triggers.run_triggers(ON)
    # A third child registered later the same day joins the day's notice.
    _family(db, date(2026, 9, 27))
    assert triggers.run_triggers(ON)["vaccination:rota"] == 1
    rota = db.session.scalars(select(Notice).where(Notice.trigger_key == "vaccination:rota")).all()
    assert len(rota) == 1 and rota[0].targeted == 3
    # The next day's children get the next day's notice.
    _family(db, date(2026, 9, 28))
    assert triggers.run_triggers(ON + timedelta(days=1))["vaccination:rota"] == 1
    assert db.session.scalar(select(func.count()).where(Notice.trigger_key == "vaccination:rota")) == 2


def test_moved_out_and_older_children_are_not_told(app, db):
    ward = make_ward()
    make_resident(birth=date(2026, 9, 27), ward=ward, status="moved_out")
    make_resident(birth=date(2026, 5, 27), ward=ward)  # 6 months: past the rotavirus window
    db.session.commit()
    fired = triggers.run_triggers(ON)
    assert fired["vaccination:rota"] == 0
    # Reached 2 months four months ago: past the catch-up days (not told at a first deployment).
    assert fired["vaccination:hepb"] == 0


def test_a_missed_day_is_caught_up_within_30_days(app, db):
    _family(db, date(2026, 6, 1))  # 5 months on 1 November
    assert triggers.run_triggers(date(2026, 11, 30))["vaccination:bcg"] == 1  # 29 days late
    _family(db, date(2026, 5, 30))  # 5 months on 30 October: 31 days before
    assert triggers.run_triggers(date(2026, 11, 30))["vaccination:bcg"] == 0


def test_mr2_goes_to_the_year_before_school(app, db):
    ward = make_ward()
    nencho_first = make_resident(birth=date(2020, 4, 1), ward=ward)  # enters school April 2026? no: 2026
    nencho = make_resident(birth=date(2020, 4, 2), ward=ward)  # enters school April 2027
    younger = make_resident(birth=date(2021, 4, 2), ward=ward)
    db.session.commit()
    triggers.run_triggers(ON)  # fiscal year 2026: 年長 = born 2020-04-02 … 2021-04-01
    told = {r for k, r in _deliveries(db) if k == "vaccination:mr2"}
    assert told == {nencho.id}
    assert nencho_first.id not in told and younger.id not in told


def test_birth_windows_of_the_schedule():
    by_code = {v.code: v for v in triggers.VACCINES}
    bcg = (date(2026, 5, 28), date(2026, 6, 27))  # reached 5 months at most 30 days ago
    assert triggers.birth_window(by_code["bcg"], date(2026, 11, 27)) == bcg
    # The later of the period's end (3 months: born after 27 August) and the catch-up days.
    rota = (date(2026, 8, 28), date(2026, 9, 27))
    assert triggers.birth_window(by_code["rota"], date(2026, 11, 27)) == rota
    assert triggers.birth_window(by_code["mr2"], date(2027, 3, 31)) == (date(2020, 4, 1), date(2021, 4, 1))
    assert triggers.birth_window(by_code["mr2"], date(2027, 4, 1)) == (date(2021, 4, 1), date(2022, 4, 1))
    for v in triggers.VACCINES:
        assert v.period == "nencho" or 0 <= v.start_months < v.end_months
        assert len(f"vaccination:{v.code}") <= 64


_serials = itertools.count(1000)


def _credential(db, resident, not_after: datetime, *, status="active"):
    serial = next(_serials)
    cred = CardCredential(
        resident_id=resident.id,
        issuer="CN=JPKI test",
        serial=str(serial),
        fingerprint_sha256=f"{resident.id:032x}{serial:032x}",
        not_before=not_after - timedelta(days=5 * 365),
        not_after=not_after,
        status=status,
        linked_by="test",
        linked_via="text_ap",
    )
    db.session.add(cred)
    db.session.commit()
    return cred


def test_card_certificate_expiring_within_90_days_warns_once_per_certificate(app, db):
    ward = make_ward()
    soon = make_resident(ward=ward)
    later = make_resident(ward=ward)
    revoked = make_resident(ward=ward)
    expired = make_resident(ward=ward)
    db.session.commit()
    noon = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # noon in Tokyo on ON
    cred = _credential(db, soon, noon + timedelta(days=90))
    _credential(db, later, noon + timedelta(days=92))
    _credential(db, revoked, noon + timedelta(days=10), status="revoked")
    _credential(db, expired, noon - timedelta(days=1))
    assert triggers.run_triggers(ON)["card_expiry"] == 1
    assert _deliveries(db) == [("card_expiry", soon.id)]
    notice = db.session.scalar(select(Notice).where(Notice.trigger_key == "card_expiry"))
    assert notice.category == "card" and "更新" in notice.title_ja and "Renew" in notice.title_en
    fired = db.session.scalar(select(TriggerFired.trigger_key).where(TriggerFired.resident_id == soon.id))
    assert fired == f"card_expiry:{cred.id}"
    assert triggers.run_triggers(ON)["card_expiry"] == 0
    # Two days later the other certificate enters the 90 days.
    assert triggers.run_triggers(ON + timedelta(days=2))["card_expiry"] == 1
    # The resident renews: the new certificate warns again when it, in turn, nears its end.
    cred.status = "superseded"
    _credential(db, soon, noon + timedelta(days=5 * 365))
    assert triggers.run_triggers(ON + timedelta(days=3))["card_expiry"] == 0
    assert triggers.run_triggers(ON + timedelta(days=5 * 365 - 80))["card_expiry"] == 1


def test_procedure_status_change_is_notified_once(app, db):
    resident = make_resident()
    db.session.commit()
    first = triggers.notify_procedure_status(resident.id, "転出届", "Moving-out notification", "received")
    assert first is not None
    assert (
        triggers.notify_procedure_status(resident.id, "転出届", "Moving-out notification", "received") is None
    )
    second = triggers.notify_procedure_status(resident.id, "転出届", "Moving-out notification", "completed")
    assert second is not None and second != first
    delivery = db.session.get(Delivery, second)
    assert delivery.resident_id == resident.id
    notice = delivery.notice
    assert notice.category == "procedure" and notice.status == "sent" and notice.created_by == "system"
    assert "転出届" in notice.title_ja and "完了" in notice.title_ja
    assert "Moving-out notification" in notice.title_en and "completed" in notice.title_en
    # Another pre-filing of the same procedure (its own reference) is told again.
    again = triggers.notify_procedure_status(
        resident.id, "転出届", "Moving-out notification", "completed", reference="PF-2"
    )
    assert again is not None
    with pytest.raises(ValueError):
        triggers.notify_procedure_status(resident.id, "転出届", "Moving-out", "exploded")
    assert [r for _, r in _deliveries(db)] == [resident.id] * 3


def test_run_scheduled_sends_due_notices_and_runs_triggers(app, db):
    make_resident(birth=date(1950, 1, 1))
    _family(db, date(2026, 9, 27))
    now = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    due = Notice(
        category="event",
        title_ja="防災訓練",
        title_en="Drill",
        body_ja="b",
        body_en="b",
        rule=json.dumps({}),
        created_by="a1",
        status="approved",
        approved_by="a2",
        send_at=now - timedelta(minutes=5),
    )
    later = Notice(
        category="event",
        title_ja="後で",
        title_en="Later",
        body_ja="b",
        body_en="b",
        rule="{}",
        created_by="a1",
        status="approved",
        approved_by="a2",
        send_at=now + timedelta(days=1),
    )
    db.session.add_all([due, later])
    db.session.commit()
    out = triggers.run_scheduled(now)
    assert out[f"notice:{due.id}"] == 3  # fanned out (inline jobs)
    assert f"notice:{later.id}" not in out
    assert out["vaccination:rota"] == 1
    assert triggers.run_scheduled(now) == {k: 0 for k in out if not k.startswith("notice:")}


def test_flask_notices_run_scheduled(app, db):
    from portal.notices import cli

    cli.init_app(app)
    _family(db, date(2026, 9, 27))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["notices", "run-triggers", "--on", "2026-11-27"])
    assert result.exit_code == 0, result.output
    assert "life-event triggers: 4 residents" in result.output
    assert "vaccination:rota: 1" in result.output
    result = runner.invoke(args=["notices", "run-scheduled"])
    assert result.exit_code == 0, result.output
    assert "notices sent: 0" in result.output


def test_a_trigger_notice_is_queued_for_the_parents_e_mail(app, db):
    from portal.notices.models import ChannelDelivery
    from tests.factories import make_account

    mother, child = _family(db, date(2026, 6, 27))  # 5 months: BCG
    make_account(resident=mother, email="mother@example.jp")
    db.session.commit()
    triggers.run_triggers(ON)

    def rows():
        return db.session.execute(
            select(Notice.trigger_key, ChannelDelivery.channel, ChannelDelivery.attempts)
            .join(Delivery, Delivery.id == ChannelDelivery.delivery_id)
            .join(Notice, Notice.id == Delivery.notice_id)
            .where(Delivery.resident_id == child.id)
        ).all()

    first = rows()
    assert ("vaccination:bcg", "email", 1) in first  # queued through the household head's account
    # Re-running queues and attempts nothing twice.
    triggers.run_triggers(ON)
    assert sorted(rows()) == sorted(first)
