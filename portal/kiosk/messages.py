"""What the kiosk tells a resident when something goes wrong: what happened, and what to do next.

Codes are the agent's (kiosk/README.md), the server's card codes (portal/cardid/messages.py) and
the kiosk session's own. Every code a page can meet maps to a (title, next step) pair.
"""

from flask_babel import lazy_gettext as _l

AT_COUNTER = _l("Please go to the ward office counter with your card.")
TRY_AGAIN = _l("Touch “Start again” and try once more.")
ASK_STAFF = _l("Please ask a member of staff, or use another kiosk.")

FAILURES = {
    "wrong_pin": (_l("The PIN is not correct."), _l("Type your 4-digit PIN again.")),
    "pin_blocked": (
        _l("Your PIN is locked."),
        _l("The PIN can be reset only at the ward office counter. Please go to the counter with your card."),
    ),
    "stopped_last_try": (
        _l("You stopped before the last try."),
        _l(
            "Your card is not locked. To check or reset your PIN, go to the ward office counter with your card."  # noqa: E501
        ),
    ),
    "pin_format": (_l("The PIN has 4 digits."), _l("Type your 4-digit PIN again.")),
    "expired": (
        _l("The certificate on your card has expired."),
        _l("Renew it at the ward office counter. Please bring your card."),
    ),
    "revoked": (
        _l("The certificate on your card can no longer be used."),
        _l("Renew it at the ward office counter. Please bring your card."),
    ),
    "not_yet_valid": (_l("The certificate on your card is not valid yet."), AT_COUNTER),
    "card_not_linked": (
        _l("This card is not registered for city services yet."),
        _l("Link your card at the ward office counter once. Then you can use the kiosk."),
    ),
    "resident_not_active": (_l("There is no current residence record for this card."), AT_COUNTER),
    "no_reader": (_l("The card reader is not working."), ASK_STAFF),
    "no_agent": (_l("This kiosk is out of order."), ASK_STAFF),
    "server_unreachable": (
        _l("The kiosk cannot reach the city's system just now."),
        _l("Please try again in a few minutes, or use another kiosk."),
    ),
    "no_card": (_l("There is no card on the reader."), _l("Put your card on the reader.")),
    "card_removed": (
        _l("The card was taken off the reader."),
        _l("Leave the card on the reader until you finish. Put it back to start again."),
    ),
    "not_individual_number_card": (
        _l("This card is not an Individual Number Card."),
        _l("Use your Individual Number Card (マイナンバーカード)."),
    ),
    "busy": (_l("The card is still being read."), _l("Wait a moment, then try again.")),
    "terminal_disabled": (_l("This kiosk is not available now."), ASK_STAFF),
    "terminal_not_set": (_l("This kiosk is not set up."), ASK_STAFF),
    "card_error": (_l("Your card could not be read."), TRY_AGAIN),
    "timeout": (_l("The time ran out."), TRY_AGAIN),
}
# Server and agent codes that mean the same thing for the resident.
ALIASES = {
    "card_linked_elsewhere": "card_not_linked",
    "resident_unknown": "card_not_linked",
    "untrusted": "card_error",
    "bad_signature": "card_error",
    "malformed": "card_error",
    "wrong_kind": "card_error",
    "wrong_key_usage": "card_error",
    "unsupported_algorithm": "card_error",
    "revocation_unknown": "server_unreachable",
    "challenge_expired": "timeout",
    "ticket_expired": "timeout",
    "challenge_used": "card_error",
    "challenge_unknown": "card_error",
    "ticket_used": "card_error",
    "ticket_unknown": "card_error",
    "bad_challenge": "card_error",
    "terminal_unknown": "terminal_disabled",
    "terminal_signature": "terminal_disabled",
    "terminal_clock": "terminal_disabled",
    "terminal_time": "terminal_disabled",
    "wrong_terminal": "terminal_disabled",
    "terminal_required": "terminal_disabled",
    "origin_refused": "terminal_disabled",
    "bad_host": "terminal_disabled",
}

# Why a session ended, said on the first screen afterwards.
ENDED = {
    "finished": _l("Thank you. Please take your card."),
    "card_removed": _l("The card was taken off the reader, so we stopped. Nothing is left on the screen."),
    "idle": _l("Nothing happened for a while, so we stopped. Please take your card."),
    "expired": _l("The time for one visit ran out, so we stopped. Please take your card."),
}


def failure(code: str) -> tuple:
    return FAILURES[ALIASES.get(code, code if code in FAILURES else "card_error")]
