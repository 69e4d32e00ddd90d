"""Staff console. Every read of a resident writes an access record naming the stated purpose."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import service as access
from portal.accounts import service as accounts
from portal.accounts.models import StaffUser
from portal.accounts.views import fresh_required
from portal.authz import STAFF_ROLES, allow
from portal.extensions import db
from portal.registry import service as registry
from portal.staff.forms import StaffForm
from portal.staff.purposes import NUMBER_PURPOSES, PURPOSES
from portal.vault import service as vault

bp = Blueprint("staff", __name__, url_prefix="/staff")

READERS = ("counter", "processing", "admin")
# What the resident page shows, and so what its access record names.
RECORD_ITEMS = ["basic4", "household", "register_status", "attributes"]


def staff_actor() -> access.Actor:
    return access.Actor(
        kind="staff",
        id=current_user.login_id,
        role=" ".join(current_user.role_list),
        organisation=current_user.organisation,
    )


def _purpose() -> str:
    purpose = request.values.get("purpose", "")
    if purpose not in PURPOSES:
        abort(400)
    return purpose


def _resident_page(person, purpose: str, *, number: str | None = None, code: str | None = None):
    return render_template(
        "staff/resident.html",
        person=person,
        members=registry.household_members(person),
        purpose=purpose,
        purposes=PURPOSES,
        has_number=number is not None or vault.has_number(person.id),
        number_purpose=purpose in NUMBER_PURPOSES,
        mask=vault.MASK,
        number=number,
        code=code,
    )


@bp.route("/")
@allow(*STAFF_ROLES)
def home():
    return render_template("staff/home.html", purposes=PURPOSES)


@bp.route("/residents")
@allow(*READERS)
def search():
    query = request.args.get("q", "").strip()
    purpose = request.args.get("purpose", "")
    results = []
    error = None
    if query:
        if purpose not in PURPOSES:
            error = _("Choose the purpose of this look-up.")
        else:
            results = registry.search_residents(query)
            access.record_many(
                staff_actor(),
                resident_ids=[r.id for r in results],
                data_items=["basic4"],
                purpose=f"{purpose}: search",
            )
            db.session.commit()
    return render_template(
        "staff/search.html", query=query, purpose=purpose, purposes=PURPOSES, results=results, error=error
    )


@bp.route("/residents/<int:resident_id>")
@allow(*READERS)
def resident(resident_id: int):
    purpose = _purpose()
    try:
        person = registry.get_resident(resident_id)
    except registry.NotFound:
        abort(404)
    access.record(
        staff_actor(),
        resident_id=person.id,
        data_items=RECORD_ITEMS,
        purpose=purpose,
    )
    db.session.commit()
    return _resident_page(person, purpose)


@bp.route("/residents/<int:resident_id>/individual-number", methods=["POST"])
@allow("counter", "processing")
@fresh_required
def reveal_number(resident_id: int):
    purpose = _purpose()
    if purpose not in NUMBER_PURPOSES:
        abort(403)
    try:
        person = registry.get_resident(resident_id)
        number = vault.reveal(person.id, purpose=purpose, actor=staff_actor())
    except (registry.NotFound, LookupError):
        abort(404)
    db.session.commit()
    return _resident_page(person, purpose, number=number)


@bp.route("/residents/<int:resident_id>/activation-code", methods=["POST"])
@allow("counter")
def activation_code(resident_id: int):
    try:
        person = registry.get_resident(resident_id)
    except registry.NotFound:
        abort(404)
    if person.status != "active":
        flash(_("Only active residents can get a registration code."), "error")
        return redirect(url_for("staff.resident", resident_id=person.id, purpose="portal_support"))
    access.record(
        staff_actor(),
        resident_id=person.id,
        data_items=RECORD_ITEMS,
        purpose="portal_support: registration_code",
    )
    code = accounts.issue_activation_code(person.id, current_user.login_id)
    db.session.commit()
    return _resident_page(person, "portal_support", code=code)


@bp.route("/admin/staff", methods=["GET", "POST"])
@allow("admin")
def staff_list():
    form = StaffForm()
    if form.validate_on_submit():
        try:
            accounts.create_staff(
                form.login_id.data.strip(),
                form.display_name.data.strip(),
                form.organisation.data.strip(),
                form.roles.data,
                form.password.data,
            )
        except accounts.AccountError:
            form.roles.errors.append(_("Unknown role."))
        else:
            db.session.commit()
            flash(_("Staff member added."), "success")
            return redirect(url_for("staff.staff_list"))
    users = db.session.scalars(db.select(StaffUser).order_by(StaffUser.login_id)).all()
    return render_template("staff/staff_list.html", form=form, users=users)


@bp.route("/admin/staff/<int:user_id>/active", methods=["POST"])
@allow("admin")
def staff_toggle(user_id: int):
    user = db.session.get(StaffUser, user_id)
    if user is None:
        abort(404)
    if user.id == current_user.id:
        flash(_("You cannot disable your own account."), "error")
    else:
        user.active = not user.active
        user.session_version += 1
        db.session.commit()
    return redirect(url_for("staff.staff_list"))
