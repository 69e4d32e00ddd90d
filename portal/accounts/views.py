"""Login, registration, e-mail verification, password reset, TOTP and register linking."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user

from portal import mail, security
from portal.accounts import forms, service
from portal.authz import STAFF_ROLES, allow
from portal.extensions import db, limiter

bp = Blueprint("accounts", __name__)

ERRORS = {
    "email_taken": _l("An account with this e-mail address already exists. Log in or reset your password."),
    "token_expired": _l("This link has expired. Ask for a new one."),
    "token_invalid": _l("This link is not valid or was already used."),
    "wrong_password": _l("The password is not correct."),
    "totp_wrong": _l("The code is not correct. Check the time on your phone and try again."),
    "already_linked": _l("Your account is already linked to your resident record."),
    "code_invalid": _l("The registration code or the date of birth is not correct, or the code has expired."),
    "not_active_resident": _l("This resident record is not active. Please ask at a ward office counter."),
    "resident_has_account": _l(
        "This resident already has a portal account. Please ask at a ward office counter."
    ),
    "unknown_role": _l("Unknown role."),
}


def safe_next(default: str) -> str:
    """Only same-site relative paths are followed after login."""
    target = request.args.get("next") or ""
    parts = urlsplit(target)
    if target.startswith("/") and not target.startswith("//") and not parts.netloc and not parts.scheme:
        return target
    return default


def fresh_required(view):
    """Sensitive actions need a password given in the last few minutes."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not security.is_fresh():
            flash(_("Please confirm your password to continue."), "info")
            return redirect(url_for("accounts.reauth", next=request.path))
        return view(*args, **kwargs)

    return wrapper


def _start_session(user) -> None:
    session.clear()  # a fresh session id's contents: nothing carried over from before login
    login_user(user)
    security.mark_fresh()


def _send_verification(account) -> None:
    link = url_for("accounts.verify_email", token=service.make_email_token(account), _external=True)
    mail.send(
        account.email,
        _("Confirm your e-mail address"),
        _("Open this link to confirm your e-mail address for the city portal:") + f"\n{link}\n",
    )


def _password_login(form, authenticate, login_field, failure: str, home: str, template: str):
    """The shared login flow of residents and staff: password, then the TOTP code if turned on."""
    if session.pop("timed_out", False):
        flash(_("You were logged out because you were inactive for a while."), "info")
    if form.validate_on_submit():
        user = authenticate(login_field.data, form.password.data)
        if user is None or not service.verify_totp(user, form.totp.data or ""):
            current_app.logger.info("login failed (%s)", template)
            form.password.errors.append(failure)
        else:
            db.session.commit()
            _start_session(user)
            current_app.logger.info("%s login ok id=%s", user.kind, user.id)
            return redirect(safe_next(url_for(home)))
    return render_template(template, form=form)


@bp.route("/login", methods=["GET", "POST"])
@allow("public")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    form = forms.LoginForm()
    return _password_login(
        form,
        service.authenticate_resident,
        form.email,
        _("The e-mail address, password or code is not correct."),
        "resident.home",
        "accounts/login.html",
    )


@bp.route("/logout", methods=["POST"])
@allow("public")
def logout():
    was_staff = current_user.is_authenticated and current_user.kind == "staff"
    logout_user()
    session.clear()
    flash(_("You have logged out."), "info")
    return redirect(url_for("accounts.staff_login" if was_staff else "site.index"))


@bp.route("/register", methods=["GET", "POST"])
@allow("public")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def register():
    form = forms.RegisterForm()
    if form.validate_on_submit():
        try:
            account = service.register(form.email.data, form.password.data, locale=_locale())
        except service.AccountError as exc:
            form.email.errors.append(ERRORS[exc.code])
        else:
            db.session.commit()
            _send_verification(account)
            _start_session(account)
            flash(_("We sent you an e-mail. Open the link in it to confirm your address."), "info")
            return redirect(url_for("accounts.settings"))
    return render_template("accounts/register.html", form=form)


def _locale() -> str:
    from flask_babel import get_locale

    return str(get_locale())


@bp.route("/verify/<token>")
@allow("public")
def verify_email(token: str):
    try:
        service.verify_email_token(token)
    except service.AccountError as exc:
        flash(ERRORS[exc.code], "error")
    else:
        db.session.commit()
        flash(_("Your e-mail address is confirmed."), "success")
    return redirect(url_for("accounts.settings" if current_user.is_authenticated else "accounts.login"))


@bp.route("/account/verify/resend", methods=["POST"])
@allow("account")
@limiter.limit("3 per hour")
def resend_verification():
    if current_user.email_verified_at is None:
        _send_verification(current_user)
    flash(_("We sent you an e-mail. Open the link in it to confirm your address."), "info")
    return redirect(url_for("accounts.settings"))


@bp.route("/forgot", methods=["GET", "POST"])
@allow("public")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def forgot():
    form = forms.ForgotForm()
    if form.validate_on_submit():
        account = service.find_account(form.email.data)
        if account is not None and account.active:
            link = url_for("accounts.reset", token=service.make_reset_token(account), _external=True)
            mail.send(
                account.email,
                _("Reset your password"),
                _("Open this link within an hour to choose a new password:") + f"\n{link}\n",
            )
        # The same answer whether or not the address has an account.
        flash(_("If the address has an account, we sent it a link to reset the password."), "info")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/forgot.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
@allow("public")
def reset(token: str):
    form = forms.ResetForm()
    if form.validate_on_submit():
        try:
            service.reset_password(token, form.password.data)
        except service.AccountError as exc:
            flash(ERRORS[exc.code], "error")
            return redirect(url_for("accounts.forgot"))
        db.session.commit()
        logout_user()
        flash(_("Your password was changed. Please log in."), "success")
        return redirect(url_for("accounts.login"))
    return render_template("accounts/reset.html", form=form)


@bp.route("/account")
@allow("account")
def settings():
    return render_template("accounts/settings.html")


@bp.route("/account/password", methods=["GET", "POST"])
@allow("account")
def change_password():
    form = forms.ChangePasswordForm()
    if form.validate_on_submit():
        try:
            service.change_password(current_user, form.current.data, form.password.data)
        except service.AccountError as exc:
            form.current.errors.append(ERRORS[exc.code])
        else:
            db.session.commit()
            login_user(current_user._get_current_object())  # re-issue the session: new version
            security.mark_fresh()
            flash(_("Your password was changed."), "success")
            return redirect(url_for("accounts.settings"))
    return render_template("accounts/password.html", form=form)


@bp.route("/reauth", methods=["GET", "POST"])
@allow("account", *STAFF_ROLES)
def reauth():
    form = forms.ConfirmPasswordForm()
    if form.validate_on_submit():
        if service.check_password(current_user.password_hash, form.password.data):
            security.mark_fresh()
            return redirect(safe_next(url_for("site.index")))
        form.password.errors.append(ERRORS["wrong_password"])
    return render_template("accounts/reauth.html", form=form)


@bp.route("/account/totp", methods=["GET", "POST"])
@allow("account")
@fresh_required
def totp():
    form = forms.TotpForm()
    if current_user.totp_enabled:
        if form.validate_on_submit():
            service.disable_totp(current_user)
            db.session.commit()
            flash(_("Two-step login is turned off."), "info")
            return redirect(url_for("accounts.settings"))
        return render_template("accounts/totp.html", form=form, secret=None, uri=None, qr=None)
    secret = session.get("totp_setup") or service.new_totp_secret()
    session["totp_setup"] = secret
    if form.validate_on_submit():
        try:
            service.enable_totp(current_user, secret, form.code.data)
        except service.AccountError as exc:
            form.code.errors.append(ERRORS[exc.code])
        else:
            session.pop("totp_setup", None)
            db.session.commit()
            flash(_("Two-step login is turned on."), "success")
            return redirect(url_for("accounts.settings"))
    uri = service.totp_uri(secret, current_user.email)
    import segno

    qr = segno.make(uri, error="m").svg_data_uri(scale=4)
    return render_template("accounts/totp.html", form=form, secret=secret, uri=uri, qr=qr)


@bp.route("/account/link", methods=["GET", "POST"])
@allow("account")
@limiter.limit("10 per hour", methods=["POST"])
def link():
    form = forms.LinkForm()
    if form.validate_on_submit():
        try:
            service.link_with_activation_code(current_user, form.code.data, form.birth_date.data)
        except service.AccountError as exc:
            form.code.errors.append(ERRORS[exc.code])
        else:
            db.session.commit()
            flash(_("Your account is now linked to your resident record."), "success")
            return redirect(url_for("resident.home"))
    return render_template("accounts/link.html", form=form)


@bp.route("/staff/login", methods=["GET", "POST"])
@allow("public")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def staff_login():
    form = forms.StaffLoginForm()
    return _password_login(
        form,
        service.authenticate_staff,
        form.login_id,
        _("The staff ID, password or code is not correct."),
        "staff.home",
        "accounts/staff_login.html",
    )
