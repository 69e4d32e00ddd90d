"""Staff pages for points: earning rules (amounts and caps), volunteer activities with attendance
by card or by an uploaded list, health check-up lists, the catalogue, partners and their OAuth2
clients, monthly settlement, and using a facility coupon at the counter."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.access import service as access
from portal.authz import allow
from portal.extensions import db
from portal.models_base import utcnow
from portal.points import catalogue, oauth, partners, rules
from portal.points.ledger import PointsError, local_date
from portal.points.messages import message_for
from portal.points.models import (
    SCOPES,
    Attendance,
    CatalogueItem,
    OAuthClient,
    Partner,
    VolunteerActivity,
)
from portal.staff.views import staff_actor

bp = Blueprint("points_staff", __name__, template_folder="templates", url_prefix="/staff/points")

ORGANISERS = ("counter", "admin")
FACILITY = ("counter", "library", "admin")
MAX_UPLOAD = 512 * 1024


def _actor() -> str:
    return f"staff:{current_user.login_id}"


def _int(name: str, errors: dict, *, minimum: int = 0, required: bool = True) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw and not required:
        return None
    try:
        value = int(raw)
    except ValueError:
        errors[name] = _("Enter a whole number.")
        return None
    if value < minimum:
        errors[name] = _("Enter a number of at least %(n)s.", n=minimum)
        return None
    return value


@bp.route("/")
@allow("counter", "library", "admin")
def index():
    return render_template("points/staff_index.html")


# --- earning rules --------------------------------------------------------------------------------


@bp.route("/rules", methods=["GET", "POST"])
@allow("admin")
def rules_page():
    items = rules.ensure_rules(_actor())
    errors: dict[str, str] = {}
    if request.method == "POST":
        code = request.form.get("code", "")
        if code not in rules.DEFAULTS:
            abort(400)
        points = _int("points", errors, minimum=1)
        cap = _int("cap", errors, minimum=0, required=False)
        period = request.form.get("period", "")
        if period not in rules.PERIODS:
            errors["period"] = _("Choose a period.")
        if not errors:
            assert points is not None
            rules.update_rule(
                code,
                points=points,
                period=period,
                cap=cap,
                active=bool(request.form.get("active")),
                actor=_actor(),
            )
            db.session.commit()
            flash(_("The rule was saved."), "success")
            return redirect(url_for("points_staff.rules_page"))
        db.session.rollback()
        flash(_("The rule was not saved. Check the fields marked below."), "error")
    else:
        db.session.commit()
    return render_template(
        "points/staff_rules.html",
        items=items,
        labels=rules.LABELS,
        periods=rules.PERIODS,
        errors=errors,
        edited=request.form.get("code") if errors else None,
        form=request.form,
    )


# --- volunteer activities -------------------------------------------------------------------------


@bp.route("/activities", methods=["GET", "POST"])
@allow(*ORGANISERS)
def activities():
    errors: dict[str, str] = {}
    if request.method == "POST":
        title = request.form.get("title", "").strip()
        organiser = request.form.get("organiser", "").strip()
        if not title or len(title) > 120:
            errors["title"] = _("Enter the activity's name (up to 120 characters).")
        if not organiser or len(organiser) > 120:
            errors["organiser"] = _("Enter the organiser (up to 120 characters).")
        try:
            held_on = date.fromisoformat(request.form.get("held_on", ""))
        except ValueError:
            errors["held_on"] = _("Enter the date as YYYY-MM-DD.")
        points = _int("points", errors, minimum=1, required=False)
        if not errors:
            row = VolunteerActivity(
                title=title,
                organiser=organiser,
                held_on=held_on,
                points=points,
                created_by=current_user.login_id,
            )
            db.session.add(row)
            db.session.commit()
            flash(_("The activity was added."), "success")
            return redirect(url_for("points_staff.activity", activity_id=row.id))
    rows = db.session.scalars(select(VolunteerActivity).order_by(VolunteerActivity.held_on.desc())).all()
    return render_template("points/staff_activities.html", rows=rows, errors=errors, form=request.form)


def _terminals():
    from portal.cardid.models import Terminal

    return list(
        db.session.scalars(
            select(Terminal)
            .where(Terminal.kind.in_(("counter", "partner")), Terminal.active)
            .order_by(Terminal.code)
        )
    )


@bp.route("/activities/<int:activity_id>", methods=["GET", "POST"])
@allow(*ORGANISERS)
def activity(activity_id: int):
    row = db.session.get(VolunteerActivity, activity_id) or abort(404)
    terminals = _terminals()
    if request.method == "POST":
        chosen = request.form.get("terminal", "")
        if chosen in {t.code for t in terminals}:
            session["points_terminal"] = chosen
        return redirect(url_for("points_staff.activity", activity_id=row.id))
    session["points_activity"] = row.id
    present = db.session.execute(
        select(Attendance, VolunteerActivity)
        .join(VolunteerActivity, VolunteerActivity.id == Attendance.activity_id)
        .where(Attendance.activity_id == row.id)
        .order_by(Attendance.at)
    ).all()
    return render_template(
        "points/staff_activity.html",
        activity=row,
        attendances=[a for a, _ in present],
        terminals=terminals,
        terminal=session.get("points_terminal"),
        agent_url=current_app.config["AGENT_ORIGIN"],
        rule=rules.rule("volunteer"),
    )


@bp.route("/attendance/<challenge_id>")
@allow(*ORGANISERS)
def attendance_scanned(challenge_id: str):
    """After the card was read at the organiser's terminal: confirm attendance, award points."""
    from portal.cardid.views import scanned_challenge

    ch = scanned_challenge(challenge_id, ("points_attendance",))
    activity_id = session.get("points_activity")
    row = db.session.get(VolunteerActivity, activity_id) if activity_id else None
    if row is None:
        abort(404)
    if ch.consumed_at is not None:
        return redirect(url_for("points_staff.activity", activity_id=row.id))
    ch.consumed_at = utcnow()
    assert ch.resident_id is not None
    try:
        result = rules.attend(row, ch.resident_id, via="card", confirmed_by=current_user.login_id)
    except PointsError as exc:
        db.session.commit()
        flash(str(message_for(exc.code)), "error")
        return redirect(url_for("points_staff.activity", activity_id=row.id))
    db.session.commit()
    if result.refused:
        flash(_("Attendance confirmed. No points: %(why)s", why=message_for(result.refused)), "info")
    else:
        flash(_("Attendance confirmed: %(points)s points.", points=result.points), "success")
    return redirect(url_for("points_staff.activity", activity_id=row.id))


def _upload() -> bytes | None:
    f = request.files.get("list")
    if f is None or not f.filename:
        return None
    data = f.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        raise PointsError("list_too_long")
    return data


@bp.route("/activities/<int:activity_id>/list", methods=["POST"])
@allow(*ORGANISERS)
def attendance_list(activity_id: int):
    """An uploaded CSV of attendees (宛名番号): checked in full first; nothing is written unless
    every row is good."""
    row = db.session.get(VolunteerActivity, activity_id) or abort(404)
    try:
        raw = _upload()
        if raw is None:
            flash(_("Choose a CSV file."), "error")
            return redirect(url_for("points_staff.activity", activity_id=row.id))
        parsed = rules.parse_list(raw)
    except PointsError as exc:
        flash(str(message_for(exc.code)), "error")
        return redirect(url_for("points_staff.activity", activity_id=row.id))
    bad = [r for r in parsed if r.error]
    if bad:
        return render_template(
            "points/staff_list_errors.html",
            rows=bad,
            back=url_for("points_staff.activity", activity_id=row.id),
        ), 400
    added = skipped = 0
    for item in parsed:
        assert item.resident is not None
        try:
            rules.attend(row, item.resident.id, via="list", confirmed_by=current_user.login_id)
            added += 1
        except PointsError:
            skipped += 1
    db.session.commit()
    flash(
        _("%(added)s attendances confirmed, %(skipped)s already there.", added=added, skipped=skipped),
        "success",
    )
    return redirect(url_for("points_staff.activity", activity_id=row.id))


@bp.route("/checkups", methods=["GET", "POST"])
@allow("admin")
def checkups():
    """Health check-up points from the health centre's list (once per resident per fiscal year)."""
    if request.method == "POST":
        try:
            raw = _upload()
            if raw is None:
                flash(_("Choose a CSV file."), "error")
                return redirect(url_for("points_staff.checkups"))
            parsed = rules.parse_list(raw)
        except PointsError as exc:
            flash(str(message_for(exc.code)), "error")
            return redirect(url_for("points_staff.checkups"))
        bad = [r for r in parsed if r.error]
        if bad:
            return render_template(
                "points/staff_list_errors.html", rows=bad, back=url_for("points_staff.checkups")
            ), 400
        counts = rules.import_checkups(parsed, actor=_actor())
        db.session.commit()
        flash(
            _("%(awarded)s residents got check-up points; %(skipped)s had them already this year.", **counts),
            "success",
        )
        return redirect(url_for("points_staff.checkups"))
    return render_template("points/staff_checkups.html", rule=rules.rule("health_checkup"))


# --- catalogue ------------------------------------------------------------------------------------


@bp.route("/catalogue", methods=["GET", "POST"])
@allow("admin")
def catalogue_admin():
    errors: dict[str, str] = {}
    all_partners = db.session.scalars(select(Partner).order_by(Partner.name)).all()
    if request.method == "POST":
        form = request.form
        code = form.get("code", "").strip()
        if not code or len(code) > 32 or not code.replace("-", "").replace("_", "").isalnum():
            errors["code"] = _("Enter a short code (letters, digits, - and _).")
        elif db.session.scalar(select(CatalogueItem.id).where(CatalogueItem.code == code)):
            errors["code"] = _("An item with this code exists.")
        kind = form.get("kind", "")
        if kind not in catalogue.KINDS:
            errors["kind"] = _("Choose a kind.")
        names = {k: form.get(k, "").strip() for k in ("name_ja", "name_en", "place")}
        for key, value in names.items():
            if not value or len(value) > 120:
                errors[key] = _("Enter up to 120 characters.")
        points = _int("points", errors, minimum=1)
        stock = _int("stock", errors, minimum=0, required=False)
        limit = _int("per_resident_limit", errors, minimum=1, required=False)
        valid_days = _int("valid_days", errors, minimum=1)
        partner_id = form.get("partner_id", type=int)
        if kind == "partner_discount" and partner_id not in {p.id for p in all_partners}:
            errors["partner_id"] = _("Choose the partner for a partner discount.")
        if not errors:
            db.session.add(
                CatalogueItem(
                    code=code,
                    kind=kind,
                    points=points,
                    stock=stock,
                    per_resident_limit=limit,
                    valid_days=valid_days,
                    partner_id=partner_id if kind == "partner_discount" else None,
                    **names,
                )
            )
            db.session.commit()
            flash(_("The item was added."), "success")
            return redirect(url_for("points_staff.catalogue_admin"))
    return render_template(
        "points/staff_catalogue.html",
        items=catalogue.items(active_only=False),
        partners=all_partners,
        errors=errors,
        form=request.form,
        kinds=catalogue.KINDS,
    )


@bp.route("/catalogue/<int:item_id>", methods=["POST"])
@allow("admin")
def catalogue_item(item_id: int):
    item = db.session.get(CatalogueItem, item_id) or abort(404)
    errors: dict[str, str] = {}
    stock = _int("stock", errors, minimum=0, required=False)
    if errors:
        flash(errors["stock"], "error")
        return redirect(url_for("points_staff.catalogue_admin"))
    item.stock = stock
    item.active = bool(request.form.get("active"))
    db.session.commit()
    flash(_("The item was saved."), "success")
    return redirect(url_for("points_staff.catalogue_admin"))


# --- coupons at the facility ----------------------------------------------------------------------


@bp.route("/coupons", methods=["GET", "POST"])
@allow(*FACILITY)
def coupon_use():
    """A resident shows a facility coupon code; staff use it, once."""
    used = None
    error = None
    if request.method == "POST":
        try:
            used = catalogue.use_coupon(request.form.get("code", ""), actor=_actor(), partner_id=None)
        except PointsError as exc:
            db.session.rollback()
            error = message_for(exc.code)
        else:
            access.record(
                staff_actor(),
                resident_id=_resident_of(used.account_id),
                data_items=["points"],
                purpose="points_coupon: facility",
            )
            db.session.commit()
    return render_template(
        "points/staff_coupons.html", used=used, error=error, code=request.form.get("code", "")
    )


def _resident_of(account_id: int) -> int:
    from portal.points.models import PointsAccount

    account = db.session.get(PointsAccount, account_id)
    assert account is not None
    return account.resident_id


# --- partners, clients, settlement ----------------------------------------------------------------


@bp.route("/partners", methods=["GET", "POST"])
@allow("admin")
def partners_admin():
    errors: dict[str, str] = {}
    if request.method == "POST":
        code = request.form.get("code", "").strip()
        name = request.form.get("name", "").strip()
        if not code or len(code) > 32 or not code.replace("-", "").isalnum():
            errors["code"] = _("Enter a short code (letters, digits and -).")
        elif db.session.scalar(select(Partner.id).where(Partner.code == code)):
            errors["code"] = _("A partner with this code exists.")
        if not name or len(name) > 120:
            errors["name"] = _("Enter the partner's name (up to 120 characters).")
        holding = _int("holding_days", errors, minimum=0)
        if not errors:
            db.session.add(Partner(code=code, name=name, holding_days=holding))
            db.session.commit()
            flash(_("The partner was added. Now make an API client for it."), "success")
            return redirect(url_for("points_staff.partners_admin"))
    rows = db.session.scalars(select(Partner).order_by(Partner.name)).all()
    clients = db.session.scalars(select(OAuthClient).order_by(OAuthClient.id)).all()
    return render_template(
        "points/staff_partners.html",
        rows=rows,
        clients=clients,
        errors=errors,
        form=request.form,
        scopes=SCOPES,
        month=local_date().strftime("%Y-%m"),
    )


@bp.route("/partners/<int:partner_id>/clients", methods=["POST"])
@allow("admin")
def new_client(partner_id: int):
    partner = db.session.get(Partner, partner_id) or abort(404)
    scopes = [s for s in request.form.getlist("scope") if s in SCOPES]
    if not scopes:
        flash(_("Choose at least one scope."), "error")
        return redirect(url_for("points_staff.partners_admin"))
    client, secret = oauth.new_client(partner, scopes)
    db.session.commit()
    return render_template("points/staff_client.html", partner=partner, client=client, secret=secret)


@bp.route("/clients/<int:client_id>/revoke", methods=["POST"])
@allow("admin")
def revoke_client(client_id: int):
    client = db.session.get(OAuthClient, client_id) or abort(404)
    client.revoked_at = utcnow()
    db.session.commit()
    flash(_("The client was revoked; its tokens stop working now."), "info")
    return redirect(url_for("points_staff.partners_admin"))


@bp.route("/partners/<int:partner_id>/settlement")
@allow("admin")
def settlement(partner_id: int):
    partner = db.session.get(Partner, partner_id) or abort(404)
    month = request.args.get("month", "")
    try:
        body = partners.settlement_csv(partner, month)
    except PointsError as exc:
        flash(str(message_for(exc.code)), "error")
        return redirect(url_for("points_staff.partners_admin"))
    return Response(
        body.encode("utf-8-sig"),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="points-settlement-{partner.code}-{month}.csv"'
        },
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
