"""Why staff read a resident's data (利用目的). A read without one of these is refused."""

from flask_babel import lazy_gettext as _l

PURPOSES = {
    "identity_check": _l("Identity check at the counter"),
    "certificate": _l("Issuing a certificate (住民票の写し etc.)"),
    "moving": _l("Moving in / out / within the city"),
    "child_allowance": _l("Child allowance (児童手当)"),
    "seal_registration": _l("Seal registration (印鑑登録)"),
    "portal_support": _l("Portal account support"),
    "audit": _l("Audit"),
}

# Purposes that justify revealing the Individual Number (番号利用事務).
NUMBER_PURPOSES = ("moving", "child_allowance", "certificate")
