"""The counter's seal registration page (印鑑登録・廃止): see a resident's registered seal, register
one from a scanned impression (PNG/JPEG), abolish it. Every visit names a purpose and is recorded."""

from __future__ import annotations

import base64
import io

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select

from portal.access import service as access
from portal.authz import allow
from portal.certificates import seals, service
from portal.certificates.models import SealRegistration
from portal.extensions import db
from portal.registry import service as registry
from portal.staff.views import staff_actor

bp = Blueprint("certificates_staff", __name__, url_prefix="/staff/residents", template_folder="templates")
PURPOSE = "seal_registration"
MAX_IMAGE = 1024 * 1024


def _person(resident_id: int):
    try:
        return registry.get_resident(resident_id)
    except registry.NotFound:
        abort(404)


def _record(person) -> None:
    access.record(staff_actor(), resident_id=person.id, data_items=["basic4", "certificate"], purpose=PURPOSE)


def _png(upload) -> bytes | None:
    """The uploaded impression as PNG (re-encoded: nothing but pixels is kept), or None."""
    data = upload.read(MAX_IMAGE + 1) if upload else b""
    if not data or len(data) > MAX_IMAGE:
        return None
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in ("PNG", "JPEG"):
            return None
        image.thumbnail((600, 600))
        out = io.BytesIO()
        image.convert("RGBA").save(out, format="PNG")
        return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError):
        return None


@bp.route("/<int:resident_id>/seal")
@allow("counter")
def seal(resident_id: int):
    person = _person(resident_id)
    _record(person)
    db.session.commit()
    history = db.session.scalars(
        select(SealRegistration)
        .where(SealRegistration.resident_id == person.id)
        .order_by(SealRegistration.id.desc())
    ).all()
    current = next((s for s in history if s.status == "registered"), None)
    image = base64.b64encode(current.image_png).decode() if current else None
    return render_template(
        "certificates/staff_seal.html",
        person=person,
        current=current,
        history=history,
        image=image,
        demo=current_app.config.get("NAME") != "production",
    )


@bp.route("/<int:resident_id>/seal", methods=["POST"])
@allow("counter")
def seal_action(resident_id: int):
    person = _person(resident_id)
    action = request.form.get("action")
    actor = f"staff:{current_user.login_id}"
    try:
        if action == "register":
            image = _png(request.files.get("impression"))
            if (
                image is None
                and request.form.get("generate")
                and current_app.config.get("NAME") != "production"
            ):
                image = seals.impression_png(person.family_name)
            if image is None:
                raise service.Refused("bad_image")
            service.register_seal(person, image, actor=actor)
            flash(_("The seal is registered."), "success")
        elif action == "abolish":
            service.abolish_seal(person, actor=actor)
            flash(_("The seal registration is abolished."), "success")
        else:
            abort(400)
    except service.Refused as exc:
        db.session.rollback()
        flash(str(service.refusal_message(exc.code)), "error")
        return redirect(url_for(".seal", resident_id=person.id))
    _record(person)
    db.session.commit()
    return redirect(url_for(".seal", resident_id=person.id))


def init_app(app) -> None:
    app.register_blueprint(bp)
