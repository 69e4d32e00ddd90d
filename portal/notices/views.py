"""The resident's PO box (電子私書箱): the inbox, a notice (the read is recorded), one-click
replies, and notification settings. ``init_app`` registers this and the author's console."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy import select

from portal.authz import allow
from portal.extensions import db
from portal.models_base import utcnow
from portal.notices import service
from portal.notices.forms import CATEGORY_LABELS, CHANNEL_LABELS
from portal.notices.models import CATEGORIES, CHANNELS, NotificationSetting
from portal.registry.models import Resident

bp = Blueprint("notices", __name__, url_prefix="/me/notices", template_folder="templates")

REPLY_ERRORS = {
    "reply_closed": _l("The deadline for replies has passed."),
    "reply_option": _l("Choose one of the answers shown."),
}


def _resident() -> Resident:
    return current_user.resident


def _open(delivery_id: int):
    try:
        return service.open_delivery(_resident(), delivery_id, current_user.id)
    except service.NoticeError:
        abort(404)


@bp.route("/")
@allow("resident")
def inbox():
    category = request.args.get("category", "")
    query = request.args.get("q", "").strip()[:100]
    rows = service.inbox(_resident(), category=category or None, query=query or None)
    lang = str(get_locale())
    values: dict[int, dict[str, str]] = {}
    items = []
    for delivery, notice in rows:
        if delivery.resident_id not in values:
            values[delivery.resident_id] = service.placeholders_for(
                db.session.get(Resident, delivery.resident_id)
            )
        title = notice.title_en if lang == "en" else notice.title_ja
        items.append((delivery, notice, service.fill(title, values[delivery.resident_id])))
    return render_template(
        "notices/inbox.html",
        items=items,
        category=category if category in CATEGORIES else "",
        query=query,
        category_labels=CATEGORY_LABELS,
        unread=service.unread_count(_resident()),
        tz=service.TOKYO,
    )


def _notice_page(delivery, error: str | None = None):
    notice = delivery.notice
    addressee = db.session.get(Resident, delivery.resident_id)
    rendered = service.render(notice, addressee, str(get_locale()))
    reply = service.current_reply(delivery)
    closed = notice.reply_deadline is not None and notice.reply_deadline < utcnow()
    return render_template(
        "notices/notice.html",
        delivery=delivery,
        notice=notice,
        rendered=rendered,
        addressee=addressee,
        proxy=addressee.id != _resident().id,
        options=service.reply_options(notice),
        reply=reply,
        closed=closed,
        error=error,
        category_labels=CATEGORY_LABELS,
        tz=service.TOKYO,
    )


@bp.route("/<int:delivery_id>")
@allow("resident")
def show(delivery_id: int):
    delivery = _open(delivery_id)
    db.session.commit()
    return _notice_page(delivery)


@bp.route("/<int:delivery_id>/reply", methods=["POST"])
@allow("resident")
def reply(delivery_id: int):
    delivery = _open(delivery_id)
    try:
        service.answer(delivery, request.form.get("option", ""), current_user.id)
    except service.NoticeError as exc:
        db.session.commit()  # the read stays recorded
        return _notice_page(delivery, error=str(REPLY_ERRORS.get(exc.code, exc.code))), exc.status
    db.session.commit()
    flash(str(_l("Your answer has been sent.")), "success")
    return redirect(url_for("notices.show", delivery_id=delivery.id))


@bp.route("/settings", methods=["GET", "POST"])
@allow("resident")
def settings():
    saved = {
        (s.category, s.channel): s
        for s in db.session.scalars(
            select(NotificationSetting).where(NotificationSetting.account_id == current_user.id)
        )
    }
    if request.method == "POST":
        for category in CATEGORIES:
            for channel in CHANNELS:
                enabled = request.form.get(f"{category}-{channel}") == "on"
                row = saved.get((category, channel))
                if row is None:
                    row = NotificationSetting(account_id=current_user.id, category=category, channel=channel)
                    db.session.add(row)
                row.enabled = enabled
        db.session.commit()
        flash(str(_l("Your notification settings have been saved.")), "success")
        return redirect(url_for("notices.settings"))
    enabled = {
        (c, ch): saved[(c, ch)].enabled if (c, ch) in saved else True for c in CATEGORIES for ch in CHANNELS
    }
    return render_template(
        "notices/settings.html",
        categories=CATEGORIES,
        channels=CHANNELS,
        enabled=enabled,
        category_labels=CATEGORY_LABELS,
        channel_labels=CHANNEL_LABELS,
    )


def paragraphs(text: str) -> Markup:
    """Plain text as paragraphs: every character escaped, blank lines split paragraphs, single
    line breaks kept."""
    parts = [p for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return Markup("").join(
        Markup("<p>%s</p>") % Markup("<br>").join(escape(line) for line in p.strip("\n").split("\n"))
        for p in parts
    )


def unread_for_nav() -> int | None:
    """The header's unread count for a linked resident (None for anyone else)."""
    if not (current_user.is_authenticated and "resident" in current_user.principals()):
        return None
    return service.unread_count(current_user.resident)


def init_app(app) -> None:
    from portal.notices.author_views import bp as author_bp

    app.register_blueprint(bp)
    app.register_blueprint(author_bp)
    app.jinja_env.filters["paragraphs"] = paragraphs
    app.jinja_env.globals["notices_unread"] = unread_for_nav
