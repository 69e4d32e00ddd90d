"""The author's notice form: texts, target fields turned into a targeting rule, replies, schedule."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.notices import targeting
from portal.notices.models import CATEGORIES, REPLY_KINDS, Notice
from portal.notices.service import TOKYO
from portal.registry.models import CARE_LEVELS, DISABILITY_CERTIFICATES

CATEGORY_LABELS = {
    "tax": _l("Tax"),
    "child": _l("Children and childcare"),
    "care": _l("Long-term care"),
    "health": _l("Health"),
    "disaster": _l("Disaster and safety"),
    "card": _l("My Number Card"),
    "procedure": _l("Procedure status"),
    "event": _l("Events"),
}
CHANNEL_LABELS = {"push": _l("Push notification"), "email": _l("E-mail")}
STATUS_LABELS = {
    "draft": _l("Draft"),
    "pending_approval": _l("Waiting for approval"),
    "approved": _l("Approved (scheduled)"),
    "sending": _l("Sending"),
    "sent": _l("Sent"),
    "cancelled": _l("Cancelled"),
}
REPLY_KIND_LABELS = {
    "none": _l("No reply"),
    "attend": _l("Attend / cannot attend"),
    "apply": _l("Apply"),
    "choice": _l("A choice of options"),
}
CARE_LABELS = {
    "support1": _l("Support level 1"),
    "support2": _l("Support level 2"),
    "care1": _l("Care level 1"),
    "care2": _l("Care level 2"),
    "care3": _l("Care level 3"),
    "care4": _l("Care level 4"),
    "care5": _l("Care level 5"),
}
DISABILITY_LABELS = {
    "physical": _l("Physical disability certificate"),
    "intellectual": _l("Intellectual disability certificate"),
    "mental": _l("Mental disability certificate"),
}
SEX_CHOICES = [(1, _l("Male")), (2, _l("Female")), (9, _l("Not applicable"))]
ANY_OR_LIST = [
    SelectChoice("", _l("No condition")),
    SelectChoice("any", _l("Any level")),
    SelectChoice("list", _l("Only the levels ticked")),
]
ANY_OR_LIST_DISABILITY = [
    SelectChoice("", _l("No condition")),
    SelectChoice("any", _l("Any certificate")),
    SelectChoice("list", _l("Only the certificates ticked")),
]
# Which form field a targeting.RuleError names.
RULE_FIELDS = {
    "ward": "wards",
    "sex": "sex",
    "age": "age_min",
    "member_age_months": "member_months_min",
    "care_level": "care_level",
    "disability": "disability",
    "pregnant": "pregnant",
    "living_alone": "living_alone",
    "rule": "wards",
}
RULE_ERRORS = {
    "age": _l("Give ages from 0 to 130, the lowest first."),
    "member_age_months": _l("Give months from 0 to 240, the lowest first."),
    "care_level": _l("Tick at least one care level."),
    "disability": _l("Tick at least one certificate."),
}


def _int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return -1  # out of every range: the rule check names the field


def rule_from(values) -> dict:
    """Build a targeting rule from form values (a MultiDict: the form's POST or the count's GET);
    raises targeting.RuleError naming the part that is wrong."""
    rule: dict = {}
    wards = [w for w in values.getlist("wards") if w]
    if wards:
        rule["ward"] = wards
    sexes = values.getlist("sex")
    if sexes:
        try:
            rule["sex"] = [int(s) for s in sexes]
        except ValueError:
            raise targeting.RuleError("sex") from None
    for key, lo_name, hi_name in (
        ("age", "age_min", "age_max"),
        ("member_age_months", "member_months_min", "member_months_max"),
    ):
        lo, hi = _int(values.get(lo_name)), _int(values.get(hi_name))
        if lo is not None or hi is not None:
            rule[key] = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    for key, list_name in (("care_level", "care_levels"), ("disability", "disabilities")):
        mode = values.get(key, "")
        if mode == "any":
            rule[key] = "any"
        elif mode == "list":
            rule[key] = values.getlist(list_name)
    for key in ("pregnant", "living_alone"):
        if values.get(key) in ("y", "on", "true", "1"):
            rule[key] = True
    return targeting.parse(rule)


def parse_options(text: str) -> list[dict]:
    """One option a line, ``日本語 | English`` (the English may be left out)."""
    options = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        ja, _, en = line.partition("|")
        ja, en = ja.strip()[:60], (en.strip() or ja.strip())[:60]
        options.append({"code": f"option{len(options) + 1}", "label_ja": ja, "label_en": en})
    return options


def to_utc(local: datetime | None) -> datetime | None:
    return None if local is None else local.replace(tzinfo=TOKYO).astimezone(UTC)


def to_local(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(TOKYO).replace(tzinfo=None)


class NoticeForm(FlaskForm):
    category = SelectField(
        _l("Category"),
        choices=[SelectChoice(c, CATEGORY_LABELS[c]) for c in CATEGORIES],
        validators=[DataRequired(message=_l("Choose a category."))],
    )
    title_ja = StringField(
        _l("Title (Japanese)"),
        validators=[DataRequired(message=_l("Enter a title in Japanese.")), Length(max=200)],
    )
    title_en = StringField(
        _l("Title (English)"),
        validators=[DataRequired(message=_l("Enter a title in English.")), Length(max=200)],
    )
    body_ja = TextAreaField(
        _l("Text (Japanese)"),
        validators=[DataRequired(message=_l("Enter the text in Japanese."))],
        render_kw={"rows": 8, "cols": 60},
    )
    body_en = TextAreaField(
        _l("Text (English)"),
        validators=[DataRequired(message=_l("Enter the text in English."))],
        render_kw={"rows": 8, "cols": 60},
    )
    wards = SelectMultipleField(
        _l("Wards"), choices=[], widget=ListWidget(prefix_label=False), option_widget=CheckboxInput()
    )
    sex = SelectMultipleField(
        _l("Sex"),
        choices=[SelectChoice(str(v), label) for v, label in SEX_CHOICES],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    age_min = IntegerField(_l("Age from"), validators=[Optional()])
    age_max = IntegerField(_l("Age to"), validators=[Optional()])
    member_months_min = IntegerField(_l("A household member aged from (months)"), validators=[Optional()])
    member_months_max = IntegerField(_l("A household member aged to (months)"), validators=[Optional()])
    care_level = SelectField(_l("Care level"), choices=ANY_OR_LIST)
    care_levels = SelectMultipleField(
        _l("Care levels"),
        choices=[SelectChoice(c, CARE_LABELS[c]) for c in CARE_LEVELS],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    disability = SelectField(_l("Disability certificate"), choices=ANY_OR_LIST_DISABILITY)
    disabilities = SelectMultipleField(
        _l("Certificates"),
        choices=[SelectChoice(c, DISABILITY_LABELS[c]) for c in DISABILITY_CERTIFICATES],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    pregnant = BooleanField(_l("Pregnant (due date not yet passed)"))
    living_alone = BooleanField(_l("Living alone"))
    reply_kind = SelectField(
        _l("Reply"), choices=[SelectChoice(k, REPLY_KIND_LABELS[k]) for k in REPLY_KINDS]
    )
    reply_options = TextAreaField(_l("Options (for a choice)"), render_kw={"rows": 4, "cols": 60})
    reply_deadline = DateTimeLocalField(
        _l("Reply deadline (Japan time)"),
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
    )
    send_at = DateTimeLocalField(
        _l("Send at (Japan time)"),
        format="%Y-%m-%dT%H:%M",
        validators=[Optional()],
    )

    def __init__(self, *args, wards: list[tuple[str, str]] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.wards.choices = [SelectChoice(code, label) for code, label in wards]
        self.rule: dict = {}

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        try:
            self.rule = rule_from(self.rule_values())
        except targeting.RuleError as exc:
            field = getattr(self, RULE_FIELDS.get(exc.field, "wards"))
            field.errors = [*field.errors, RULE_ERRORS.get(exc.field, _l("Check this condition."))]
            ok = False
        if self.reply_kind.data == "choice" and len(parse_options(self.reply_options.data)) < 2:
            self.reply_options.errors = [*self.reply_options.errors, _l("Give at least two options.")]
            ok = False
        return ok

    def rule_values(self):
        from werkzeug.datastructures import MultiDict

        values = MultiDict()
        for w in self.wards.data or []:
            values.add("wards", w)
        for s in self.sex.data or []:
            values.add("sex", s)
        for name in ("age_min", "age_max", "member_months_min", "member_months_max"):
            raw = getattr(self, name).raw_data
            values.add(name, raw[0] if raw else "")
        values.add("care_level", self.care_level.data or "")
        for c in self.care_levels.data or []:
            values.add("care_levels", c)
        values.add("disability", self.disability.data or "")
        for d in self.disabilities.data or []:
            values.add("disabilities", d)
        for key in ("pregnant", "living_alone"):
            if getattr(self, key).data:
                values.add(key, "y")
        return values

    def load(self, notice: Notice) -> None:
        """Fill the form from a saved draft (on GET)."""
        for name in ("category", "title_ja", "title_en", "body_ja", "body_en", "reply_kind"):
            getattr(self, name).data = getattr(notice, name)
        rule = targeting.parse(notice.rule or "{}")
        self.wards.data = rule.get("ward", [])
        self.sex.data = [str(s) for s in rule.get("sex", [])]
        if "age" in rule:
            self.age_min.data, self.age_max.data = rule["age"]["min"], rule["age"]["max"]
        if "member_age_months" in rule:
            m = rule["member_age_months"]
            self.member_months_min.data, self.member_months_max.data = m["min"], m["max"]
        for key, list_name in (("care_level", "care_levels"), ("disability", "disabilities")):
            if key in rule:
                getattr(self, key).data = "any" if rule[key] == "any" else "list"
                getattr(self, list_name).data = [] if rule[key] == "any" else rule[key]
        self.pregnant.data = bool(rule.get("pregnant"))
        self.living_alone.data = bool(rule.get("living_alone"))
        options = json.loads(notice.reply_options or "[]")
        self.reply_options.data = "\n".join(f"{o['label_ja']} | {o['label_en']}" for o in options)
        self.reply_deadline.data = to_local(notice.reply_deadline)
        self.send_at.data = to_local(notice.send_at)

    def save(self, notice: Notice) -> None:
        for name in ("category", "title_ja", "title_en", "body_ja", "body_en", "reply_kind"):
            setattr(notice, name, getattr(self, name).data.strip())
        notice.rule = json.dumps(self.rule, ensure_ascii=False, sort_keys=True)
        options = parse_options(self.reply_options.data) if self.reply_kind.data == "choice" else []
        notice.reply_options = json.dumps(options, ensure_ascii=False)
        notice.reply_deadline = to_utc(self.reply_deadline.data)
        notice.send_at = to_utc(self.send_at.data)
