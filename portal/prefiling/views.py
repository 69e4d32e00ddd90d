"""The resident's side of web pre-filing (/me/prefilings): the catalogue, start (pre-filled from
the register), save a draft, resume on any device, attachments, submit → reservation number and QR
code, status with history, withdraw, the printable PDF. ``init_app`` registers the blueprint."""

from __future__ import annotations

import segno
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.authz import allow
from portal.extensions import db
from portal.points import rules as points_rules
from portal.prefiling import attachments, catalogue, forms, pdf, service
from portal.prefiling.models import Attachment, PreFiling, PreFilingEvent

bp = Blueprint("prefiling", __name__, url_prefix="/me/prefilings", template_folder="templates")

EDITABLE = ("draft", "correction_requested")
WITHDRAWABLE = ("draft", "submitted", "correction_requested", "ready")
STATUS_LABELS = {
    "draft": _l("Draft"),
    "submitted": _l("Submitted"),
    "correction_requested": _l("Correction requested"),
    "ready": _l("Ready at the counter"),
    "arrived": _l("At the counter"),
    "completed": _l("Completed"),
    "withdrawn": _l("Withdrawn"),
}
ACTION_LABELS = {
    "created": _l("Started"),
    "saved": _l("Saved"),
    "signed": _l("Signed with the card"),
    "attached": _l("File attached"),
    **STATUS_LABELS,
}
ERRORS = {
    "changed_meanwhile": _l(
        "This pre-filing was changed in another tab or on another device since you opened it. "
        "Your changes on this page were not saved: copy what you need, then reload the page."
    ),
    "not_editable": _l("This pre-filing can no longer be changed."),
    "bad_transition": _l("This pre-filing can no longer be changed."),
}
ATTACHMENT_ERRORS = {
    "empty": _l("Choose a file to upload."),
    "too_large": _l("The file is too large: at most %(mb)s MB."),
    "bad_type": _l("The file's content is not an accepted type (%(types)s). Its name does not matter."),
    "unknown": _l("Choose which document this is."),
}
UPLOAD_OVERHEAD = 1024 * 1024  # the multipart envelope and the other form fields
# The notice the resident gets for a status change (portal.notices.triggers.PROCEDURE_STATUSES).
NOTIFY = {"submitted": "received", "withdrawn": "cancelled"}


def _lang() -> str:
    return "en" if str(get_locale()) == "en" else "ja"


def _own(prefiling_id: int) -> PreFiling:
    """The resident's own pre-filing; anyone else's is not found."""
    prefiling = db.session.get(PreFiling, prefiling_id)
    if prefiling is None or prefiling.resident_id != current_user.resident_id:
        abort(404)
    return prefiling


def _definition(prefiling: PreFiling) -> dict:
    defn = catalogue.get(prefiling.procedure_code, prefiling.procedure_version)
    if defn is None:
        abort(404)
    return defn


def _actor() -> str:
    return f"account:{current_user.id}"


def qr_data_uri(number: str) -> str:
    """A QR code (SVG data URI) carrying the reservation number only."""
    return segno.make(number, error="m", micro=False).svg_data_uri(scale=5, border=2)


@bp.route("/")
@allow("resident")
def index():
    mine = db.session.scalars(
        select(PreFiling)
        .where(PreFiling.resident_id == current_user.resident_id)
        .order_by(PreFiling.id.desc())
    ).all()
    return render_template(
        "prefiling/index.html",
        procedures=catalogue.latest(),
        mine=mine,
        names={d["code"]: d["name"] for d in catalogue.latest()},
        status_labels=STATUS_LABELS,
        lang=_lang(),
        label=catalogue.label,
    )


@bp.route("/start/<code>", methods=["POST"])
@allow("resident")
def start(code: str):
    defn = catalogue.get(code)
    if defn is None:
        abort(404)
    values = forms.prefill(defn, current_user.resident, current_app.config.get("CITY_NAME_JA", ""))
    prefiling = service.create_draft(
        resident_id=current_user.resident_id,
        account_id=current_user.id,
        code=defn["code"],
        version=defn["version"],
        data=values,
    )
    db.session.commit()
    flash(str(_l("Your draft has been started. What the register knows is already filled in.")), "success")
    return redirect(url_for("prefiling.edit", prefiling_id=prefiling.id))


def _form_page(prefiling, defn, values, *, errors=None, message=None, version=None, status=200):
    have = {a.code: a for a in attachments.for_prefiling(prefiling.id)}
    return (
        render_template(
            "prefiling/edit.html",
            prefiling=prefiling,
            defn=defn,
            values=values,
            errors=errors or {},
            message=message,
            version=prefiling.version if version is None else version,
            attachments=have,
            lang=_lang(),
            label=catalogue.label,
            visible=forms.visible,
            slots=forms.slots,
            attachment_errors=request.args.get("attachment_error"),
            field_labels={
                field["name"]: catalogue.label(field["label"], _lang())
                for section in defn["sections"]
                for field in section["fields"]
            },
        ),
        status,
    )


@bp.route("/<int:prefiling_id>/edit", methods=["GET", "POST"])
@allow("resident")
def edit(prefiling_id: int):
    prefiling = _own(prefiling_id)
    defn = _definition(prefiling)
    if prefiling.status not in EDITABLE:
        return redirect(url_for("prefiling.show", prefiling_id=prefiling.id))
    if request.method == "GET":
        return _form_page(prefiling, defn, service.values(prefiling))
    values = forms.parse(defn, request.form)
    action = request.form.get("action", "save")
    try:
        expected = int(request.form.get("version", ""))
    except ValueError:
        expected = -1
    if action == "submit":
        clean, errors = forms.validate(defn, values, _lang())
        have = {a.code for a in attachments.for_prefiling(prefiling.id)}
        missing = forms.missing_attachments(defn, clean if not errors else values, have)
        if errors or missing:
            message = _l("Please correct the fields marked below. Nothing was sent yet.")
            if missing and not errors:
                message = _l("Please attach the documents listed below. Nothing was sent yet.")
            return _form_page(
                prefiling,
                defn,
                values,
                errors=errors,
                message=message,
                version=expected,
                status=400,
            )
        values = clean
    try:
        service.save(prefiling, values, expected_version=expected, actor=_actor())
        if action == "submit":
            service.transition(prefiling, "submitted", actor=_actor())
            points_rules.first_use(prefiling.resident_id, "prefiling", f"pre-filing {prefiling.id}")
        db.session.commit()
    except service.PreFilingError as exc:
        db.session.rollback()
        prefiling = _own(prefiling_id)
        return _form_page(
            prefiling,
            defn,
            values,
            message=ERRORS.get(exc.code, exc.code),
            version=expected,
            status=exc.status,
        )
    if action == "submit":
        _notify(prefiling, defn, "submitted")
        flash(
            str(_l("Your pre-filing has been sent. Show the reservation number or QR code at the counter.")),
            "success",
        )
        return redirect(url_for("prefiling.show", prefiling_id=prefiling.id))
    flash(str(_l("Your draft has been saved. You can continue on any device.")), "success")
    anchor = request.form.get("anchor", "")
    return redirect(
        url_for("prefiling.edit", prefiling_id=prefiling.id) + (f"#{anchor}" if anchor.isidentifier() else "")
    )


def _notify(prefiling: PreFiling, defn: dict, status: str) -> None:
    """Tell the resident through the PO box; a failure here never undoes the submission."""
    code = NOTIFY.get(status)
    if code is None:
        return
    try:
        from portal.notices.triggers import notify_procedure_status

        notify_procedure_status(
            prefiling.resident_id, defn["name"]["ja"], defn["name"]["en"], code, reference=str(prefiling.id)
        )
    except Exception:
        db.session.rollback()
        current_app.logger.exception("pre-filing %s: status notice not sent", prefiling.id)


@bp.route("/<int:prefiling_id>")
@allow("resident")
def show(prefiling_id: int):
    prefiling = _own(prefiling_id)
    defn = _definition(prefiling)
    values = service.values(prefiling)
    events = db.session.scalars(
        select(PreFilingEvent).where(PreFilingEvent.prefiling_id == prefiling.id).order_by(PreFilingEvent.id)
    ).all()
    suggestions = [
        (catalogue.get(r["code"]), r)
        for r in forms.related(defn, values)
        if catalogue.get(r["code"]) is not None
    ]
    return render_template(
        "prefiling/show.html",
        prefiling=prefiling,
        defn=defn,
        values=values,
        events=events,
        attachments=attachments.for_prefiling(prefiling.id),
        attachment_specs={a["code"]: a for a in defn.get("attachments", [])},
        number=service.format_reservation_no(prefiling.reservation_no) if prefiling.reservation_no else None,
        qr=qr_data_uri(prefiling.reservation_no) if prefiling.reservation_no else None,
        suggestions=suggestions,
        status_labels=STATUS_LABELS,
        action_labels=ACTION_LABELS,
        editable=prefiling.status in EDITABLE,
        withdrawable=prefiling.status in WITHDRAWABLE,
        sign_url=url_for("prefiling_signing.sign_page", prefiling_id=prefiling.id)
        if "prefiling_signing" in current_app.blueprints
        and prefiling.status in ("submitted", "ready")
        and prefiling.signature_verified_at is None
        else None,
        lang=_lang(),
        label=catalogue.label,
        visible=forms.visible,
        display=forms.display,
        tz=pdf.TOKYO,
    )


@bp.route("/<int:prefiling_id>/attachments", methods=["POST"])
@allow("resident")
def upload(prefiling_id: int):
    prefiling = _own(prefiling_id)
    defn = _definition(prefiling)
    if prefiling.status not in EDITABLE:
        abort(409)
    specs = {a["code"]: a for a in defn.get("attachments", [])}
    # Refuse a huge body before it is parsed (and spooled to disk); a file a little over the
    # document's own limit still reaches store() and gets the sentence with the limit in it.
    largest = max((int(a.get("max_bytes", attachments.DEFAULT_MAX_BYTES)) for a in specs.values()), default=0)
    request.max_content_length = largest + UPLOAD_OVERHEAD
    spec = specs.get(request.form.get("code", ""))
    upload_file = request.files.get("file")
    try:
        if spec is None:
            raise attachments.AttachmentError("unknown")
        if upload_file is None or not upload_file.filename:
            raise attachments.AttachmentError("empty")
        attachment = attachments.store(prefiling, spec, upload_file.stream, upload_file.filename)
    except attachments.AttachmentError as exc:
        db.session.rollback()
        values = service.values(prefiling)
        message = (
            str(ATTACHMENT_ERRORS[exc.code] % exc.params) if exc.params else str(ATTACHMENT_ERRORS[exc.code])
        )
        page, _status = _form_page(prefiling, defn, values, message=message, status=400)
        return page, 413 if exc.code == "too_large" else 400
    service.record(prefiling, _actor(), "attached", attachment.code)
    db.session.commit()
    flash(str(_l("The file has been attached.")), "success")
    return redirect(url_for("prefiling.edit", prefiling_id=prefiling.id) + "#attachments")


@bp.route("/<int:prefiling_id>/attachments/<int:attachment_id>")
@allow("resident")
def attachment(prefiling_id: int, attachment_id: int):
    prefiling = _own(prefiling_id)
    found = db.session.get(Attachment, attachment_id)
    if found is None or found.prefiling_id != prefiling.id:
        abort(404)
    return attachments.send(found)


@bp.route("/<int:prefiling_id>/attachments/<int:attachment_id>/delete", methods=["POST"])
@allow("resident")
def delete_attachment(prefiling_id: int, attachment_id: int):
    prefiling = _own(prefiling_id)
    found = db.session.get(Attachment, attachment_id)
    if found is None or found.prefiling_id != prefiling.id:
        abort(404)
    if prefiling.status not in EDITABLE:
        abort(409)
    attachments.remove(found)
    db.session.commit()
    flash(str(_l("The file has been removed.")), "success")
    return redirect(url_for("prefiling.edit", prefiling_id=prefiling.id) + "#attachments")


@bp.route("/<int:prefiling_id>/withdraw", methods=["POST"])
@allow("resident")
def withdraw(prefiling_id: int):
    prefiling = _own(prefiling_id)
    defn = _definition(prefiling)
    try:
        service.transition(prefiling, "withdrawn", actor=_actor())
        db.session.commit()
    except service.PreFilingError as exc:
        db.session.rollback()
        flash(str(ERRORS.get(exc.code, exc.code)), "error")
        return redirect(url_for("prefiling.show", prefiling_id=prefiling_id))
    _notify(prefiling, defn, "withdrawn")
    flash(str(_l("Your pre-filing has been withdrawn.")), "success")
    return redirect(url_for("prefiling.show", prefiling_id=prefiling_id))


@bp.route("/<int:prefiling_id>/pdf")
@allow("resident")
def summary_pdf(prefiling_id: int):
    return pdf_response(_own(prefiling_id))


def pdf_response(prefiling: PreFiling):
    """The printable summary as a response; staff views call this too (after their access record)."""
    name = f"prefiling-{prefiling.reservation_no or prefiling.id}.pdf"
    return current_app.response_class(
        pdf.render(prefiling),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "private, no-store"},
    )


def init_app(app) -> None:
    app.register_blueprint(bp)
