"""Certificates at a kiosk: what a resident may order (``offer``), the fee (``quote``), and
``issue`` — eligibility, the payment consumed once, the PDF made from this resident's data only,
signed in the HSM, an ``IssuedCertificate`` row and access records, all in one transaction.

No flask.request here; the kiosk pages (helper "kiosk") call this module and ``payment`` only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import current_app, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.access import service as access
from portal.certificates import payment as payments
from portal.certificates import pdf as pdf_mod
from portal.certificates import sign
from portal.certificates.models import KINDS, IssuedCertificate, SealRegistration, TaxRecord
from portal.extensions import db
from portal.i18n import wareki
from portal.models_base import utcnow
from portal.registry.models import Resident

TOKYO = ZoneInfo("Asia/Tokyo")
TITLES_JA = pdf_mod.TITLES  # what the PDF prints
TITLES = {
    "residence": _l("Copy of residence record (住民票の写し)"),
    "seal": _l("Seal registration certificate (印鑑登録証明書)"),
    "income": _l("Income and tax certificate (所得・課税証明書)"),
}
# Optional items on a 住民票の写し. The Individual Number is never one of them at a kiosk.
ITEMS = {
    "head_relationship": _l("Head of household and relationship (世帯主・続柄)"),
    "moved_in": _l("Date of becoming a resident (住民となった年月日)"),
    "kana": _l("Names in katakana (フリガナ)"),
}
REFUSALS = {
    "moved_out": _l(
        "You have moved out of the city, so this certificate cannot be printed here. "
        "Please ask at a ward office counter."
    ),
    "move_out_pending": _l(
        "A notification of moving out is in progress for you, so a copy of the residence record "
        "cannot be printed here. Please ask at a ward office counter."
    ),
    "deceased": _l("This certificate cannot be printed here. Please ask at a ward office counter."),
    "not_resident": _l("You are not on the city's resident register. Please ask at a ward office counter."),
    "no_seal": _l(
        "You have no registered seal. To register one, bring the seal and your card to a ward office counter."
    ),
    "no_tax_record": _l(
        "There is no income and tax record for you for that year. Please ask the tax section at "
        "a ward office counter."
    ),
    "unknown_kind": _l("This certificate is not available here."),
    "bad_copies": _l("Choose between 1 and %(max)s copies."),
    "bad_members": _l("Choose at least one member of your household."),
    "bad_items": _l("One of the chosen items cannot be printed here."),
    "bad_year": _l("Choose one of the years shown."),
    "unpaid": _l("The fee has not been paid yet. Please pay, then try again."),
    "payment_used": _l("This payment has already been used for a certificate."),
    "payment_unknown": _l("The payment was not found. Please start again."),
    "payment_amount": _l("The amount paid does not match the fee. Please ask staff for help."),
    "seal_exists": _l("A seal is already registered. Abolish it before registering another."),
    "bad_image": _l("Choose a PNG or JPEG image of the seal impression (at most 1 MB)."),
    "payment_not_pending": _l("This payment has already been settled."),
    "payment_method": _l("Choose cash or an IC card."),
    "signing_unavailable": _l(
        "Certificates cannot be printed at the moment. Nothing was charged; please try again later."
    ),
}
PENDING_MOVE_OUT = ("submitted", "correction_requested", "ready", "arrived")
SERIAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class Refused(Exception):
    """An issuance refused for a reason the resident can act on: ``code`` (see REFUSALS)."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def refusal_message(code: str):
    message = REFUSALS.get(code, REFUSALS["unknown_kind"])
    if code == "bad_copies":
        return _l("Choose between 1 and %(max)s copies.", max=max_copies())
    return message


def fee_per_copy(kind: str) -> int:
    fees = current_app.config["CERTIFICATE_FEES"]
    if kind not in KINDS:
        raise Refused("unknown_kind")
    return int(fees[kind])


def max_copies() -> int:
    return int(current_app.config["CERTIFICATE_MAX_COPIES"])


def quote(kind: str, copies: int) -> int:
    if not isinstance(copies, int) or isinstance(copies, bool) or not 1 <= copies <= max_copies():
        raise Refused("bad_copies")
    return fee_per_copy(kind) * copies


@dataclass
class Offer:
    kind: str
    fee_per_copy: int
    max_copies: int
    members: list[tuple[int, str]] = field(default_factory=list)
    items: list[tuple[str, str]] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    refusal: str | None = None

    @property
    def title(self):
        return TITLES[self.kind]


def _status_refusal(resident: Resident) -> str | None:
    if resident is None:
        return "not_resident"
    if resident.status == "moved_out":
        return "moved_out"
    if resident.status == "deceased":
        return "deceased"
    if resident.status != "active":
        return "not_resident"
    return None


def move_out_pending(resident_id: int) -> bool:
    """A 転出届 pre-filed and not yet completed or withdrawn (portal.prefiling)."""
    from portal.prefiling.models import PreFiling

    return (
        db.session.scalar(
            select(PreFiling.id)
            .where(
                PreFiling.resident_id == resident_id,
                PreFiling.procedure_code == "moving_out",
                PreFiling.status.in_(PENDING_MOVE_OUT),
            )
            .limit(1)
        )
        is not None
    )


def registered_seal(resident_id: int) -> SealRegistration | None:
    return db.session.scalar(
        select(SealRegistration).where(
            SealRegistration.resident_id == resident_id, SealRegistration.status == "registered"
        )
    )


def tax_years(resident_id: int) -> list[int]:
    return list(
        db.session.scalars(
            select(TaxRecord.fiscal_year)
            .where(TaxRecord.resident_id == resident_id)
            .order_by(TaxRecord.fiscal_year.desc())
        )
    )


def household_members(resident: Resident) -> list[Resident]:
    if resident.household is None:
        return [resident]
    return [m for m in resident.household.members if m.status == "active"] or [resident]


def offer(resident: Resident, kind: str) -> Offer:
    """What this resident may order now; ``refusal`` is set when nothing may be ordered."""
    if kind not in KINDS:
        raise Refused("unknown_kind")
    result = Offer(kind=kind, fee_per_copy=fee_per_copy(kind), max_copies=max_copies())
    result.refusal = _status_refusal(resident)
    if result.refusal:
        return result
    if kind == "residence":
        if move_out_pending(resident.id):
            result.refusal = "move_out_pending"
            return result
        result.members = [(m.id, m.full_name) for m in household_members(resident)]
        result.items = list(ITEMS.items())  # lazy: translated when shown
    elif kind == "seal":
        if registered_seal(resident.id) is None:
            result.refusal = "no_seal"
    elif kind == "income":
        result.years = tax_years(resident.id)
        if not result.years:
            result.refusal = "no_tax_record"
    return result


# --- issuing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    id: int
    serial: str
    verify_code: str
    kind: str
    copies: int
    fee: int
    pdf: bytes


def _random(n: int) -> str:
    return "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(n))


def new_serial(kind: str, today: date) -> str:
    """R/S/I + date + 8 random characters: unguessable, and unique by the column's constraint."""
    prefix = {"residence": "R", "seal": "S", "income": "I"}[kind]
    return f"{prefix}{today:%y%m%d}-{_random(4)}-{_random(4)}"


def code_hash(serial: str, code: str) -> str:
    """The verification code is stored only as a keyed hash (HMAC-SHA256 with a key derived from
    the app's secret), so the table alone does not let anyone check a certificate."""
    key = hashlib.sha256(b"certificate-verify:" + str(current_app.config["SECRET_KEY"]).encode()).digest()
    normal = code.strip().upper().replace("-", "").replace(" ", "")
    return hmac.new(key, f"{serial}|{normal}".encode(), hashlib.sha256).hexdigest()


def verify_url(serial: str, code: str) -> str:
    base = current_app.config.get("CERTIFICATE_VERIFY_URL")
    if not base:
        origin = current_app.config.get("PUBLIC_ORIGIN")
        if origin:
            base = origin.rstrip("/") + "/verify"
        else:
            try:
                base = url_for("certificates.verify", _external=True)
            except RuntimeError:
                base = "http://127.0.0.1:5000/verify"
    return f"{base}?{urlencode({'serial': serial, 'code': code})}"


def _person_rows(person: Resident, items: set[str]) -> list[tuple[str, str]]:
    rows = [("氏名", person.full_name)]
    if "kana" in items:
        rows.append(("フリガナ", person.full_name_kana))
    rows.append(("生年月日", wareki(person.birth_date)))
    rows.append(("性別", {1: "男", 2: "女"}.get(person.sex, "—")))
    if "head_relationship" in items:
        rows.append(("続柄", _relation(person)))
    if "moved_in" in items:
        rows.append(("住民となった年月日", wareki(person.moved_in_on) if person.moved_in_on else "—"))
    return rows


RELATION_JA = {
    "head": "世帯主",
    "spouse": "配偶者",
    "child": "子",
    "parent": "父母",
    "grandchild": "孫",
    "grandparent": "祖父母",
    "sibling": "兄弟姉妹",
    "other": "同居人",
}


def _relation(person: Resident) -> str:
    """続柄 as a 住民票 prints it (夫/妻, 父/母, 祖父/祖母 by sex)."""
    male = person.sex == 1
    by_sex = {"spouse": ("夫", "妻"), "parent": ("父", "母"), "grandparent": ("祖父", "祖母")}
    if person.relationship_to_head in by_sex:
        return by_sex[person.relationship_to_head][0 if male else 1]
    return RELATION_JA.get(person.relationship_to_head, "")


def _yen(n: int) -> str:
    return f"{n:,}円"


def _document(
    resident: Resident, kind: str, *, member_ids, items, year, copies, serial, code, terminal, today
):
    city = current_app.config["CITY_NAME_JA"]
    doc = pdf_mod.Document(
        kind=kind,
        city_ja=city,
        serial=serial,
        verify_code=code,
        verify_url=verify_url(serial, code),
        issued_on=today,
        copies=copies,
        terminal=terminal,
    )
    address = resident.address.line_ja(city)
    read_ids = [resident.id]
    if kind == "residence":
        members = {m.id: m for m in household_members(resident)}
        chosen = [members[i] for i in member_ids]
        read_ids = [m.id for m in chosen]
        doc.rows = [("住所", address)]
        household = resident.household
        if "head_relationship" in items and household is not None and household.head is not None:
            doc.rows.append(("世帯主", household.head.full_name))
        for person in chosen:
            doc.people.append(_person_rows(person, items))
        doc.statement = "この写しは、住民票の原本と相違ないことを証明する。"
        doc.notes = ["個人番号・住民票コード・本籍は記載していません。"]
    elif kind == "seal":
        seal = registered_seal(resident.id)
        doc.rows = [
            ("氏名", resident.full_name),
            ("生年月日", wareki(resident.birth_date)),
            ("性別", {1: "男", 2: "女"}.get(resident.sex, "—")),
            ("住所", address),
        ]
        doc.seal_png = seal.image_png if seal else None
        doc.statement = "この写しは、登録されている印影と相違ないことを証明する。"
    else:
        record = db.session.scalar(
            select(TaxRecord).where(TaxRecord.resident_id == resident.id, TaxRecord.fiscal_year == year)
        )
        fiscal = wareki(date(year, 4, 1)).split("年")[0]
        income_year = wareki(date(year - 1, 12, 31)).split("年")[0]
        doc.rows = [
            ("年度", f"{fiscal}年度（{income_year}年分所得）"),
            ("住所", address),
            ("氏名", resident.full_name),
            ("生年月日", wareki(resident.birth_date)),
            ("収入金額", _yen(record.gross_income)),
            ("所得金額", _yen(record.income)),
            ("所得控除額合計", _yen(record.deductions)),
            ("課税標準額", _yen(record.taxable_income)),
            ("扶養人数", f"{record.dependents}人"),
            ("市民税", _yen(record.municipal_tax)),
            ("県民税", _yen(record.prefectural_tax)),
            ("合計税額", _yen(record.municipal_tax + record.prefectural_tax)),
        ]
        doc.statement = "上記のとおり相違ないことを証明する。"
    return doc, read_ids


def _check_selection(resident: Resident, kind: str, result: Offer, members, items, year):
    if kind == "residence":
        allowed = {i for i, _ in result.members}
        try:
            member_ids = list(dict.fromkeys(int(m) for m in (members or [])))
        except (TypeError, ValueError):
            raise Refused("bad_members") from None
        if not member_ids or not set(member_ids) <= allowed:
            raise Refused("bad_members")
        chosen_items = set(items or [])
        if not chosen_items <= set(ITEMS):
            raise Refused("bad_items")
        return member_ids, chosen_items, None
    if members or items:
        raise Refused("bad_items")
    if kind == "income":
        if year is None:
            year = result.years[0]
        if year not in result.years:
            raise Refused("bad_year")
        return [], set(), year
    return [], set(), None


def _actor(terminal, actor: str) -> access.Actor:
    if terminal is not None:
        return access.Actor(
            kind="terminal",
            id=terminal.code,
            role=terminal.kind,
            organisation=terminal.organisation,
            terminal_id=terminal.code,
        )
    return access.Actor(
        kind="terminal", id=actor[:64], role="kiosk", organisation=current_app.config["CITY_NAME_JA"]
    )


def issue(
    resident: Resident,
    kind: str,
    *,
    members=None,
    items=None,
    year: int | None = None,
    copies: int = 1,
    payment_id: str,
    terminal=None,
    actor: str,
    now: datetime | None = None,
) -> Issued:
    """Issue one certificate (``copies`` pages) for ``resident``; commits. Raises ``Refused``."""
    if kind not in KINDS:
        raise Refused("unknown_kind")
    result = offer(resident, kind)
    if result.refusal:
        raise Refused(result.refusal, 403)
    member_ids, chosen_items, year = _check_selection(resident, kind, result, members, items, year)
    fee = quote(kind, copies)
    try:
        payments.provider().consume(payment_id, fee)
    except payments.PaymentError as exc:
        db.session.rollback()
        raise Refused(exc.code, exc.status) from None
    today = (now or utcnow()).astimezone(TOKYO).date()
    serial, code = new_serial(kind, today), f"{_random(4)}-{_random(4)}"
    terminal_code = terminal.code if terminal is not None else None
    doc, read_ids = _document(
        resident,
        kind,
        member_ids=member_ids,
        items=chosen_items,
        year=year,
        copies=copies,
        serial=serial,
        code=code,
        terminal=terminal_code,
        today=today,
    )
    city = current_app.config["CITY_NAME_JA"]
    try:
        signed = sign.sign_pdf(pdf_mod.render(doc), city=city)
    except Exception:
        db.session.rollback()
        current_app.logger.exception("certificate signing failed (kind %s)", kind)
        raise Refused("signing_unavailable", 503) from None
    row = IssuedCertificate(
        serial=serial,
        verify_code_hash=code_hash(serial, code),
        resident_id=resident.id,
        kind=kind,
        copies=copies,
        fee=fee,
        issued_on=today,
        terminal_code=terminal_code,
        actor=actor[:64],
        payment_id=str(payment_id),
        pdf_sha256=hashlib.sha256(signed).hexdigest(),
    )
    db.session.add(row)
    db.session.flush()
    items_read = ["basic4", "household", "certificate"] if kind == "residence" else ["basic4", "certificate"]
    # Last, so the access-record lock is held only for the commit, not while signing.
    access.record_many(
        _actor(terminal, actor),
        resident_ids=read_ids,
        data_items=items_read,
        purpose=f"certificate_kiosk:{kind}",
    )
    db.session.commit()
    current_app.logger.info("certificate issued kind=%s serial=%s copies=%s", kind, serial, copies)
    return Issued(row.id, serial, code, kind, copies, fee, signed)


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    status: str  # valid | revoked | unknown
    kind: str | None = None
    issued_on: date | None = None

    def as_json(self) -> dict:
        body: dict = {"status": self.status}
        if self.status != "unknown":
            body |= {"kind": self.kind, "issued_on": self.issued_on.isoformat() if self.issued_on else None}
        return body


def verify(serial: str, code: str) -> Verification:
    """valid / revoked with the kind and issue date — or unknown, for a wrong serial and a wrong
    code alike (no oracle for which serials exist)."""
    serial = (serial or "").strip().upper()
    if not serial or not code or len(serial) > 24 or len(code) > 20:
        return Verification("unknown")
    row = db.session.scalar(select(IssuedCertificate).where(IssuedCertificate.serial == serial))
    expected = row.verify_code_hash if row else code_hash(serial, "x")
    if row is None or not hmac.compare_digest(expected, code_hash(serial, code)):
        return Verification("unknown")
    return Verification(row.status, row.kind, row.issued_on)


def revoke(serial: str, reason: str) -> None:
    row = db.session.scalar(select(IssuedCertificate).where(IssuedCertificate.serial == serial))
    if row is None:
        raise Refused("unknown_certificate", 404)
    row.status, row.revoked_at, row.revoked_reason = "revoked", utcnow(), reason[:64]
    db.session.commit()


# --- seal registration at the counter (印鑑登録・廃止) --------------------------------------------


def register_seal(resident: Resident, image_png: bytes, *, actor: str) -> SealRegistration:
    """Register a seal (one at a time: abolish the old one first); the counter checked identity."""
    if resident.status != "active":
        raise Refused(_status_refusal(resident) or "not_resident", 403)
    if registered_seal(resident.id) is not None:
        raise Refused("seal_exists", 409)
    count = db.session.scalar(
        select(db.func.count())
        .select_from(SealRegistration)
        .where(SealRegistration.resident_id == resident.id)
    )
    seal = SealRegistration(
        resident_id=resident.id,
        registration_no=f"{resident.ward.code}-{resident.id:07d}-{(count or 0) + 1}",
        image_png=image_png,
        status="registered",
        registered_on=utcnow().astimezone(TOKYO).date(),
        registered_by=actor[:64],
    )
    db.session.add(seal)
    db.session.flush()
    return seal


def abolish_seal(resident: Resident, *, actor: str) -> SealRegistration:
    seal = registered_seal(resident.id)
    if seal is None:
        raise Refused("no_seal", 404)
    seal.status = "abolished"
    seal.abolished_on = utcnow().astimezone(TOKYO).date()
    seal.abolished_by = actor[:64]
    db.session.flush()
    return seal
