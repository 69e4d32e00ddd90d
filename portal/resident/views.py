from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from portal.authz import allow
from portal.registry import service as registry

bp = Blueprint("resident", __name__, url_prefix="/me")


@bp.route("/")
@allow("account")
def home():
    """A linked resident sees their register record and household; an unlinked account is shown
    how to link."""
    person = current_user.resident if "resident" in current_user.principals() else None
    members = registry.household_members(person) if person is not None else []
    return render_template("resident/home.html", person=person, members=members)
