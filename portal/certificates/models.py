"""Tables for certificates: the data they certify (seal registration, income and tax records),
payments at a kiosk, and a row per issued certificate (no personal data beyond what verifies it)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models_base import UTCDateTime, utcnow
from portal.registry.models import Resident

KINDS = ("residence", "seal", "income")
SEAL_STATUSES = ("registered", "abolished")
PAYMENT_STATUSES = ("pending", "paid", "failed", "cancelled")
PAYMENT_METHODS = ("cash", "ic")
CERTIFICATE_STATUSES = ("valid", "revoked")


class SealRegistration(db.Model):
    """印鑑登録: a resident's registered seal. At most one registered seal per resident at a time
    (a partial unique index); an abolished registration (廃止) stays for the record."""

    __tablename__ = "seal_registrations"
    __table_args__ = (
        CheckConstraint("status IN ('registered', 'abolished')", name="status_known"),
        Index(
            "uq_seal_registrations_one_registered",
            "resident_id",
            unique=True,
            sqlite_where=db.text("status = 'registered'"),
            postgresql_where=db.text("status = 'registered'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    registration_no: Mapped[str] = mapped_column(String(16), unique=True)  # 印鑑登録番号
    image_png: Mapped[bytes] = mapped_column(LargeBinary)  # the seal's impression (印影)
    status: Mapped[str] = mapped_column(String(12), default="registered")
    registered_on: Mapped[date] = mapped_column(Date)
    abolished_on: Mapped[date | None] = mapped_column(Date)
    registered_by: Mapped[str] = mapped_column(String(64))
    abolished_by: Mapped[str | None] = mapped_column(String(64))

    resident: Mapped[Resident] = relationship()


class TaxRecord(db.Model):
    """所得・課税: one fiscal year's (年度) income and resident taxes, as assessed on the previous
    calendar year's income."""

    __tablename__ = "tax_records"
    __table_args__ = (UniqueConstraint("resident_id", "fiscal_year", name="uq_tax_records_resident_year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    fiscal_year: Mapped[int] = mapped_column(Integer)  # 年度 (Western year)
    gross_income: Mapped[int] = mapped_column(Integer)  # 収入金額, yen
    income: Mapped[int] = mapped_column(Integer)  # 所得金額, yen
    deductions: Mapped[int] = mapped_column(Integer)  # 所得控除額合計
    taxable_income: Mapped[int] = mapped_column(Integer)  # 課税標準額
    municipal_tax: Mapped[int] = mapped_column(Integer)  # 市民税
    prefectural_tax: Mapped[int] = mapped_column(Integer)  # 県民税
    dependents: Mapped[int] = mapped_column(Integer, default=0)  # 扶養人数

    resident: Mapped[Resident] = relationship()


class KioskPayment(db.Model):
    """A fee paid at a kiosk. ``consumed_at`` is set once, by the issuance it paid for."""

    __tablename__ = "certificate_payments"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'paid', 'failed', 'cancelled')", name="status_known"),
        CheckConstraint("method IN ('cash', 'ic')", name="method_known"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(8))
    reference: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IssuedCertificate(db.Model):
    """One issuance (all its copies): what /verify answers from. Holds no name or address — the
    resident id, the kind, the SHA-256 of the signed PDF and a hash of the verification code."""

    __tablename__ = "issued_certificates"
    __table_args__ = (
        CheckConstraint("kind IN ('residence', 'seal', 'income')", name="kind_known"),
        CheckConstraint("status IN ('valid', 'revoked')", name="status_known"),
        Index("ix_issued_certificates_issued_at", "issued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(24), unique=True)
    verify_code_hash: Mapped[str] = mapped_column(String(64))
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    copies: Mapped[int] = mapped_column(Integer)
    fee: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_on: Mapped[date] = mapped_column(Date)  # the date printed (Japan time)
    terminal_code: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("certificate_payments.id"), unique=True)
    pdf_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default="valid")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
