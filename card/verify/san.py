"""Basic 4 info (基本4情報) from a JPKI signature certificate's subjectAltName otherNames."""

from __future__ import annotations

from asn1crypto import core
from cryptography import x509

from card.models import Basic4

OID_NAME = "1.2.392.200149.8.5.5.1"
OID_SEX = "1.2.392.200149.8.5.5.3"
OID_BIRTH = "1.2.392.200149.8.5.5.4"
OID_ADDRESS = "1.2.392.200149.8.5.5.5"


def _string(der: bytes) -> str:
    value = core.load(der)
    if isinstance(value, core.Any):
        value = value.parsed
    if isinstance(value, core.AbstractString):
        return str(value.native)
    if isinstance(value, core.OctetString):
        return bytes(value.native).decode("utf-8")
    raise ValueError("otherName value is not a string")


def basic4_from_certificate(cert: x509.Certificate) -> Basic4 | None:
    """The basic 4 info, or ``None`` if the certificate carries none (an auth certificate)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    values: dict[str, str] = {}
    for other in san.get_values_for_type(x509.OtherName):
        oid = other.type_id.dotted_string
        if oid in (OID_NAME, OID_SEX, OID_BIRTH, OID_ADDRESS):
            values[oid] = _string(other.value)
    if not values:
        return None
    if set(values) != {OID_NAME, OID_SEX, OID_BIRTH, OID_ADDRESS}:
        raise ValueError("incomplete basic 4 info in subjectAltName")
    return Basic4(
        name=values[OID_NAME], address=values[OID_ADDRESS], birth_date=values[OID_BIRTH], sex=values[OID_SEX]
    )
