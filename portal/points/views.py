"""Resident pages: balance, every upcoming expiry, pending points, history, tier, partners opted
into, the member QR code, the catalogue and the resident's coupons."""

from __future__ import annotations

from datetime import datetime

import segno
from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.authz import allow
from portal.extensions import db
from portal.points import catalogue, ledger, partners, rules, tiers
from portal.points.ledger import JST, PointsError
from portal.points.messages import message_for

bp = Blueprint("points", __name__, template_folder="templates", url_prefix="/points")

KIND_LABELS = {
    "earn": _l("Earned"),
    "redeem": _l("Used"),
    "expire": _l("Expired"),
    "reverse": _l("Reversed"),
    "adjust": _l("Adjusted"),
}
PAGE = 20


def _rid() -> int:
    return current_user.resident_id


@bp.route("/")
@allow("resident")
def home():
    rid = _rid()
    account = ledger.account_for(rid)
    db.session.commit()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    entries = ledger.history(rid, limit=PAGE + 1, offset=(page - 1) * PAGE)
    tier = tiers.BY_CODE.get(account.tier, tiers.TIERS[0])
    earned = tiers.earned_last_year(account.id)
    return render_template(
        "points/home.html",
        balance=ledger.balance(rid),
        entries=entries[:PAGE],
        more=len(entries) > PAGE,
        page=page,
        reversed=ledger.reversed_ids([e.id for e in entries]),
        tier=tier,
        tiers=tiers.TIERS,
        earned=earned,
        next_tier=tiers.next_tier(earned),
        rule_labels=rules.LABELS,
        kind_labels=KIND_LABELS,
        partner_names={p.id: p.name for p in partners.active_partners()},
    )


@bp.route("/partners", methods=["GET", "POST"])
@allow("resident")
def partner_list():
    rid = _rid()
    if request.method == "POST":
        partner_id = request.form.get("partner", type=int) or 0
        try:
            if request.form.get("action") == "join":
                partners.opt_in(rid, partner_id)
                flash(_("You joined. Show your member QR code or your card at the partner."), "success")
            else:
                partners.opt_out(rid, partner_id)
                flash(_("You left. The partner can no longer see your points."), "info")
        except PointsError as exc:
            db.session.rollback()
            flash(str(message_for(exc.code)), "error")
            return redirect(url_for("points.partner_list"))
        db.session.commit()
        return redirect(url_for("points.partner_list"))
    return render_template(
        "points/partners.html", partners=partners.active_partners(), memberships=partners.memberships_of(rid)
    )


@bp.route("/qr")
@allow("resident")
def member_qr():
    """A signed member QR code, valid for a few minutes: partners scan it to find the member."""
    token = partners.member_qr_token(_rid())
    db.session.commit()
    qr = segno.make(token, error="m").svg_data_uri(scale=5)
    return render_template(
        "points/qr.html",
        qr=qr,
        token=token,
        minutes=current_app.config["POINTS_QR_SECONDS"] // 60,
        joined=[m for m in partners.memberships_of(_rid()).values() if m.active],
    )


@bp.route("/catalogue", methods=["GET", "POST"])
@allow("resident")
def catalogue_page():
    rid = _rid()
    if request.method == "POST":
        item_id = request.form.get("item", type=int) or 0
        try:
            coupon = catalogue.redeem_item(rid, item_id)
        except PointsError as exc:
            db.session.rollback()
            flash(str(message_for(exc.code)), "error")
            return redirect(url_for("points.catalogue_page"))
        db.session.commit()
        flash(_("Done. Your coupon code is %(code)s.", code=coupon.code), "success")
        return redirect(url_for("points.coupons"))
    return render_template("points/catalogue.html", items=catalogue.items(), balance=ledger.balance(rid))


@bp.route("/coupons")
@allow("resident")
def coupons():
    return render_template(
        "points/coupons.html", coupons=catalogue.coupons_of(_rid()), today=ledger.local_date()
    )


def jst(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def init_app(app: Flask) -> None:
    app.jinja_env.filters["jst"] = jst
    app.jinja_env.globals["points_message"] = message_for
    app.register_blueprint(bp)
