"""Register tables. A resident is keyed by the internal address number (宛名番号), never by the
Individual Number, which lives apart in the vault (個人番号分離型)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db

# ISO 5218 sex codes, as on the card.
SEX_CODES = {1: "male", 2: "female", 9: "not_applicable"}
STATUSES = ("active", "moved_out", "deceased")
# 続柄 (relationship to the head of household).
RELATIONSHIPS = ("head", "spouse", "child", "parent", "grandchild", "grandparent", "sibling", "other")
# 要介護度: support levels 1-2, care levels 1-5.
CARE_LEVELS = ("support1", "support2", "care1", "care2", "care3", "care4", "care5")
# 障害者手帳: physical, rehabilitation (intellectual), mental health.
DISABILITY_CERTIFICATES = ("physical", "intellectual", "mental")


class Ward(db.Model):
    """区 (administrative ward)."""

    __tablename__ = "wards"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name_ja: Mapped[str] = mapped_column(String(40))
    name_en: Mapped[str] = mapped_column(String(80))


class Address(db.Model):
    """住所: one place in the city; households live at addresses."""

    __tablename__ = "addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    ward_id: Mapped[int] = mapped_column(ForeignKey("wards.id"), index=True)
    postal_code: Mapped[str] = mapped_column(String(8))
    town: Mapped[str] = mapped_column(String(80))  # 町名・丁目
    block: Mapped[str] = mapped_column(String(40))  # 番地
    building: Mapped[str | None] = mapped_column(String(120))
    ward: Mapped[Ward] = relationship()

    def line_ja(self, city: str) -> str:
        parts = [city, self.ward.name_ja, self.town, self.block]
        text = "".join(parts)
        return f"{text} {self.building}" if self.building else text


class Household(db.Model):
    """世帯. The head (世帯主) is one of its members."""

    __tablename__ = "households"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(12), unique=True)  # 世帯番号
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id"), index=True)
    head_id: Mapped[int | None] = mapped_column(
        ForeignKey("residents.id", use_alter=True, name="fk_households_head_id_residents")
    )
    address: Mapped[Address] = relationship()
    members: Mapped[list[Resident]] = relationship(
        back_populates="household", foreign_keys="Resident.household_id", order_by="Resident.id"
    )
    head: Mapped[Resident | None] = relationship(foreign_keys=[head_id], post_update=True)


class Resident(db.Model):
    """住民: a person on the register (current or former), keyed by 宛名番号."""

    __tablename__ = "residents"
    __table_args__ = (
        CheckConstraint("sex IN (1, 2, 9)", name="sex_iso5218"),
        CheckConstraint("status IN ('active', 'moved_out', 'deceased')", name="status_known"),
        Index("ix_residents_name_search", "name_search"),
        Index("ix_residents_birth_date", "birth_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    atena_no: Mapped[str] = mapped_column(String(15), unique=True)  # 宛名番号
    family_name: Mapped[str] = mapped_column(String(60))
    given_name: Mapped[str] = mapped_column(String(60))
    family_name_kana: Mapped[str] = mapped_column(String(120))
    given_name_kana: Mapped[str] = mapped_column(String(120))
    # Normalised kanji and kana names (NFKC, katakana→hiragana, no spaces) for search.
    name_search: Mapped[str] = mapped_column(String(400))
    birth_date: Mapped[date] = mapped_column(Date)
    sex: Mapped[int] = mapped_column(SmallInteger)
    ward_id: Mapped[int] = mapped_column(ForeignKey("wards.id"), index=True)
    address_id: Mapped[int] = mapped_column(ForeignKey("addresses.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    relationship_to_head: Mapped[str] = mapped_column(String(20), default="head")
    status: Mapped[str] = mapped_column(String(12), default="active", index=True)
    moved_in_on: Mapped[date | None] = mapped_column(Date)
    moved_out_on: Mapped[date | None] = mapped_column(Date)
    deceased_on: Mapped[date | None] = mapped_column(Date)
    # Attributes later services target on.
    pregnancy_due_on: Mapped[date | None] = mapped_column(Date)
    care_level: Mapped[str | None] = mapped_column(String(12))
    disability_certificate: Mapped[str | None] = mapped_column(String(16))
    disability_grade: Mapped[int | None] = mapped_column(Integer)

    ward: Mapped[Ward] = relationship()
    address: Mapped[Address] = relationship()
    household: Mapped[Household | None] = relationship(back_populates="members", foreign_keys=[household_id])

    @property
    def full_name(self) -> str:
        return f"{self.family_name} {self.given_name}"

    @property
    def full_name_kana(self) -> str:
        return f"{self.family_name_kana} {self.given_name_kana}"

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years

    def age_in_months_on(self, day: date) -> int:
        months = (day.year - self.birth_date.year) * 12 + day.month - self.birth_date.month
        if day.day < self.birth_date.day:
            months -= 1
        return months
