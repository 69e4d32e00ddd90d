from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Regexp

PASSWORD_RULES = [
    DataRequired(message=_l("Enter a password.")),
    Length(min=10, max=128, message=_l("Use 10 to 128 characters.")),
]


class LoginForm(FlaskForm):
    email = EmailField(
        _l("E-mail address"),
        validators=[
            DataRequired(message=_l("Enter your e-mail address.")),
            Email(message=_l("Enter a valid e-mail address.")),
        ],
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(message=_l("Enter your password."))])
    totp = StringField(_l("One-time code (only if you turned it on)"), validators=[Length(max=8)])


class StaffLoginForm(FlaskForm):
    login_id = StringField(
        _l("Staff ID"), validators=[DataRequired(message=_l("Enter your staff ID.")), Length(max=64)]
    )
    password = PasswordField(_l("Password"), validators=[DataRequired(message=_l("Enter your password."))])
    totp = StringField(_l("One-time code (only if you turned it on)"), validators=[Length(max=8)])


class RegisterForm(FlaskForm):
    email = EmailField(
        _l("E-mail address"),
        validators=[
            DataRequired(message=_l("Enter your e-mail address.")),
            Email(message=_l("Enter a valid e-mail address.")),
        ],
    )
    password = PasswordField(_l("Password (10 characters or more)"), validators=PASSWORD_RULES)
    confirm = PasswordField(
        _l("Password again"),
        validators=[EqualTo("password", message=_l("The two passwords do not match."))],
    )


class ForgotForm(FlaskForm):
    email = EmailField(
        _l("E-mail address"),
        validators=[
            DataRequired(message=_l("Enter your e-mail address.")),
            Email(message=_l("Enter a valid e-mail address.")),
        ],
    )


class ResetForm(FlaskForm):
    password = PasswordField(_l("New password (10 characters or more)"), validators=PASSWORD_RULES)
    confirm = PasswordField(
        _l("New password again"),
        validators=[EqualTo("password", message=_l("The two passwords do not match."))],
    )


class ChangePasswordForm(ResetForm):
    current = PasswordField(
        _l("Current password"), validators=[DataRequired(message=_l("Enter your password."))]
    )


class TotpForm(FlaskForm):
    code = StringField(
        _l("6-digit code from your app"),
        validators=[
            DataRequired(message=_l("Enter the 6-digit code.")),
            Regexp(r"^\s*\d{6}\s*$", message=_l("Enter the 6-digit code.")),
        ],
    )


class ConfirmPasswordForm(FlaskForm):
    password = PasswordField(_l("Password"), validators=[DataRequired(message=_l("Enter your password."))])


class LinkForm(FlaskForm):
    code = StringField(
        _l("Registration code (登録コード) from the city"),
        validators=[
            DataRequired(message=_l("Enter the registration code.")),
            Length(min=12, max=20, message=_l("The code has 12 letters and digits.")),
        ],
    )
    birth_date = DateField(
        _l("Your date of birth"), validators=[DataRequired(message=_l("Enter your date of birth."))]
    )
