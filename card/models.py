"""Values read from the card or its certificates."""

from __future__ import annotations

from dataclasses import dataclass

SEX_LABELS = {"1": "male", "2": "female", "9": "not applicable", "0": "unknown"}


@dataclass(frozen=True, slots=True)
class Basic4:
    """基本4情報: name (氏名), address (住所), birth date (生年月日, ``YYYYMMDD``), sex (性別, ISO 5218)."""

    name: str
    address: str
    birth_date: str
    sex: str

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "address": self.address,
            "birth_date": self.birth_date,
            "sex": self.sex,
        }


@dataclass(frozen=True, slots=True)
class PinStatus:
    kind: str
    tries_left: int
    max_tries: int

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0
