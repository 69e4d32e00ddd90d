"""Server-side verification (検証) of Individual Number Card certificates and signatures.

Imports nothing from Flask; the server calls :func:`verify_signature` with the certificate and the
signature a terminal posted, the configured :class:`TrustStore` and a revocation checker.
"""

from card.verify.core import VerifiedCertificate, verify_certificate, verify_signature
from card.verify.errors import REASONS, VerificationError
from card.verify.revocation import AllOf, CrlIndex, OcspChecker, RevocationChecker, load_crl
from card.verify.trust import TrustStore

__all__ = [
    "REASONS",
    "AllOf",
    "CrlIndex",
    "OcspChecker",
    "RevocationChecker",
    "TrustStore",
    "VerificationError",
    "VerifiedCertificate",
    "load_crl",
    "verify_certificate",
    "verify_signature",
]
