"""What a person (or a partner's developer) is told when a points operation is refused."""

from flask_babel import lazy_gettext as _l

MESSAGES = {
    "points_positive": _l("The number of points must be a whole number above zero."),
    "insufficient_points": _l("There are not enough points."),
    "already_awarded": _l("These points were already given."),
    "already_reversed": _l("This entry was already reversed."),
    "entry_unknown": _l("This entry was not found."),
    "not_reversible": _l("This kind of entry cannot be reversed."),
    "rule_unknown": _l("Unknown earning rule."),
    "rule_inactive": _l("This earning rule is switched off."),
    "bad_rule": _l("Check the amount, the period and the cap."),
    "cap_reached": _l("The most points for this period have been given already."),
    "already_attended": _l("This resident's attendance was already confirmed."),
    "list_encoding": _l("The list must be a CSV file in UTF-8."),
    "list_header": _l("The first row of the list must name the column atena_no (宛名番号)."),
    "list_empty": _l("The list has no rows."),
    "list_too_long": _l("The list has too many rows (at most 2,000)."),
    "list_missing_number": _l("No 宛名番号 in this row."),
    "list_duplicate": _l("This 宛名番号 is in the list twice."),
    "list_unknown_resident": _l("No current resident has this 宛名番号."),
    "partner_unknown": _l("This partner was not found."),
    "member_unknown": _l("This member was not found."),
    "not_a_member": _l("This resident has not joined your programme in the city portal."),
    "qr_expired": _l("The member QR code has expired. Ask the resident to show a new one."),
    "qr_invalid": _l("This is not a valid member QR code."),
    "idempotency_key_required": _l("Send an Idempotency-Key header (1 to 100 characters) with every write."),
    "idempotency_key_reused": _l("This Idempotency-Key was used for a different request."),
    "bad_month": _l("The month must look like 2026-11."),
    "item_unknown": _l("This item is not in the catalogue."),
    "out_of_stock": _l("This item is out of stock."),
    "limit_reached": _l("You have already used this item as often as allowed."),
    "coupon_unknown": _l("This coupon code is not known."),
    "coupon_used": _l("This coupon was already used."),
    "coupon_expired": _l("This coupon has expired."),
    "coupon_elsewhere": _l("This coupon is for another facility or partner."),
    "bad_request": _l("The request could not be understood."),
    "invalid_token": _l("The access token is missing, expired or not valid."),
    "missing_authorization": _l("The access token is missing, expired or not valid."),
    "insufficient_scope": _l("The access token does not allow this."),
    "rate_limited": _l("Too many requests. Wait and try again."),
    "not_found": _l("Not found."),
    "method_not_allowed": _l("This method is not allowed here."),
}


def message_for(code: str):
    return MESSAGES.get(code, MESSAGES["bad_request"])
