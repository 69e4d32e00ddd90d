from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, SelectChoice, SelectMultipleField, StringField
from wtforms.validators import DataRequired, Length, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from portal.accounts.forms import PASSWORD_RULES
from portal.accounts.models import StaffUser
from portal.authz import STAFF_ROLES
from portal.extensions import db

ROLE_LABELS = {
    "counter": _l("Counter staff"),
    "processing": _l("Processing centre"),
    "author": _l("Notice author"),
    "library": _l("Library staff"),
    "shelter": _l("Shelter staff"),
    "auditor": _l("Auditor"),
    "admin": _l("Administrator"),
}


class StaffForm(FlaskForm):
    login_id = StringField(
        _l("Staff ID"),
        validators=[
            DataRequired(message=_l("Enter a staff ID.")),
            Regexp(
                r"^[a-z0-9._-]{3,64}$",
                message=_l("Use 3 to 64 lower-case letters, digits, dots, hyphens or underscores."),
            ),
        ],
    )
    display_name = StringField(
        _l("Name"), validators=[DataRequired(message=_l("Enter a name.")), Length(max=80)]
    )
    organisation = StringField(
        _l("Organisation"), validators=[DataRequired(message=_l("Enter an organisation.")), Length(max=120)]
    )
    roles = SelectMultipleField(
        _l("Roles"),
        choices=[SelectChoice(r, ROLE_LABELS[r]) for r in STAFF_ROLES],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        validators=[DataRequired(message=_l("Choose at least one role."))],
    )
    password = PasswordField(_l("Initial password (10 characters or more)"), validators=PASSWORD_RULES)

    def validate_login_id(self, field):
        if db.session.scalar(select(StaffUser.id).where(StaffUser.login_id == field.data.strip())):
            raise ValidationError(_l("This staff ID is taken."))
