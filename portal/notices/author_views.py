"""The notice author's console: drafts, live recipient count, preview as a resident, submit,
a second author's approval, cancel, sending, and the figures."""

from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.access import service as access
from portal.authz import allow
from portal.extensions import db
from portal.models_base import utcnow
from portal.notices import delivery, service, targeting
from portal.notices.forms import (
    CARE_LABELS,
    CATEGORY_LABELS,
    CHANNEL_LABELS,
    DISABILITY_LABELS,
    REPLY_KIND_LABELS,
    STATUS_LABELS,
    NoticeForm,
    rule_from,
    to_local,
)
from portal.notices.models import CHANNELS, Notice
from portal.registry.models import Resident, Ward
from portal.staff.views import staff_actor

bp = Blueprint("notice_author", __name__, url_prefix="/staff/notices", template_folder="templates")

ERRORS = {
    "same_person": _l("A notice must be approved by a different author from the one who wrote it."),
    "not_draft": _l("Only a draft can be changed or submitted."),
    "not_pending": _l("This notice is not waiting for approval."),
    "already_sent": _l("This notice has already been sent and cannot be cancelled."),
    "placeholder": _l("The text uses a placeholder that does not exist."),
    "category": _l("Choose a category."),
    "reply_kind": _l("Choose a kind of reply."),
    "reply_options": _l("Give at least two options."),
}
# What a preview reads of the chosen resident, and so what its access record names.
PREVIEW_ITEMS = ["basic4", "household", "attributes"]


def _wards() -> list[tuple[str, str]]:
    lang = str(get_locale())
    return [
        (w.code, w.name_ja if lang == "ja" else w.name_en)
        for w in db.session.scalars(select(Ward).order_by(Ward.code))
    ]


def _notice(notice_id: int) -> Notice:
    notice = db.session.get(Notice, notice_id)
    if notice is None:
        abort(404)
    return notice


def _error(exc: service.NoticeError | targeting.RuleError) -> str:
    code = exc.code if isinstance(exc, service.NoticeError) else "rule"
    return str(ERRORS.get(code, _l("This cannot be done now.")))


def _send(notice: Notice) -> None:
    """The single place an approved, due notice is sent: fan-out, then e-mail and push (inline, or
    as an RQ job inside an app context in production)."""
    delivery.schedule_send(notice.id)


def _describe_rule(rule: dict) -> list[str]:
    """The rule in words for the notice page."""
    out = []
    wards = dict(_wards())
    if "ward" in rule:
        out.append(str(_l("Wards")) + ": " + ", ".join(wards.get(w, w) for w in rule["ward"]))
    if "sex" in rule:
        labels = {1: _l("Male"), 2: _l("Female"), 9: _l("Not applicable")}
        out.append(str(_l("Sex")) + ": " + ", ".join(str(labels[s]) for s in rule["sex"]))
    if "age" in rule:
        out.append(str(_l("Age %(min)s to %(max)s", **rule["age"])))
    if "member_age_months" in rule:
        out.append(str(_l("A household member aged %(min)s to %(max)s months", **rule["member_age_months"])))
    for key, labels, any_label in (
        ("care_level", CARE_LABELS, _l("Any care level")),
        ("disability", DISABILITY_LABELS, _l("Any disability certificate")),
    ):
        if key in rule:
            out.append(str(any_label) if rule[key] == "any" else ", ".join(str(labels[v]) for v in rule[key]))
    if rule.get("pregnant"):
        out.append(str(_l("Pregnant")))
    if rule.get("living_alone"):
        out.append(str(_l("Living alone")))
    return out or [str(_l("All active residents"))]


def _page(template: str, **context):
    return render_template(
        template,
        category_labels=CATEGORY_LABELS,
        status_labels=STATUS_LABELS,
        reply_kind_labels=REPLY_KIND_LABELS,
        channel_labels=CHANNEL_LABELS,
        placeholders=service.PLACEHOLDERS,
        to_local=to_local,
        **context,
    )


@bp.route("/")
@allow("author")
def index():
    notices = db.session.scalars(
        select(Notice).order_by(Notice.created_at.desc(), Notice.id.desc()).limit(200)
    )
    return _page("notices/author_list.html", notices=list(notices))


def _edit(notice: Notice | None):
    form = NoticeForm(wards=_wards())
    if request.method == "GET" and notice is not None:
        form.load(notice)
    if form.validate_on_submit():
        target = notice or Notice(created_by=current_user.login_id, status="draft")
        form.save(target)
        try:
            service.validate(target)
        except service.NoticeError as exc:
            form.body_ja.errors = [*form.body_ja.errors, _error(exc)]
        else:
            if notice is None:
                db.session.add(target)
            db.session.commit()
            flash(str(_l("Draft saved.")), "success")
            return redirect(url_for("notice_author.show", notice_id=target.id))
        db.session.rollback()
    try:
        count = service.recipient_count(rule_from(form.rule_values()))
    except targeting.RuleError:
        count = None
    return _page("notices/author_edit.html", form=form, notice=notice, count=count)


@bp.route("/new", methods=["GET", "POST"])
@allow("author")
def new():
    return _edit(None)


@bp.route("/<int:notice_id>/edit", methods=["GET", "POST"])
@allow("author")
def edit(notice_id: int):
    notice = _notice(notice_id)
    if notice.status != "draft":
        flash(_error(service.NoticeError("not_draft")), "error")
        return redirect(url_for("notice_author.show", notice_id=notice.id))
    return _edit(notice)


@bp.route("/count")
@allow("author")
def count():
    """How many residents the form's conditions select today (the live count)."""
    try:
        rule = rule_from(request.args)
    except (targeting.RuleError, ValueError) as exc:
        field = exc.field if isinstance(exc, targeting.RuleError) else "rule"
        return jsonify(error=field), 400
    return jsonify(count=service.recipient_count(rule))


@bp.route("/<int:notice_id>")
@allow("author")
def show(notice_id: int):
    notice = _notice(notice_id)
    rule = targeting.parse(notice.rule or "{}")
    count = notice.targeted if notice.targeted is not None else service.recipient_count(rule)
    return _page(
        "notices/author_show.html",
        notice=notice,
        rule_text=_describe_rule(rule),
        count=count,
        options=service.reply_options(notice),
    )


@bp.route("/<int:notice_id>/preview")
@allow("author")
def preview(notice_id: int):
    """The notice as a chosen resident would see it; reading their data is recorded."""
    notice = _notice(notice_id)
    atena_no = request.args.get("atena_no", "").strip()
    person = db.session.scalar(select(Resident).where(Resident.atena_no == atena_no)) if atena_no else None
    if person is None:
        flash(str(_l("No resident has this address number (宛名番号).")), "error")
        return redirect(url_for("notice_author.show", notice_id=notice.id))
    access.record(
        staff_actor(), resident_id=person.id, data_items=PREVIEW_ITEMS, purpose=f"notice_preview: {notice.id}"
    )
    rendered = {lang: service.render(notice, person, lang) for lang in ("ja", "en")}
    db.session.commit()
    return _page(
        "notices/author_preview.html",
        notice=notice,
        person=person,
        rendered=rendered,
        options=service.reply_options(notice),
    )


def _action(notice_id: int, act) -> object:
    notice = _notice(notice_id)
    try:
        message = act(notice)
    except (service.NoticeError, targeting.RuleError) as exc:
        db.session.rollback()
        flash(_error(exc), "error")
    else:
        db.session.commit()
        flash(str(message), "success")
        if notice.status == "approved" and (notice.send_at is None or notice.send_at <= utcnow()):
            _send(notice)
    return redirect(url_for("notice_author.show", notice_id=notice_id))


@bp.route("/<int:notice_id>/submit", methods=["POST"])
@allow("author")
def submit(notice_id: int):
    def act(notice):
        service.submit(notice)
        return _l("Submitted for approval. Another author must approve it.")

    return _action(notice_id, act)


@bp.route("/<int:notice_id>/approve", methods=["POST"])
@allow("author")
def approve(notice_id: int):
    def act(notice):
        service.approve(notice, current_user.login_id)
        return _l("Approved.")

    return _action(notice_id, act)


@bp.route("/<int:notice_id>/cancel", methods=["POST"])
@allow("author")
def cancel(notice_id: int):
    def act(notice):
        service.cancel(notice, current_user.login_id)
        return _l("Cancelled. It will not be sent.")

    return _action(notice_id, act)


@bp.route("/<int:notice_id>/figures")
@allow("author")
def figures(notice_id: int):
    notice = _notice(notice_id)
    data = service.figures(notice)
    targeted = data["targeted"]
    channels = {
        ch: {st: data["channels"].get((ch, st), 0) for st in ("queued", "sent", "failed")} for ch in CHANNELS
    }
    lang = str(get_locale())
    options = [
        (o["label_en"] if lang == "en" else o["label_ja"], data["replies"].get(o["code"], 0))
        for o in service.reply_options(notice)
    ]
    by_day = []
    running = 0
    for day, n in data["opened_by_day"]:
        running += n
        by_day.append((str(day), n, running))
    return _page(
        "notices/author_figures.html",
        notice=notice,
        targeted=targeted,
        opened=data["opened"],
        opened_pct=round(100 * data["opened"] / targeted, 1) if targeted else 0,
        channels=channels,
        options=options,
        replied=sum(data["replies"].values()),
        by_day=by_day,
    )
