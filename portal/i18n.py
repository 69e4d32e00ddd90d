"""Languages: Japanese by default, English by choice (cookie + account setting); 和暦 dates."""

from __future__ import annotations

from datetime import date

from flask import current_app, request, session
from flask_babel import format_date, get_locale
from flask_login import current_user

# (first day, era name ja, era name en)
ERAS = (
    (date(2019, 5, 1), "令和", "Reiwa"),
    (date(1989, 1, 8), "平成", "Heisei"),
    (date(1926, 12, 25), "昭和", "Showa"),
    (date(1912, 7, 30), "大正", "Taisho"),
    (date(1873, 1, 1), "明治", "Meiji"),
)


def select_locale() -> str:
    langs = current_app.config["LANGUAGES"]
    chosen = session.get("lang")
    if chosen in langs:
        return chosen
    if current_user and current_user.is_authenticated and getattr(current_user, "locale", None) in langs:
        return current_user.locale
    cookie = request.cookies.get("lang")
    if cookie in langs:
        return cookie
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def wareki(day: date) -> str:
    """令和8年11月26日 — the era calendar Japanese forms expect; year 1 is 元年."""
    for start, name, _ in ERAS:
        if day >= start:
            year = day.year - start.year + 1
            y = "元" if year == 1 else str(year)
            return f"{name}{y}年{day.month}月{day.day}日"
    return f"{day.year}年{day.month}月{day.day}日"


def local_date(day: date | None) -> str:
    """A date for a page: 和暦 (with the Western year) in Japanese, ISO-like in English."""
    if day is None:
        return ""
    if str(get_locale()) == "ja":
        return f"{wareki(day)}（{day.year}年）"
    return format_date(day, format="d MMM y")


def init_app(app) -> None:
    app.jinja_env.filters["wareki"] = wareki
    app.jinja_env.filters["local_date"] = local_date
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale())
    from portal import labels

    labels.register(app)
