"""Kiosk pages without a card: the terminal set-up, the three languages (easy Japanese has its own
small catalogue, complete for every kiosk text), no-store caching, and a visit page refused
without a kiosk session."""

from __future__ import annotations

import json
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from kiosk.agent import signing
from portal.cardid import service as cardid
from portal.kiosk.easy_ja import EASY
from tests.factories import csrf_from

ROOT = Path(__file__).resolve().parents[2]


def kiosk_msgids() -> set[str]:
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    found = extract_from_dir(
        str(ROOT / "portal" / "kiosk"), method_map, keywords={"_": None, "_l": None, "gettext": None}
    )
    return {message for _file, _line, message, _comments, _context in found if isinstance(message, str)}


def test_easy_japanese_covers_every_kiosk_text():
    ids = kiosk_msgids()
    assert len(ids) > 60
    assert sorted(ids - set(EASY)) == []
    # and nothing stale: every easy entry is a text some kiosk screen shows
    assert sorted(set(EASY) - ids) == []


def _terminal(db, code="kiosk-01", kind="kiosk"):
    cardid.add_terminal(code, kind, "キオスク1", "中央区役所", signing.public_key_pem(signing.generate_key()))
    db.session.commit()


def test_a_kiosk_page_needs_a_registered_kiosk_terminal(app, db, client):
    assert client.get("/kiosk/").status_code == 404
    _terminal(db, "counter-01", kind="counter")
    assert client.get("/kiosk/?terminal=counter-01").status_code == 404
    _terminal(db)
    response = client.get("/kiosk/?terminal=kiosk-01")
    assert response.status_code == 302 and response.headers["Location"] == "/kiosk/"
    page = client.get("/kiosk/")
    assert page.status_code == 200 and "no-store" in page.headers["Cache-Control"]
    # a visit page without a visit goes back to the start, JSON calls get a JSON refusal
    assert client.get("/kiosk/menu").headers["Location"] == "/kiosk/"
    token = csrf_from(page.get_data(as_text=True))
    refused = client.post("/kiosk/session", json={"ticket": "kt_nothing"}, headers={"X-CSRFToken": token})
    assert refused.status_code == 404 and refused.get_json()["error"]["next"]


def test_three_languages(app, db, client):
    _terminal(db)
    client.get("/kiosk/?terminal=kiosk-01")
    ja = client.get("/kiosk/").get_data(as_text=True)
    assert '<html lang="ja">' in ja and "カードを置いてください" in ja
    for lang, html_lang, words in (
        ("en", "en", "Put your card on the reader"),
        ("easy", "ja", "カードを おいて ください"),
        ("ja", "ja", "カードを置いてください"),
    ):
        token = csrf_from(client.get("/kiosk/").get_data(as_text=True))
        moved = client.post("/kiosk/language", data={"csrf_token": token, "lang": lang, "next": "/kiosk/"})
        assert moved.headers["Location"] == "/kiosk/"
        html = client.get("/kiosk/").get_data(as_text=True)
        assert f'<html lang="{html_lang}">' in html and words in html
        assert 'aria-pressed="true">' in html
    # the failure texts the script shows come in the chosen language too
    token = csrf_from(client.get("/kiosk/").get_data(as_text=True))
    client.post("/kiosk/language", data={"csrf_token": token, "lang": "easy", "next": "//evil.example/"})
    html = client.get("/kiosk/").get_data(as_text=True)
    texts = json.loads(re.search(r'id="kiosk-messages">(.*?)</script>', html, re.S).group(1))
    assert texts["failures"]["pin_blocked"]["next"].startswith("くやくしょの まどぐちで なおせます")
