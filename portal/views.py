"""Site-wide pages: landing page, language choice, health check."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_login import current_user

from portal.accounts.views import safe_next
from portal.authz import allow
from portal.extensions import db

bp = Blueprint("site", __name__)


@bp.route("/")
@allow("public")
def index():
    if current_user.is_authenticated:
        return redirect(url_for("staff.home" if current_user.kind == "staff" else "resident.home"))
    return render_template("index.html")


@bp.route("/lang", methods=["POST"])
@allow("public")
def set_language():
    lang = request.form.get("lang", "")
    if lang not in current_app.config["LANGUAGES"]:
        lang = current_app.config["BABEL_DEFAULT_LOCALE"]
    session["lang"] = lang
    if current_user.is_authenticated and current_user.kind == "resident":
        current_user.locale = lang
        db.session.commit()
    response = redirect(safe_next(url_for("site.index")))
    response.set_cookie(
        "lang",
        lang,
        max_age=365 * 24 * 3600,
        samesite="Lax",
        httponly=True,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response
