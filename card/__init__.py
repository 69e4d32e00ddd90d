"""Framework-free library for the Individual Number Card (マイナンバーカード).

Transports (:mod:`card.transport`, :mod:`card.pcsc`), the JPKI and text-input-support applications
(:mod:`card.session`), the PKCS#11 path (:mod:`card.pkcs11`), server-side verification
(:mod:`card.verify`), the virtual card (:mod:`card.sim`) and the CLI (``python -m card``).
Facts about the card: ``shared/CARD.md``.
"""

from card.errors import CardError
from card.ids import IndividualNumber
from card.models import Basic4
from card.pin import PinKind
from card.session import CardSession, open_card

__all__ = [
    "Basic4",
    "CardError",
    "CardSession",
    "IndividualNumber",
    "PinKind",
    "open_card",
]
