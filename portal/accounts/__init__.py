"""Portal accounts: residents (e-mail + password, optional TOTP) and staff (separate table and login)."""

from flask import Flask


def init_login(app: Flask) -> None:
    """Flask-Login: ids are 'r:<id>:<version>' (residents) or 's:<id>:<version>' (staff); a
    password change bumps the version, which ends every other session."""
    from portal.accounts.models import ResidentAccount, StaffUser
    from portal.extensions import db, login_manager

    login_manager.session_protection = "strong"
    login_manager.login_view = "accounts.login"

    @login_manager.user_loader
    def load(user_id: str):
        try:
            kind, ident, version = user_id.split(":")
            model = {"r": ResidentAccount, "s": StaffUser}[kind]
            user = db.session.get(model, int(ident))
        except (ValueError, KeyError):
            return None
        if user is None or str(user.session_version) != version:
            return None
        return user
