"""Life-event triggers (ライフイベント通知): notices created when a condition starts to hold.

Each trigger selects the residents for whom its condition holds today and who have no
``TriggerFired`` row for its key yet — one SQL statement — and inserts, set-wise and in one
transaction per batch of resident ids, their ``TriggerFired`` rows and their deliveries (both with
ON CONFLICT DO NOTHING). No Python loop over residents: a city of a million costs a few statements.

Design: **one Notice per trigger key per day** (``Notice.trigger_key`` = the key, ``send_at`` =
midnight in Tokyo of the run's date, created and approved by ``system``, status ``sent``). A second
run on the same day adds the residents who newly qualify to that day's notice (usually nobody:
then nothing is written at all). A day with nobody qualifying makes no notice.

Triggers:

* ``vaccination:<code>`` — a child reaches the age of a routine vaccination (定期接種, below); the
  notice is addressed to the child, so the household proxy shows it to the parents.
* ``card_expiry`` — an active card credential's user-authentication certificate expires within
  90 days. Fired once **per certificate** (``TriggerFired.trigger_key`` is
  ``card_expiry:<credential id>``): a renewed certificate is a new credential and warns again
  five years later.
* ``procedure:<…>`` — a pre-filing changed status: ``notify_procedure_status()`` (called by the
  pre-filing service), one notice per resident, procedure and status.

``run_triggers(on)`` runs the scheduled ones (vaccinations, card expiry); ``run_scheduled()`` also
sends the approved notices whose ``send_at`` has passed. ``flask notices run-scheduled`` runs it
(cron, or an RQ scheduler through ``portal.jobs.run_in_app("portal.notices.triggers.run_scheduled")``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import Select, String, and_, cast, exists, func, literal, select, update

from portal.cardid.models import CardCredential
from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow
from portal.notices.models import Delivery, Notice, TriggerFired
from portal.notices.service import TOKYO, _insert_ignore
from portal.notices.targeting import _shift
from portal.registry.models import Resident

SYSTEM = "system"
BATCH = 50_000
CARD_EXPIRY_DAYS = 90
CATCH_UP_DAYS = 30
LOCK_KEY = 0x504F_0005  # PostgreSQL advisory lock: one trigger run at a time ("PO" 5)


# --- the routine vaccination schedule -----------------------------------------------------------


@dataclass(frozen=True)
class Vaccine:
    code: str
    name_ja: str
    name_en: str
    # The routine period (定期接種の対象期間) in months of age: from ``start`` (inclusive) to ``end``
    # (exclusive). The notice goes out once, on the first run on or after the day the child reaches
    # ``start`` months, up to CATCH_UP_DAYS later (runs missed in an outage catch up; children
    # reached the age long ago — e.g. when the trigger is first deployed — are not told).
    start_months: int | None
    end_months: int | None
    standard_ja: str  # 標準的な接種時期
    standard_en: str
    # "nencho": the year before primary school (年長, 1 April to 31 March of the school year in which
    # the child turns 6) instead of a month window.
    period: str = "months"


# Sources (checked for the schedule from October 2024):
# * 予防接種法施行令 第1条の3 別表 (対象者) and 予防接種実施規則; 厚生労働省「定期接種実施要領」
#   (https://www.mhlw.go.jp/bunya/kenkou/kekkaku-kansenshou20/annai.html)
# * 国立感染症研究所「日本の定期/任意予防接種スケジュール」2024年10月1日以降
#   (https://www.niid.go.jp/niid/ja/schedule.html)
# * 5種混合 (DPT-IPV-Hib) is routine from April 2024 and includes Hib: children starting now get
#   Hib through it, so Hib is not a separate entry (those who began with 4種混合 + Hib keep their
#   schedule with their clinic). 小児用肺炎球菌 is the 20-valent vaccine from October 2024.
# * ロタウイルス: the first dose by 14 weeks 6 days, so the notice window closes at 3 months.
VACCINES: tuple[Vaccine, ...] = (
    Vaccine("hepb", "B型肝炎", "Hepatitis B", 2, 12, "生後2か月〜9か月（3回）", "2 to 9 months (3 doses)"),
    Vaccine("rota", "ロタウイルス", "Rotavirus", 2, 3, "生後2か月から（初回は生後14週6日まで）",
            "from 2 months (first dose by 14 weeks 6 days)"),
    Vaccine("dpt_ipv_hib", "5種混合（ジフテリア・百日せき・破傷風・ポリオ・Hib）",
            "DPT-IPV-Hib (diphtheria, pertussis, tetanus, polio, Hib)", 2, 90,
            "生後2か月〜7か月に初回3回、その6〜18か月後に追加1回",
            "3 doses from 2 to 7 months, a booster 6–18 months later"),
    Vaccine("pcv", "小児用肺炎球菌", "Pneumococcal conjugate (children)", 2, 60,
            "生後2か月〜7か月に初回3回、生後12〜15か月に追加1回",
            "3 doses from 2 to 7 months, a booster at 12–15 months"),
    Vaccine("bcg", "BCG", "BCG (tuberculosis)", 5, 12, "生後5か月〜8か月", "5 to 8 months"),
    Vaccine("mr1", "麻しん風しん混合（MR）第1期", "Measles-rubella (MR), 1st dose", 12, 24,
            "1歳になったらすぐ", "as soon as the child turns 1"),
    Vaccine("varicella", "水痘（水ぼうそう）", "Varicella (chickenpox)", 12, 36,
            "生後12〜15か月に1回目、その6〜12か月後に2回目",
            "1st dose at 12–15 months, 2nd 6–12 months later"),
    Vaccine("je1", "日本脳炎 第1期", "Japanese encephalitis, 1st period", 36, 90,
            "3歳で2回、4歳で追加1回", "2 doses at age 3, a booster at age 4"),
    Vaccine("mr2", "麻しん風しん混合（MR）第2期", "Measles-rubella (MR), 2nd dose", None, None,
            "小学校入学前の1年間（年長）", "the year before primary school", period="nencho"),
    Vaccine("je2", "日本脳炎 第2期", "Japanese encephalitis, 2nd period", 108, 156, "9歳", "age 9"),
    Vaccine("dt2", "2種混合（DT）第2期", "Diphtheria-tetanus (DT), 2nd period", 132, 156, "11歳", "age 11"),
)  # fmt: skip


def _system_notice(category: str, trigger_key: str, *, send_at, targeted: int, **texts: str) -> Notice:
    """A notice the system writes and sends itself (no author, no second approval)."""
    now = utcnow()
    notice = Notice(
        category=category,
        rule="{}",
        trigger_key=trigger_key,
        status="sent",
        send_at=send_at,
        created_by=SYSTEM,
        created_at=now,
        approved_by=SYSTEM,
        approved_at=now,
        sent_at=now,
        targeted=targeted,
        **texts,
    )
    db.session.add(notice)
    db.session.flush()
    return notice


def birth_window(vaccine: Vaccine, on: date) -> tuple[date, date]:
    """Birth dates ``(earliest exclusive, latest inclusive)`` of the children in the period on ``on``."""
    if vaccine.period == "nencho":
        # Children who enter school next April: born 2 April (FY-6) … 1 April (FY-5).
        fiscal_year = on.year if on.month >= 4 else on.year - 1
        return date(fiscal_year - 6, 4, 1), date(fiscal_year - 5, 4, 1)
    assert vaccine.start_months is not None and vaccine.end_months is not None
    reached = _shift(on, months=vaccine.start_months)
    return max(_shift(on, months=vaccine.end_months), reached - timedelta(days=CATCH_UP_DAYS)), reached


def vaccination_texts(vaccine: Vaccine) -> dict[str, str]:
    return {
        "title_ja": f"{vaccine.name_ja}の予防接種のお知らせ",
        "title_en": f"Vaccination due: {vaccine.name_en}",
        "body_ja": (
            f"お子さまが{vaccine.name_ja}の定期予防接種の対象年齢になりました。"
            "定期接種は公費（無料）で受けられます。\n"
            f"標準的な接種時期：{vaccine.standard_ja}\n"
            "母子健康手帳と予診票を持って、市の指定医療機関で接種してください。"
            "対象期間を過ぎると公費の対象外になります。"
        ),
        "body_en": (
            f"Your child has reached the age for the routine {vaccine.name_en} vaccination. "
            "Routine vaccinations are free of charge.\n"
            f"Usual timing: {vaccine.standard_en}\n"
            "Bring the Maternal and Child Health Handbook and the screening form to one of the "
            "city's designated clinics. After the routine period the vaccination is no longer free."
        ),
    }


CARD_TEXTS = {
    "title_ja": "マイナンバーカードの電子証明書の更新のお知らせ",
    "title_en": "Renew your My Number Card certificate",
    "body_ja": (
        "マイナンバーカードの利用者証明用電子証明書の有効期限が90日以内に切れます。"
        "期限が切れるとカードでのログインやコンビニ交付が使えなくなります。"
        "カードと暗証番号を持って、区役所の窓口で更新してください（手数料無料）。"
    ),
    "body_en": (
        "The user-authentication certificate on your My Number Card expires within 90 days. "
        "After that you can no longer log in or get certificates with the card. Bring the card "
        "and its PINs to a ward office counter to renew it (free of charge)."
    ),
}

PROCEDURE_STATUSES = {
    "received": ("受け付けました", "has been received"),
    "in_review": ("審査中です", "is being reviewed"),
    "action_required": ("追加の書類・手続きが必要です", "needs more documents or action from you"),
    "approved": ("承認されました", "has been approved"),
    "rejected": ("受理できませんでした", "could not be accepted"),
    "ready": ("窓口でお受け取りいただけます", "is ready for you at the counter"),
    "completed": ("完了しました", "has been completed"),
    "cancelled": ("取り下げられました", "has been withdrawn"),
}


# --- the set-wise machinery ---------------------------------------------------------------------


def _day_start(on: date) -> datetime:
    return datetime.combine(on, time(), TOKYO).astimezone(UTC)


def _day_notice(trigger_key: str, category: str, texts: dict[str, str], on: date) -> Notice:
    """The day's notice of a trigger, created on first need."""
    day = _day_start(on)
    notice = db.session.scalar(
        select(Notice).where(Notice.trigger_key == trigger_key, Notice.send_at == day).order_by(Notice.id)
    )
    if notice is None:
        notice = _system_notice(category, trigger_key, send_at=day, targeted=0, **texts)
    return notice


def _fire(
    notice_key: str,
    category: str,
    texts: dict[str, str],
    on: date,
    candidates: Select,
    *,
    batch: int = BATCH,
) -> tuple[int, int | None]:
    """Fire a trigger for ``candidates`` — a SELECT of ``(resident_id, fired_key)`` rows whose key
    is not in ``trigger_fired`` yet — batch by batch of resident ids. Returns how many fired and
    the day's notice (None when nobody qualified)."""
    rows = candidates.subquery()
    if db.session.scalar(select(exists().where(rows.c.resident_id.is_not(None)))) is not True:
        return 0, None
    notice = _day_notice(notice_key, category, texts, on)
    db.session.commit()
    top = db.session.scalar(select(func.max(rows.c.resident_id))) or 0
    now = utcnow()
    before = _fired_count(notice.id)
    for start in range(0, top + 1, batch):
        window = and_(rows.c.resident_id >= start, rows.c.resident_id < start + batch)
        db.session.execute(
            _insert_ignore(TriggerFired.__table__).from_select(
                ["resident_id", "trigger_key", "fired_at", "notice_id"],
                select(rows.c.resident_id, rows.c.fired_key, literal(now, UTCDateTime()), literal(notice.id))
                .where(window)
                .distinct(),
            )
        )
        # Deliveries for exactly the residents this notice fired for, in the same transaction:
        # a crash leaves both or neither.
        tf = TriggerFired.__table__
        db.session.execute(
            _insert_ignore(Delivery.__table__).from_select(
                ["notice_id", "resident_id", "created_at"],
                select(literal(notice.id), tf.c.resident_id, literal(now, UTCDateTime()))
                .where(tf.c.notice_id == notice.id, tf.c.resident_id.between(start, start + batch - 1))
                .distinct(),
            )
        )
        db.session.commit()
    fired = _fired_count(notice.id) - before
    total = db.session.scalar(select(func.count()).where(Delivery.notice_id == notice.id)) or 0
    db.session.execute(update(Notice).where(Notice.id == notice.id).values(targeted=total))
    db.session.commit()
    current_app.logger.info("trigger %s fired for %s residents (notice %s)", notice_key, fired, notice.id)
    return fired, notice.id


def _fired_count(notice_id: int) -> int:
    # (Counted, not taken from rowcount: psycopg reports 0 for INSERT … SELECT … ON CONFLICT.)
    return db.session.scalar(select(func.count()).where(TriggerFired.notice_id == notice_id)) or 0


def _not_fired(resident_id, key):
    return ~exists().where(TriggerFired.resident_id == resident_id, TriggerFired.trigger_key == key)


def vaccination_candidates(vaccine: Vaccine, on: date) -> Select:
    key = f"vaccination:{vaccine.code}"
    earliest, latest = birth_window(vaccine, on)
    r = Resident
    return select(r.id.label("resident_id"), literal(key).label("fired_key")).where(
        r.status == "active",
        r.birth_date > earliest,
        r.birth_date <= latest,
        _not_fired(r.id, key),
    )


def card_expiry_candidates(on: date) -> Select:
    c = CardCredential
    key = literal("card_expiry:") + cast(c.id, String)
    lower = _day_start(on)
    upper = _day_start(on + timedelta(days=CARD_EXPIRY_DAYS + 1))
    return (
        select(c.resident_id.label("resident_id"), key.label("fired_key"))
        .join(Resident, Resident.id == c.resident_id)
        .where(
            c.status == "active",
            c.not_after > lower,
            c.not_after < upper,
            Resident.status == "active",
            _not_fired(c.resident_id, key),
        )
    )


# --- the entry points ---------------------------------------------------------------------------


class _RunLock:
    """One trigger run at a time on PostgreSQL (a session advisory lock on its own connection);
    SQLite serialises writers by itself."""

    def __init__(self) -> None:
        self.conn = None

    def __enter__(self) -> bool:
        if db.engine.dialect.name != "postgresql":
            return True
        self.conn = db.engine.connect()
        got = self.conn.execute(select(func.pg_try_advisory_lock(LOCK_KEY))).scalar()
        self.conn.commit()
        return bool(got)

    def __exit__(self, *exc) -> None:
        if self.conn is not None:
            self.conn.execute(select(func.pg_advisory_unlock(LOCK_KEY)))
            self.conn.commit()
            self.conn.close()


def run_triggers(on: date | None = None, *, send: bool = True) -> dict[str, int]:
    """Run every scheduled trigger for date ``on`` (today in Tokyo by default). Idempotent: a
    second run on the same day fires nothing new. Returns ``{trigger key: residents fired}``.

    With ``send``, each notice that gained residents goes to the channels (e-mail, Web Push) through
    ``delivery.schedule_send`` — an RQ job, or at once with ``JOBS_INLINE``."""
    on = on or today_in_tokyo()
    fired: dict[str, int] = {}
    notices: list[int] = []
    with _RunLock() as locked:
        if not locked:
            current_app.logger.warning("triggers: another run holds the lock; skipped")
            return fired
        work = [
            (f"vaccination:{v.code}", "child", vaccination_texts(v), vaccination_candidates(v, on))
            for v in VACCINES
        ]
        work.append(("card_expiry", "card", CARD_TEXTS, card_expiry_candidates(on)))
        for key, category, texts, candidates in work:
            fired[key], notice_id = _fire(key, category, texts, on, candidates)
            if fired[key] and notice_id is not None:
                notices.append(notice_id)
    if send:
        from portal.notices import delivery

        for notice_id in notices:
            delivery.schedule_send(notice_id)
    return fired


def today_in_tokyo() -> date:
    return utcnow().astimezone(TOKYO).date()


def procedure_key(procedure_name_ja: str, status_code: str, reference: str | None = None) -> str:
    digest = hashlib.sha256((reference or procedure_name_ja).encode()).hexdigest()[:20]
    return f"procedure:{digest}:{status_code}"


def notify_procedure_status(
    resident_id: int,
    procedure_name_ja: str,
    procedure_name_en: str,
    status_code: str,
    *,
    reference: str | None = None,
    commit: bool = True,
) -> int | None:
    """A pre-filing's status changed: a ``procedure`` notice to its resident, sent at once.

    Once per resident, procedure (``reference``, the pre-filing's id, or else its Japanese name)
    and status. Returns the delivery id, or None if this status was already notified. It commits
    and hands the notice to the channels (``delivery.schedule_send``); with ``commit=False`` the
    caller's transaction carries it (commit with the status change, then ``schedule_send``)."""
    if status_code not in PROCEDURE_STATUSES:
        raise ValueError(f"unknown procedure status {status_code!r}")
    ja, en = PROCEDURE_STATUSES[status_code]
    key = procedure_key(procedure_name_ja, status_code, reference)
    done = select(TriggerFired.id).where(
        TriggerFired.resident_id == resident_id, TriggerFired.trigger_key == key
    )
    if db.session.scalar(done) is not None:
        return None
    now = utcnow()
    notice = _system_notice(
        "procedure",
        key,
        send_at=now,
        targeted=1,
        title_ja=f"{procedure_name_ja}：{ja}"[:200],
        title_en=f"{procedure_name_en}: {en}"[:200],
        body_ja=f"お申し込みの「{procedure_name_ja}」は{ja}。詳しくはポータルの申請状況をご確認ください。",
        body_en=f"Your application “{procedure_name_en}” {en}. See its status on the portal for details.",
    )
    inserted = db.session.scalar(
        _insert_ignore(TriggerFired.__table__)
        .values(resident_id=resident_id, trigger_key=key, fired_at=now, notice_id=notice.id)
        .returning(TriggerFired.__table__.c.id)
    )
    if inserted is None:  # a concurrent call notified it first
        db.session.delete(notice)
        db.session.flush()
        return None
    delivery = Delivery(notice_id=notice.id, resident_id=resident_id, created_at=now)
    db.session.add(delivery)
    db.session.flush()
    if commit:
        db.session.commit()
        from portal.notices import delivery as channels_delivery

        channels_delivery.schedule_send(notice.id)
    return delivery.id


def run_scheduled(now: datetime | None = None) -> dict[str, int]:
    """What cron (or an RQ scheduler) runs every few minutes: send the approved notices whose
    ``send_at`` has passed (fan-out, then the channels: ``delivery.schedule_send``), then the
    day's life-event triggers. Returns ``{"notice:<id>": deliveries, <trigger key>: fired}``."""
    from portal.notices import delivery, service

    out: dict[str, int] = {}
    for notice_id in service.due_notices(now):
        delivery.schedule_send(notice_id)
        out[f"notice:{notice_id}"] = (
            db.session.scalar(select(func.count()).where(Delivery.notice_id == notice_id)) or 0
        )
    out.update(run_triggers((now or utcnow()).astimezone(TOKYO).date()))
    return out
