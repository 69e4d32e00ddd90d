"""Issuing certificates through the real service: eligibility, selection, the payment consumed
once, the PDF's content (pdftotext), its signature (pdfsig and pyHanko's validator against the
city CA), the stored row and the access records. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from flask_babel import force_locale
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import select

from portal.access.models import AccessRecord
from portal.access.service import verify_chain
from portal.certificates import payment, service
from portal.certificates.models import IssuedCertificate, KioskPayment
from portal.i18n import wareki
from portal.prefiling.models import PreFiling
from portal.vault import service as vault
from tests.factories import fake_number, make_account, make_resident

from .conftest import paid, pdfsig


def _issue(resident, kind, **kwargs):
    copies = kwargs.pop("copies", 1)
    return service.issue(
        resident,
        kind,
        copies=copies,
        payment_id=paid(service.quote(kind, copies)),
        actor="kiosk:test",
        **kwargs,
    )


def _validate(pdf: bytes, ca_pem: bytes):
    """pyHanko's validator against the city CA. It runs its own event loop, so on a thread: the
    e2e tests' Playwright keeps one running on this worker's main thread."""

    def run():
        _, _, der = pem.unarmor(ca_pem)
        context = ValidationContext(trust_roots=[asn1_x509.Certificate.load(der)])
        reader = PdfFileReader(io.BytesIO(pdf))
        assert len(reader.embedded_signatures) == 1
        return validate_pdf_signature(reader.embedded_signatures[0], context)

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


# --- eligibility -----------------------------------------------------------------------------------


def test_offers_for_a_resident_with_everything(app, family):
    head, spouse, child = family
    with app.test_request_context():
        residence = service.offer(head, "residence")
        assert residence.refusal is None and residence.fee_per_copy == 200 and residence.max_copies == 10
        assert residence.members == [
            (head.id, "山田 太郎"),
            (spouse.id, "山田 花子"),
            (child.id, "山田 一郎"),
        ]
        assert [code for code, _ in residence.items] == ["head_relationship", "moved_in", "kana"]
        assert "individual_number" not in dict(residence.items)
        assert str(residence.title) == "住民票の写し" or "住民票" in str(residence.title)
        assert service.offer(head, "seal").refusal is None
        assert service.offer(head, "income").years == [2026, 2025]
        assert service.quote("residence", 3) == 600


def test_refusals(app, db, family):
    head, spouse, _ = family
    assert service.offer(spouse, "seal").refusal == "no_seal"
    assert service.offer(spouse, "income").refusal == "no_tax_record"
    moved = make_resident(family="転出", given="済", status="moved_out", moved_out_on=date(2026, 1, 5))
    dead = make_resident(family="故人", given="様", status="deceased")
    for kind in service.KINDS:
        assert service.offer(moved, kind).refusal == "moved_out"
        assert service.offer(dead, kind).refusal == "deceased"
    # a pre-filed 転出届 in progress stops the 住民票, not the other certificates
    account = make_account(resident=head)
    filing = PreFiling(
        resident_id=head.id,
        account_id=account.id,
        procedure_code="moving_out",
        procedure_version=1,
        status="submitted",
    )
    db.session.add(filing)
    db.session.commit()
    assert service.offer(head, "residence").refusal == "move_out_pending"
    assert service.offer(head, "seal").refusal is None
    with pytest.raises(service.Refused) as refused:
        _issue(head, "residence", members=[head.id])
    assert refused.value.code == "move_out_pending"
    filing.status = "withdrawn"
    db.session.commit()
    assert service.offer(head, "residence").refusal is None
    # an abolished seal is no seal
    seal = service.registered_seal(head.id)
    seal.status, seal.abolished_on = "abolished", date(2026, 11, 1)
    db.session.commit()
    assert service.offer(head, "seal").refusal == "no_seal"
    with app.test_request_context(), force_locale("en"):
        for code in ("moved_out", "move_out_pending", "no_seal", "no_tax_record", "deceased", "not_resident"):
            assert "counter" in str(service.refusal_message(code))  # says where to go next
    with app.test_request_context(), force_locale("ja"):
        for code in ("moved_out", "move_out_pending", "no_seal", "no_tax_record", "deceased", "not_resident"):
            assert "窓口" in str(service.refusal_message(code))


def test_bad_selections_are_refused_and_the_payment_kept(app, db, family):
    head, _, _ = family
    stranger = make_resident(family="他人", given="さん")
    db.session.commit()
    pay = paid(200)
    for kwargs, code in (
        ({"members": [stranger.id]}, "bad_members"),
        ({"members": []}, "bad_members"),
        ({"members": ["x"]}, "bad_members"),
        ({"members": [head.id], "items": ["individual_number"]}, "bad_items"),
    ):
        with pytest.raises(service.Refused) as refused:
            service.issue(head, "residence", payment_id=pay, actor="kiosk:test", **kwargs)
        assert refused.value.code == code
    with pytest.raises(service.Refused) as refused:
        service.issue(head, "income", year=1999, payment_id=pay, actor="kiosk:test")
    assert refused.value.code == "bad_year"
    with pytest.raises(service.Refused) as refused:
        service.issue(head, "residence", members=[head.id], copies=11, payment_id=pay, actor="kiosk:test")
    assert refused.value.code == "bad_copies"
    assert payment.provider().status(pay).status == "paid"
    assert db.session.get(KioskPayment, pay).consumed_at is None
    assert service.issue(head, "residence", members=[head.id], payment_id=pay, actor="kiosk:test").serial


# --- payment ---------------------------------------------------------------------------------------


def test_payment_states(app, db, family):
    head = family[0]
    provider = payment.provider()
    pending = provider.start(200, "ic", "kiosk-1")
    assert (pending.status, pending.amount, pending.method) == ("pending", 200, "ic")
    with pytest.raises(service.Refused) as refused:  # unpaid → refused
        service.issue(head, "seal", payment_id=pending.id, actor="kiosk:test")
    assert refused.value.code == "unpaid"
    assert provider.settle(pending.id).status == "paid"
    with pytest.raises(payment.PaymentError):
        provider.settle(pending.id)  # settles once
    first = service.issue(head, "seal", payment_id=pending.id, actor="kiosk:test")
    with pytest.raises(service.Refused) as refused:  # paid once → used once
        service.issue(head, "seal", payment_id=pending.id, actor="kiosk:test")
    assert refused.value.code == "payment_used"
    with pytest.raises(payment.PaymentError) as used:
        provider.cancel(pending.id)  # no refund after the certificate was printed
    assert used.value.code == "payment_used"
    assert db.session.scalar(
        select(IssuedCertificate).where(IssuedCertificate.payment_id == pending.id)
    ).serial == (first.serial)
    # failed and cancelled payments pay for nothing; an amount that does not match is refused
    failed = provider.start(200, "ic", "kiosk-1")
    assert provider.settle(failed.id, paid=False).status == "failed"
    cancelled = provider.start(200, "cash", "kiosk-1")
    assert provider.cancel(cancelled.id).status == "cancelled"
    refunded = paid(200)
    assert provider.cancel(refunded).status == "cancelled"
    for pid, code in (
        (failed.id, "unpaid"),
        (cancelled.id, "unpaid"),
        (refunded, "unpaid"),
        ("pay_nope", "payment_unknown"),
    ):
        with pytest.raises(service.Refused) as refused:
            service.issue(head, "seal", payment_id=pid, actor="kiosk:test")
        assert refused.value.code == code
    short = paid(200)
    with pytest.raises(service.Refused) as refused:
        service.issue(head, "seal", copies=2, payment_id=short, actor="kiosk:test")
    assert refused.value.code == "payment_amount"
    for bad in ((0, "cash"), (200, "bitcoin")):
        with pytest.raises(payment.PaymentError):
            provider.start(*bad, "kiosk-1")
    assert (
        db.session.scalar(select(IssuedCertificate.id).where(IssuedCertificate.payment_id == short)) is None
    )


def test_simulator_endpoint(app, client, db):
    provider = payment.provider()
    started = provider.start(400, "cash", "kiosk-2")
    answer = client.post(f"/kiosk/payments/sim/{started.id}/pay", json={})
    assert answer.status_code == 200
    assert answer.get_json() == {"id": started.id, "amount": 400, "method": "cash", "status": "paid"}
    again = client.post(f"/kiosk/payments/sim/{started.id}/pay", json={})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "payment_not_pending"
    declined = provider.start(200, "ic", "kiosk-2")
    answer = client.post(f"/kiosk/payments/sim/{declined.id}/pay", json={"outcome": "failed"})
    assert answer.get_json()["status"] == "failed"
    assert client.post("/kiosk/payments/sim/pay_unknown/pay", json={}).status_code == 404
    bad = client.post(
        f"/kiosk/payments/sim/{provider.start(200, 'ic', 'k').id}/pay", json={"outcome": "free"}
    )
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_request"
    app.config["CERTIFICATE_PAYMENT_SIMULATOR"] = False  # production's default
    assert client.post(f"/kiosk/payments/sim/{declined.id}/pay", json={}).status_code == 404


# --- the PDF ---------------------------------------------------------------------------------------


def test_residence_certificate_content_signature_and_records(app, db, family, read_pdf, city_hsm, tmp_path):
    head, _, child = family
    vault.store(head.id, fake_number(4242))
    db.session.commit()
    issued = _issue(
        head, "residence", members=[head.id, child.id], items=["head_relationship", "kana"], copies=2
    )
    text = read_pdf(issued.pdf)
    assert "住民票の写し" in text and "山田 太郎" in text and "山田 一郎" in text
    assert "山田 花子" not in text  # not chosen
    assert "ヤマダ タロウ" in text and "世帯主" in text and "子" in text
    assert "住民となった年月日" not in text  # item not chosen
    assert "千葉県" not in text and "みなと市" in text and "本町1丁目1番1号" in text
    assert wareki(service.utcnow().astimezone(service.TOKYO).date()) in text
    assert issued.serial in text and issued.verify_code in text
    assert text.count("（1／2通）") == 1 and text.count("（2／2通）") == 1
    assert fake_number(4242) not in text.replace(" ", "")  # never the Individual Number
    # the signature: pdfsig (cryptographically valid; the city CA is not in poppler's NSS store)
    report = pdfsig(issued.pdf, tmp_path / "residence.pdf")
    assert "Signature Validation: Signature is Valid." in report
    assert "Total document signed" in report and "SHA-256" in report
    assert "Minato City Mayor" in report
    # pyHanko against the city CA: intact, valid, trusted, with nothing added after signing
    status = _validate(issued.pdf, city_hsm.ca_pem)
    assert status.intact and status.valid and status.trusted and status.bottom_line
    assert status.coverage.name == "ENTIRE_FILE"
    # the stored row: no name, a hash of the code, the digest of the signed PDF
    row = db.session.scalar(select(IssuedCertificate).where(IssuedCertificate.serial == issued.serial))
    assert row.resident_id == head.id and row.kind == "residence" and row.copies == 2 and row.fee == 400
    assert row.pdf_sha256 == hashlib.sha256(issued.pdf).hexdigest()
    assert issued.verify_code not in row.verify_code_hash and len(row.verify_code_hash) == 64
    # an access record for each person whose data was printed, and the chain still holds
    records = db.session.scalars(
        select(AccessRecord).where(AccessRecord.purpose == "certificate_kiosk:residence")
    )
    assert sorted(r.resident_id for r in records) == sorted([head.id, child.id])
    assert verify_chain().ok


def test_tampering_breaks_the_signature(app, family, city_hsm, tmp_path):
    issued = _issue(family[0], "seal")
    raw = bytearray(issued.pdf)
    at = issued.pdf.index(b"stream", 2000) + 20  # a byte inside the first content stream
    raw[at] ^= 0x01
    report = pdfsig(bytes(raw), tmp_path / "tampered.pdf")
    assert "Signature is Valid." not in report
    status = _validate(bytes(raw), city_hsm.ca_pem)
    assert not status.intact and not status.bottom_line


def test_seal_and_income_certificates(app, db, family, read_pdf, city_hsm, tmp_path):
    head = family[0]
    seal = _issue(head, "seal")
    text = read_pdf(seal.pdf)
    assert "印鑑登録証明書" in text and "山田 太郎" in text and "印影" in text
    assert "登録されている印影と相違ない" in text
    assert "Signature is Valid." in pdfsig(seal.pdf, tmp_path / "seal.pdf")
    income = _issue(head, "income", year=2025)
    text = read_pdf(income.pdf)
    assert "所得・課税証明書" in text and "令和7年度" in text and "令和6年分所得" in text
    assert "4,200,000円" in text
    assert _validate(income.pdf, city_hsm.ca_pem).bottom_line
    latest = _issue(head, "income")  # no year: the latest on record
    assert "令和8年度" in read_pdf(latest.pdf)
    kinds = db.session.scalars(select(AccessRecord.purpose).where(AccessRecord.resident_id == head.id)).all()
    assert kinds.count("certificate_kiosk:income") == 2 and "certificate_kiosk:seal" in kinds


def test_terminal_is_recorded(app, db, family):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from portal.cardid import service as cardid

    pem_key = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    terminal = cardid.add_terminal("kiosk-07", "kiosk", "キオスク7", "中央区役所", pem_key)
    db.session.commit()
    issued = _issue(family[0], "seal", terminal=terminal)
    row = db.session.get(IssuedCertificate, issued.id)
    assert row.terminal_code == "kiosk-07"
    record = db.session.scalar(select(AccessRecord).where(AccessRecord.purpose == "certificate_kiosk:seal"))
    assert (record.actor_kind, record.actor_id, record.terminal_id) == ("terminal", "kiosk-07", "kiosk-07")


def test_signing_failure_charges_nothing(app, db, family, monkeypatch):
    from portal.certificates import sign

    def broken(*args, **kwargs):
        raise RuntimeError("token removed")

    monkeypatch.setattr(sign, "sign_pdf", broken)
    pay = paid(200)
    with pytest.raises(service.Refused) as refused:
        service.issue(family[0], "seal", payment_id=pay, actor="kiosk:test")
    assert refused.value.code == "signing_unavailable"
    assert db.session.get(KioskPayment, pay).consumed_at is None
    assert db.session.scalar(select(IssuedCertificate.id)) is None


def test_key_never_leaves_the_token(city_hsm):
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    from portal.certificates import hsm

    with hsm.handle(city_hsm).session() as session:
        key = session.get_key(ObjectClass.PRIVATE_KEY, KeyType.RSA, label=city_hsm.key_label)
        assert key[Attribute.SENSITIVE] is True and key[Attribute.EXTRACTABLE] is False
        with pytest.raises(pkcs11.PKCS11Error):
            key[Attribute.PRIVATE_EXPONENT]
