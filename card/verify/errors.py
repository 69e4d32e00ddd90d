"""Why a certificate or signature was not accepted (``reason`` is stable, for logs and APIs)."""

from __future__ import annotations

REASONS = frozenset(
    {
        "bad_signature",
        "untrusted",
        "expired",
        "not_yet_valid",
        "revoked",
        "revocation_unknown",
        "wrong_key_usage",
        "wrong_kind",
        "malformed",
        "unsupported_algorithm",
    }
)


class VerificationError(Exception):
    """Verification failed; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown verification reason {reason!r}")
        super().__init__(message or reason)
        self.reason = reason
