import subprocess
from datetime import date
from pathlib import Path

from babel.messages.pofile import read_po

from portal.i18n import wareki
from tests.factories import login_resident, make_account, make_resident, post_form

ROOT = Path(__file__).resolve().parents[2]


def test_every_message_has_a_japanese_translation(tmp_path):
    pot = tmp_path / "messages.pot"
    packages = [p for p in ("portal", "kiosk", "points") if (ROOT / p).is_dir()]
    subprocess.run(
        [
            str(ROOT / ".venv/bin/pybabel"),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-o",
            str(pot),
            *packages,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as fh:
        wanted = {m.id for m in read_po(fh) if m.id}
    with (ROOT / "portal/translations/ja/LC_MESSAGES/messages.po").open("rb") as fh:
        ja = {m.id: m.string for m in read_po(fh, locale="ja") if m.id and not m.fuzzy}
    missing = sorted(i for i in wanted if not ja.get(i))
    assert missing == [], f"{len(missing)} messages lack Japanese (run make translations): {missing[:10]}"


def test_wareki():
    assert wareki(date(2026, 11, 26)) == "令和8年11月26日"
    assert wareki(date(2019, 5, 1)) == "令和元年5月1日"
    assert wareki(date(2019, 4, 30)) == "平成31年4月30日"
    assert wareki(date(1989, 1, 7)) == "昭和64年1月7日"
    assert wareki(date(1989, 1, 8)) == "平成元年1月8日"


def test_japanese_by_default_english_by_choice(app, db, client):
    resident = make_resident(birth=date(1985, 4, 1))
    account = make_account(resident=resident)
    db.session.commit()
    login_resident(client, account)
    page = client.get("/me/").get_data(as_text=True)
    assert '<html lang="ja">' in page and "マイページ" in page and "昭和60年4月1日" in page
    resp = post_form(client, "/lang?next=/me/", {"lang": "en"}, page="/me/")
    assert resp.headers["Location"] == "/me/"
    page = client.get("/me/").get_data(as_text=True)
    assert '<html lang="en">' in page and "My page" in page and "1 Apr 1985" in page
    # the choice sticks to the account, on another device too
    other = app.test_client()
    login_resident(other, account)
    assert '<html lang="en">' in other.get("/me/").get_data(as_text=True)


def test_form_errors_in_the_chosen_language(app, db, client):
    page = post_form(client, "/register", {"email": "", "password": "", "confirm": ""}).get_data(as_text=True)
    assert "メールアドレスを入力してください。" in page
    post_form(client, "/lang", {"lang": "en"}, page="/register")
    page = post_form(client, "/register", {"email": "", "password": "", "confirm": ""}).get_data(as_text=True)
    assert "Enter your e-mail address." in page


def test_unknown_language_falls_back_to_japanese(app, db, client):
    post_form(client, "/lang", {"lang": "xx"}, page="/")
    assert '<html lang="ja">' in client.get("/login").get_data(as_text=True)
