"""The kiosk's three languages: 日本語, English and やさしい日本語 (easy Japanese).

Easy Japanese is not a third Babel locale: it is Japanese (``lang="ja"``, dates in 和暦, the same
formats) with simpler words, short sentences and spaces between phrases, for residents who read
Japanese as a second language, children and older people. It lives in its own small catalogue,
:mod:`portal.kiosk.easy_ja` (``{English msgid: easy text}``), consulted only on kiosk pages and
only when the resident chose it; a msgid missing there falls back to the ordinary Japanese
translation, and a test lists every kiosk msgid that has no easy form. So the main catalogue and
its tools stay as they are, and the easy texts sit beside the screens they belong to.
"""

from __future__ import annotations

from flask import session
from flask_babel import LazyString, gettext
from markupsafe import Markup, escape

from portal.kiosk.easy_ja import EASY

LANGS = ("ja", "en", "easy")
SESSION_KEY = "kiosk_easy"


def choose(lang: str) -> None:
    """Remember the resident's choice for this visit (the next visit starts in Japanese)."""
    if lang not in LANGS:
        return
    session["lang"] = "en" if lang == "en" else "ja"
    session[SESSION_KEY] = lang == "easy"


def current() -> str:
    if session.get(SESSION_KEY):
        return "easy"
    return "en" if session.get("lang") == "en" else "ja"


def reset() -> None:
    session.pop(SESSION_KEY, None)
    session.pop("lang", None)


def msgid(text: str | LazyString) -> str:
    if isinstance(text, LazyString):
        return text._args[0]
    return text


def kgettext(text: str | LazyString, **variables) -> str:
    """``_()`` on kiosk pages: the easy-Japanese form when chosen, else the catalogue's."""
    key = msgid(text)
    value = EASY.get(key) if current() == "easy" else None
    if value is None:
        return gettext(key, **variables)
    return value % variables if variables else value


def template_gettext(text: str | LazyString, **variables) -> Markup:
    """``_()`` in kiosk templates: as :func:`kgettext`, escaped, with variables escaped unless safe
    (a name marked ``lang="ja"`` by the ``ja`` filter stays markup)."""
    key = msgid(text)
    value = EASY.get(key) if current() == "easy" else None
    if value is None:
        value = gettext(key)  # without variables: not formatted yet
    safe = escape(value)  # Markup, the text escaped
    return safe % variables if variables else safe
