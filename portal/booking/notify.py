"""Telling the resident: a PO-box notice (which the notice channels also push and e-mail, as the
resident chose) for a confirmation, change, cancellation, the day-before reminder and "your turn is
near"; and an e-mail with the visit as an ``.ics`` calendar file (icalendar).

Each notice is sent once per booking and kind: its key goes in ``trigger_fired`` (unique per
resident and key), the same guard the life-event notices use."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from icalendar import Calendar, Event
from sqlalchemy import select

from portal.booking import service
from portal.booking.models import Booking, Office, Service, Slot, Ticket
from portal.extensions import db
from portal.models_base import utcnow

# kind → (title ja, title en)
TITLES = {
    "confirmed": ("ご予約を承りました", "Your appointment is booked"),
    "rescheduled": ("ご予約の日時を変更しました", "Your appointment has been moved"),
    "cancelled": ("ご予約を取り消しました", "Your appointment has been cancelled"),
    "reminder": ("明日のご予約のお知らせ", "Reminder: your appointment tomorrow"),
    "near": ("まもなくお呼びします", "Your number will be called soon"),
}
WEEKDAYS_JA = "月火水木金土日"


def when_ja(at: datetime) -> str:
    t = service.tokyo(at)
    return f"{t.year}年{t.month}月{t.day}日（{WEEKDAYS_JA[t.weekday()]}）{t:%H:%M}"


def when_en(at: datetime) -> str:
    return service.tokyo(at).strftime("%a %d %b %Y, %H:%M")


def _parts(booking: Booking) -> tuple[Slot, Service, Office]:
    slot = db.session.get(Slot, booking.slot_id)
    return slot, db.session.get(Service, slot.service_id), db.session.get(Office, slot.office_id)


def booking_texts(booking: Booking, kind: str) -> dict[str, str]:
    slot, svc, office = _parts(booking)
    ja, en = TITLES[kind]
    ref = service.format_reference(booking.reference)
    body_ja = (
        f"{svc.name_ja}：{when_ja(slot.starts_at)}、{office.name_ja}。予約番号 {ref}。"
        "当日は受付機で予約のQRコードを読み取るか、予約番号を入力してください。"
    )
    body_en = (
        f"{svc.name_en}: {when_en(slot.starts_at)}, {office.name_en}. Reference {ref}. "
        "On the day, scan the booking's QR code at the reception kiosk or type the reference."
    )
    if kind == "cancelled":
        body_ja = (
            f"{svc.name_ja}（{when_ja(slot.starts_at)}、{office.name_ja}）のご予約を取り消しました。"
            f"予約番号 {ref}。"
        )
        body_en = (
            f"Your appointment for {svc.name_en} ({when_en(slot.starts_at)}, {office.name_en}) "
            f"is cancelled. Reference {ref}."
        )
    return {
        "title_ja": f"{ja}：{svc.name_ja}"[:200],
        "title_en": f"{en}: {svc.name_en}"[:200],
        "body_ja": body_ja,
        "body_en": body_en,
    }


def send_notice(resident_id: int, key: str, texts: dict[str, str]) -> int | None:
    """One system notice to one resident, once per ``key``; commits and hands it to the channels
    (push, e-mail as the resident chose). Returns the delivery id, or None if already sent."""
    from portal.notices import delivery as channels
    from portal.notices.models import Delivery, TriggerFired
    from portal.notices.triggers import _system_notice

    if db.session.scalar(
        select(TriggerFired.id).where(
            TriggerFired.resident_id == resident_id, TriggerFired.trigger_key == key
        )
    ):
        return None
    now = utcnow()
    notice = _system_notice("procedure", key, send_at=now, targeted=1, **texts)
    inserted = db.session.scalar(
        service._insert_ignore(TriggerFired.__table__)
        .values(resident_id=resident_id, trigger_key=key, fired_at=now, notice_id=notice.id)
        .returning(TriggerFired.__table__.c.id)
    )
    if inserted is None:
        db.session.rollback()
        return None
    found = Delivery(notice_id=notice.id, resident_id=resident_id, created_at=now)
    db.session.add(found)
    db.session.commit()
    channels.schedule_send(notice.id)
    return found.id


def notice_key(booking: Booking, kind: str) -> str:
    # Per version of the booking: a moved booking is confirmed and reminded again.
    return f"booking:{booking.id}:{kind}:{booking.sequence}"


def notify(booking: Booking, kind: str) -> int | None:
    """The PO-box notice for a booking event; a failure here never undoes the booking."""
    try:
        return send_notice(booking.resident_id, notice_key(booking, kind), booking_texts(booking, kind))
    except Exception:
        db.session.rollback()
        current_app.logger.exception("booking %s: %s notice not sent", booking.id, kind)
        return None


def notify_near(ticket: Ticket, ahead: int) -> int | None:
    if ticket.resident_id is None:
        return None
    svc = db.session.get(Service, ticket.service_id)
    texts = {
        "title_ja": f"まもなくお呼びします：番号 {ticket.number}",
        "title_en": f"Your number {ticket.number} will be called soon",
        "body_ja": f"{svc.name_ja}の番号 {ticket.number} は、あと{ahead}人でお呼びします。"
        "窓口の近くでお待ちください。",
        "body_en": f"Number {ticket.number} ({svc.name_en}): {ahead} ahead of you. "
        "Please wait near the counters.",
    }
    try:
        return send_notice(ticket.resident_id, f"booking-ticket:{ticket.id}:near", texts)
    except Exception:
        db.session.rollback()
        current_app.logger.exception("ticket %s: near notice not sent", ticket.id)
        return None


# --- the calendar file -----------------------------------------------------------------------------


def ics(booking: Booking) -> bytes:
    """The visit as an iCalendar file: one VEVENT, UID stable per booking, SEQUENCE bumped by
    each change; a cancelled booking is METHOD:CANCEL with STATUS:CANCELLED."""
    slot, svc, office = _parts(booking)
    cancelled = booking.status == "cancelled"
    cal = Calendar()
    cal.add("prodid", "-//Minato City//Counter booking//JA")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = Event()
    host = (current_app.config.get("PUBLIC_ORIGIN") or "city.example.jp").split("//")[-1].split("/")[0]
    event.add("uid", f"booking-{booking.reference}@{host}")
    event.add("dtstamp", utcnow())
    event.add("dtstart", slot.starts_at)
    event.add("dtend", slot.ends_at)
    event.add("sequence", booking.sequence)
    event.add("summary", f"{svc.name_ja} / {svc.name_en} — {office.name_ja}")
    event.add("location", f"{office.name_ja} {office.address_ja}".strip())
    event.add(
        "description",
        f"予約番号 Reference: {service.format_reference(booking.reference)}\n"
        "受付機で予約のQRコードを読み取るか、予約番号を入力してください。\n"
        "Scan the booking's QR code at the reception kiosk or type the reference.",
    )
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    cal.add_component(event)
    return cal.to_ical()


def email(booking: Booking, kind: str) -> None:
    """The e-mail with the .ics file to the account that booked (transactional, not a notice)."""
    from portal import mail
    from portal.accounts.models import ResidentAccount

    account = db.session.get(ResidentAccount, booking.account_id) if booking.account_id else None
    if account is None or account.email_verified_at is None:
        return
    texts = booking_texts(booking, kind)
    try:
        mail.send(
            account.email,
            f"{texts['title_ja']} / {texts['title_en']}",
            f"{texts['body_ja']}\n\n{texts['body_en']}\n",
            attachments=[(ics(booking), "text/calendar", f"booking-{booking.reference}.ics")],
        )
    except Exception:
        current_app.logger.exception("booking %s: %s e-mail not sent", booking.id, kind)


def confirm(booking: Booking, kind: str = "confirmed") -> None:
    notify(booking, kind)
    email(booking, kind)


def remind(now: datetime | None = None) -> int:
    """Remind every resident booked for tomorrow (Tokyo), once per booking: ``reminded_at`` is set
    by a conditional UPDATE before the notice goes, so two runs at once send one reminder."""
    from datetime import timedelta

    from sqlalchemy import update

    now = now or utcnow()
    start, end = service.day_bounds(service.today_in_tokyo(now) + timedelta(days=1))
    ids = list(
        db.session.scalars(
            select(Booking.id)
            .join(Slot, Slot.id == Booking.slot_id)
            .where(Booking.status == "booked", Booking.reminded_at.is_(None))
            .where(Slot.starts_at >= start, Slot.starts_at < end)
            .order_by(Booking.id)
        )
    )
    sent = 0
    for booking_id in ids:
        claimed = db.session.execute(
            update(Booking)
            .where(Booking.id == booking_id, Booking.reminded_at.is_(None), Booking.status == "booked")
            .values(reminded_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if claimed.rowcount != 1:
            continue
        booking = db.session.get(Booking, booking_id)
        db.session.refresh(booking)
        if notify(booking, "reminder") is not None:
            sent += 1
    return sent
