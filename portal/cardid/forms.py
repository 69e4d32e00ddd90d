from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Regexp

from portal.cardid.models import TERMINAL_KINDS

KIND_LABELS = {
    "kiosk": _l("Kiosk"),
    "counter": _l("Counter"),
    "library": _l("Library"),
    "shelter": _l("Shelter"),
    "partner": _l("Partner"),
}


class TerminalForm(FlaskForm):
    code = StringField(
        _l("Terminal ID"),
        validators=[
            DataRequired(message=_l("Enter a terminal ID.")),
            Regexp(r"^[a-z0-9-]{3,64}$", message=_l("Use 3 to 64 lower-case letters, digits or hyphens.")),
        ],
    )
    kind = SelectField(_l("Kind"), choices=[SelectChoice(k, KIND_LABELS[k]) for k in TERMINAL_KINDS])
    name = StringField(_l("Name"), validators=[DataRequired(message=_l("Enter a name.")), Length(max=120)])
    organisation = StringField(
        _l("Organisation"), validators=[DataRequired(message=_l("Enter an organisation.")), Length(max=120)]
    )
    public_key = TextAreaField(
        _l("Public key (PEM, Ed25519)"),
        validators=[DataRequired(message=_l("Paste the terminal's public key.")), Length(max=2000)],
    )


class RotateKeyForm(FlaskForm):
    public_key = TextAreaField(
        _l("New public key (PEM, Ed25519)"),
        validators=[DataRequired(message=_l("Paste the terminal's public key.")), Length(max=2000)],
    )
