"""Translated labels for codes stored in the database."""

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

RELATIONSHIP = {
    "head": _l("Head of household"),
    "spouse": _l("Spouse"),
    "child": _l("Child"),
    "parent": _l("Parent"),
    "grandchild": _l("Grandchild"),
    "grandparent": _l("Grandparent"),
    "sibling": _l("Sibling"),
    "other": _l("Other"),
}
STATUS = {"active": _l("Resident"), "moved_out": _l("Moved out"), "deceased": _l("Deceased")}
SEX = {1: _l("Male"), 2: _l("Female"), 9: _l("Not applicable")}
# Purposes written by processes rather than chosen by staff, and the details after a colon.
RECORD_PURPOSES = {
    "card_link": _l("Linking your card (identity check)"),
    "eid_link": _l("Linking your external eID login"),
    "demo_card": _l("Writing the demo card"),
    "notice_preview": _l("Checking a notice before it is sent"),
    "prefiling_sign": _l("Your card signature on a pre-filing"),
    "kiosk_session": _l("Logging in at a city kiosk with your card"),
    "booking_day_view": _l("The day's appointments at a ward office counter"),
    "booking_counter": _l("Calling your number at a ward office counter"),
    "booking_checkin": _l("Checking in your appointment at the counter"),
    "certificate_kiosk": _l("Printing a certificate you asked for at a kiosk"),
    "points_partner": _l("A points partner read your points"),
    "points_coupon": _l("Your points coupon was used"),
    "library_link": _l("Linking your card to your library patron number"),
    "library_lookup": _l("Library: patron number found by your card"),
    "shelter_checkin": _l("Check-in at an evacuation shelter"),
    "shelter_roster": _l("Evacuation shelter roster"),
    "shelter_family": _l("A family member saw your shelter check-in"),
}
DETAILS = {
    "search": _l("search"),
    "card_scan": _l("card scan"),
    "registration_code": _l("registration code"),
    "text_ap": _l("card and PIN"),
    "sign_cert": _l("signature certificate"),
    "counter": _l("at the counter"),
    "prefiling_review": _l("review of a pre-filing"),
    "express_counter": _l("express counter"),
    "prefiling_attachment": _l("document attached to a pre-filing"),
    "residence": _l("copy of residence record"),
    "seal": _l("seal registration certificate"),
    "income": _l("income and tax certificate"),
    "balance": _l("balance"),
    "transactions": _l("transactions"),
    "identify_qr": _l("member QR code"),
    "identify_card": _l("card at the partner"),
    "facility": _l("at the facility"),
    "card": _l("card"),
    "hand": _l("by hand"),
}


def purpose_label(code: str) -> str:
    from portal.staff.purposes import PURPOSES

    head, _, tail = code.partition(":")
    label = PURPOSES.get(head.strip()) or RECORD_PURPOSES.get(head.strip())
    if label is None:
        return code
    if not tail:
        return str(label)
    if head.strip() == "notice_preview":
        return str(label)
    detail = DETAILS.get(tail.strip(), tail.strip())
    return f"{label}（{detail}）" if str(get_locale()) == "ja" else f"{label} ({detail})"


def list_sep() -> str:
    return "、" if str(get_locale()) == "ja" else ", "


def ja_text(text) -> Markup:
    """Japanese data (names, addresses, offices) on an English page is marked lang="ja", so screen
    readers read it as Japanese and browsers break lines between phrases (WCAG 3.1.2)."""
    if str(get_locale()) == "ja":
        return Markup.escape(text)
    return Markup('<span lang="ja">%s</span>') % text


def register(app) -> None:
    app.jinja_env.globals.update(
        relationship_label=lambda c: RELATIONSHIP.get(c, c),
        status_label=lambda c: STATUS.get(c, c),
        sex_label=lambda c: SEX.get(c, c),
        purpose_label=purpose_label,
        list_sep=list_sep,
    )
    app.jinja_env.filters["ja"] = ja_text
