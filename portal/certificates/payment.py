"""Paying a certificate fee at a kiosk. ``provider()`` is the configured ``PaymentProvider``; the
local cash / IC simulator is the default, and a real provider (a coin unit, an IC payment
gateway) plugs in behind the same interface by naming its class in CERTIFICATE_PAYMENT_PROVIDER.

States: pending → paid | failed | cancelled; a paid payment may still be cancelled (refunded)
until an issuance consumes it, which happens once (``consume``, an atomic UPDATE)."""

from __future__ import annotations

import importlib
import secrets
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select, update

from portal.certificates.models import PAYMENT_METHODS, KioskPayment
from portal.extensions import db
from portal.models_base import utcnow


class PaymentError(Exception):
    """A refused payment operation; ``code`` for the page and the API."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


@dataclass(frozen=True)
class Payment:
    id: str
    amount: int
    method: str
    status: str  # pending | paid | failed | cancelled
    consumed: bool = False


def _view(row: KioskPayment) -> Payment:
    return Payment(row.id, row.amount, row.method, row.status, row.consumed_at is not None)


class PaymentProvider:
    """The interface, with the bookkeeping every provider shares (a row per payment). A real
    provider overrides ``start`` (ask the device or gateway) and calls ``settle`` from its
    callback or poll."""

    name = "base"

    def start(self, amount: int, method: str, reference: str) -> Payment:
        if method not in PAYMENT_METHODS:
            raise PaymentError("payment_method")
        if not isinstance(amount, int) or amount <= 0:
            raise PaymentError("payment_amount")
        row = KioskPayment(
            id="pay_" + secrets.token_urlsafe(18),
            provider=self.name,
            amount=amount,
            method=method,
            reference=str(reference)[:64],
            status="pending",
        )
        db.session.add(row)
        db.session.commit()
        return _view(row)

    def _row(self, payment_id: str, *, lock: bool = False) -> KioskPayment:
        query = select(KioskPayment).where(KioskPayment.id == str(payment_id))
        if lock:
            query = query.with_for_update()
        row = db.session.scalar(query)
        if row is None or row.provider != self.name:
            raise PaymentError("payment_unknown", 404)
        return row

    def status(self, payment_id: str) -> Payment:
        return _view(self._row(payment_id))

    def settle(self, payment_id: str, paid: bool = True) -> Payment:
        """The device or gateway reports the money in (or a failure)."""
        row = self._row(payment_id, lock=True)
        if row.status != "pending":
            db.session.rollback()
            raise PaymentError("payment_not_pending", 409)
        row.status = "paid" if paid else "failed"
        row.settled_at = utcnow()
        db.session.commit()
        return _view(row)

    def cancel(self, payment_id: str) -> Payment:
        """Cancel a pending payment, or refund a paid one an issuance has not used."""
        row = self._row(payment_id, lock=True)
        if row.consumed_at is not None:
            db.session.rollback()
            raise PaymentError("payment_used", 409)
        if row.status in ("pending", "paid"):
            row.status = "cancelled"
            row.settled_at = row.settled_at or utcnow()
        db.session.commit()
        return _view(row)

    def consume(self, payment_id: str, amount: int) -> None:
        """Take a paid payment of exactly ``amount`` for one issuance, in the caller's
        transaction; a second consumer (any process) updates no row and is refused."""
        done = db.session.execute(
            update(KioskPayment)
            .where(
                KioskPayment.id == str(payment_id),
                KioskPayment.provider == self.name,
                KioskPayment.status == "paid",
                KioskPayment.consumed_at.is_(None),
                KioskPayment.amount == amount,
            )
            .values(consumed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if done.rowcount == 1:
            return
        row = db.session.get(KioskPayment, str(payment_id))
        if row is None or row.provider != self.name:
            raise PaymentError("payment_unknown", 404)
        if row.consumed_at is not None:
            raise PaymentError("payment_used", 409)
        if row.status != "paid":
            raise PaymentError("unpaid", 402)
        raise PaymentError("payment_amount", 409)


class SimulatorProvider(PaymentProvider):
    """Local cash / IC simulator: settles when its endpoint (``POST /kiosk/payments/sim/<id>/pay``)
    is called — the kiosk page's "insert coins" / "touch IC" buttons in development and tests."""

    name = "simulator"


def provider() -> PaymentProvider:
    spec = current_app.config.get("CERTIFICATE_PAYMENT_PROVIDER", "simulator")
    if spec == "simulator":
        return SimulatorProvider()
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)()
