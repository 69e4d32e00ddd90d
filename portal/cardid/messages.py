"""What a person is told when a card operation is refused: what happened and what to do."""

from flask_babel import lazy_gettext as _l

MESSAGES = {
    "challenge_unknown": _l("This card request is not known. Start again."),
    "challenge_expired": _l("The time to use your card ran out. Start again."),
    "challenge_used": _l("This card request was already used. Start again."),
    "code_mismatch": _l("The code does not match. Start again."),
    "wrong_terminal": _l("This request belongs to another terminal."),
    "terminal_required": _l("This can only be done at a registered city terminal."),
    "terminal_unknown": _l("This terminal is not registered."),
    "terminal_disabled": _l("This terminal is disabled."),
    "terminal_signature": _l("The terminal's signature is not valid."),
    "terminal_clock": _l("The terminal's clock is wrong."),
    "terminal_time": _l("The terminal's request has no time."),
    "bad_signature": _l("The card's signature could not be verified. Try again."),
    "untrusted": _l("This card's certificate is not from the Japanese public certification service."),
    "expired": _l("Your card's certificate has expired. Renew your certificate at a ward office counter."),
    "not_yet_valid": _l("Your card's certificate is not valid yet."),
    "revoked": _l(
        "Your card's certificate has been revoked. Renew your certificate at a ward office counter."
    ),
    "revocation_unknown": _l("The certificate could not be checked just now. Try again later."),
    "wrong_key_usage": _l("This certificate cannot be used to log in."),
    "wrong_kind": _l("Use the user-authentication certificate (4-digit PIN)."),
    "malformed": _l("The card's answer was not readable. Try again."),
    "unsupported_algorithm": _l("This card's certificate is not supported."),
    "card_not_linked": _l(
        "This card is not linked to a resident yet. Link your card at a ward office counter."
    ),
    "card_linked_elsewhere": _l(
        "This card is linked to another resident. Please ask at a ward office counter."
    ),
    "resident_not_active": _l(
        "There is no current resident registration for this card. Please ask at a ward office counter."
    ),
    "resident_unknown": _l("No resident matches this card. Please ask at a ward office counter."),
    "basic4_mismatch": _l(
        "The card's details do not match the resident register. Please ask at a ward office counter."
    ),
    "basic4_ambiguous": _l("More than one resident matches. Please ask at a ward office counter."),
    "basic4_missing": _l("The signature certificate carries no name and address."),
    "number_invalid": _l("The Individual Number read from the card is not valid."),
    "no_account": _l("Your card is linked, but you have no portal account yet. Create an account first."),
    "credential_unknown": _l("This card link was not found."),
    "purpose_unknown": _l("Unknown purpose."),
    "session_required": _l("Open the login page first."),
    "forbidden": _l("You do not have permission to do this."),
    "terminal_kind": _l("Unknown terminal kind."),
    "terminal_exists": _l("A terminal with this ID exists."),
    "terminal_key_type": _l("The public key must be an Ed25519 key in PEM form."),
    "bad_request": _l("The request could not be understood."),
}


def message_for(code: str):
    return MESSAGES.get(code, MESSAGES["bad_request"])
