"""Signing a certificate PDF with the city's key in the HSM: pyHanko's PKCS#11 signer on a pooled
session, SHA-256, the city CA embedded so any validator can build the chain to it."""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from flask import current_app
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.pkcs11 import PKCS11Signer

from portal.certificates import hsm

FIELD = "CitySeal"


class _LockedKey:
    """The key handle, signing only under the process's PKCS#11 lock (see hsm.P11_LOCK)."""

    def __init__(self, key) -> None:
        self._key = key

    def sign(self, *args, **kwargs):
        with hsm.P11_LOCK:
            return self._key.sign(*args, **kwargs)


class CitySigner(PKCS11Signer):
    """pyHanko's PKCS#11 signer with every call into the module serialised."""

    def _load_objects(self):
        if self._loaded:
            return
        with hsm.P11_LOCK:
            super()._load_objects()
        self._key_handle = _LockedKey(self._key_handle)


def _asn1(pem_bytes: bytes) -> asn1_x509.Certificate:
    _, _, der = pem.unarmor(pem_bytes)
    return asn1_x509.Certificate.load(der)


@lru_cache(maxsize=4)
def _certs(signer_pem: bytes, ca_pem: bytes) -> tuple[asn1_x509.Certificate, asn1_x509.Certificate]:
    return _asn1(signer_pem), _asn1(ca_pem)


def material() -> hsm.Material:
    """The configured HSM; outside production a missing token is set up on first use."""
    config = current_app.config
    directory = hsm_directory(config)
    options = {
        "module": config["CERTIFICATE_HSM_MODULE"],
        "token_label": config["CERTIFICATE_HSM_TOKEN"],
        "key_label": config["CERTIFICATE_HSM_KEY"],
    }
    try:
        return hsm.load(directory, pin=config.get("CERTIFICATE_HSM_PIN"), **options)
    except hsm.HsmError:
        if config.get("NAME") == "production":
            raise
        return hsm.init(directory, **options)


def hsm_directory(config) -> str:
    directory = config.get("CERTIFICATE_HSM_DIR")
    if directory:
        return directory
    return hsm.process_test_directory()


def sign_pdf(pdf: bytes, *, city: str, location: str | None = None) -> bytes:
    """pyHanko's signing runs its own event loop (asyncio.run); a caller already inside one (a
    Playwright test, an async server) gets the signature made on a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _sign(pdf, city=city, location=location, m=material())
    m = material()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_sign, pdf, city=city, location=location, m=m).result()


def _sign(pdf: bytes, *, city: str, location: str | None, m: hsm.Material) -> bytes:
    signer_cert, ca_cert = _certs(m.signer_pem, m.ca_pem)
    meta = signers.PdfSignatureMetadata(
        field_name=FIELD,
        md_algorithm="sha256",
        reason=f"{city}長による証明",
        location=location or city,
        name=f"{city}長",
    )
    with hsm.handle(m).session() as session:
        signer = CitySigner(
            session,
            signing_cert=signer_cert,
            ca_chain=[ca_cert],
            key_label=m.key_label,
            embed_roots=True,
        )
        out = signers.sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(pdf)),
            meta,
            signer=signer,
            new_field_spec=fields.SigFieldSpec(FIELD),
        )
    return out.getvalue()
