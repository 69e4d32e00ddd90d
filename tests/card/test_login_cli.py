"""``python -m card login URL``: fetch the challenge by code, check it, ask the PIN, sign, post.

Against the stand-in server (tests/kiosk/standin.py); the real portal is in
tests/kiosk/test_portal_integration.py. The PIN never appears in output or in what is posted.
"""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from card import login
from card.login import challenge_message, check_challenge_message, parse_login_url
from card.sim import Profile, make_profile
from tests.kiosk.standin import StandIn

from .conftest import ROOT

PIN = "4826"


@pytest.fixture
def own_profile(tmp_path: Path, pki_dir: Path) -> Profile:
    return make_profile(tmp_path / "card", pki_dir=pki_dir, my_number="999912345677", auth_pin=PIN)


@pytest.fixture
def server(own_profile: Profile, pki_dir: Path) -> Iterator[StandIn]:
    standin = StandIn({}, pki_dir)
    try:
        yield standin
    finally:
        standin.close()


def run(
    server: StandIn,
    profile: Profile,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    pins: str = PIN + "\n",
    code: str | None = None,
    extra: tuple[str, ...] = (),
) -> tuple[int, str]:
    if code is None:
        code = server.new_challenge("login").code
    monkeypatch.setattr(sys, "stdin", io.StringIO(pins))
    status = login.main(
        ["login", f"{server.url}/c/{code}", "--sim", str(profile.directory), "--pin-stdin", *extra]
    )
    out = capsys.readouterr()
    text = out.out + out.err
    assert PIN not in text
    return status, text


def test_login(
    server: StandIn, own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    challenge = server.new_challenge("login")
    status, text = run(server, own_profile, monkeypatch, capsys, code=challenge.code)
    assert status == 0, text
    assert f"Log in to {server.url}" in text and "logged in" in text
    (posted,) = server.posted("/api/card/responses")
    body = posted.json()
    assert set(body) == {"challenge", "certificate", "signature", "code"}
    assert (body["challenge"], body["code"]) == (challenge.id, challenge.code)
    assert base64.b64decode(body["certificate"]) == own_profile.certificate("auth")
    assert posted.terminal is None and PIN not in posted.body.decode()
    assert challenge.used


def test_code_typed_in_lower_case(
    server: StandIn, own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = server.new_challenge("login").code
    assert code is not None
    assert run(server, own_profile, monkeypatch, capsys, code=code.lower())[0] == 0


def test_wrong_pin_then_blocked(
    server: StandIn, own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = server.new_challenge("login").code
    status, text = run(server, own_profile, monkeypatch, capsys, pins="0000\n", code=code)
    assert status == 5 and "Wrong PIN. 2 tries left." in text
    status, text = run(server, own_profile, monkeypatch, capsys, pins="0001\n", code=code)
    assert status == 5 and "1 tries left" in text
    # one try left: refused before the PIN is even asked
    status, text = run(server, own_profile, monkeypatch, capsys, pins="", code=code)
    assert status == 7 and "--allow-last-try" in text
    status, text = run(
        server, own_profile, monkeypatch, capsys, pins="0002\n", code=code, extra=("--allow-last-try",)
    )
    assert status == 6 and "city counter" in text
    status, text = run(server, own_profile, monkeypatch, capsys, code=code, extra=("--allow-last-try",))
    assert status == 6
    assert server.posted("/api/card/responses") == []


def test_malformed_pin_costs_no_try(
    server: StandIn, own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text = run(server, own_profile, monkeypatch, capsys, pins="12\n")
    assert status == 8 and "no try was used" in text
    assert run(server, own_profile, monkeypatch, capsys)[0] == 0


@pytest.mark.parametrize(
    ("refusal", "advice"),
    [
        ((410, "challenge_expired"), "has expired"),
        ((409, "challenge_used"), "already been used"),
        ((403, "card_not_linked"), "Link it once at a city counter"),
        ((403, "revoked"), "Renew it at the city counter"),
        ((403, "expired"), "has expired. Renew"),
        ((403, "something_new"), "The server refused"),
    ],
)
def test_server_refusals_say_what_to_do(
    server: StandIn,
    own_profile: Profile,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    refusal: tuple[int, str],
    advice: str,
) -> None:
    server.refuse["/api/card/responses"] = refusal
    status, text = run(server, own_profile, monkeypatch, capsys)
    assert status == 10 and advice in text


def test_unknown_code(
    server: StandIn, own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text = run(server, own_profile, monkeypatch, capsys, code="ZZZZ-ZZZZ", pins="")
    assert status == 10 and "Reload the login page" in text


def test_a_challenge_for_another_origin_is_not_signed(
    server: StandIn, own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A phishing page relaying the real portal's challenge under its own address gets nothing."""
    server.claimed_origin = "https://portal.city.example.jp"
    status, text = run(server, own_profile, monkeypatch, capsys, pins="")
    assert status == 10 and "refusing to sign" in text
    assert server.posted("/api/card/responses") == []


def test_server_unreachable(
    server: StandIn, own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = server.new_challenge("login").code
    server.close()
    status, text = run(server, own_profile, monkeypatch, capsys, code=code, pins="")
    assert status == 11 and "cannot reach" in text


def test_usage_errors(own_profile: Profile, capsys: pytest.CaptureFixture[str]) -> None:
    for url in (
        "http://portal.city.example.jp/c/ABCD-EFGH",
        "https://x.example/login",
        "https://x.example/c/%0A",
    ):
        assert login.main(["login", url, "--sim", str(own_profile.directory)]) == 2
    assert "https" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        login.main(["login"])  # the URL is required; a PIN is never an argument
    with pytest.raises(SystemExit):
        login.main(["login", "https://x.example/c/ABCD-EFGH", "--pin", PIN])


def test_options_before_the_subcommand_and_the_other_commands(
    server: StandIn, own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = server.new_challenge("login").code
    monkeypatch.setattr(sys, "stdin", io.StringIO(PIN + "\n"))
    argv = ["--backend", "sim", "--profile", str(own_profile.directory), "--pin-stdin"]
    assert login.main([*argv, "login", f"{server.url}/c/{code}"]) == 0
    assert login.main([*argv, "info", "--json"]) == 0  # the card CLI is unchanged
    assert '"JPKIAPICCTOKEN2"' in capsys.readouterr().out


def test_python_m_card_lists_login() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "card", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "login" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "card", "login", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--pin-stdin" in result.stdout and "--sim" in result.stdout


def test_challenge_message_checks() -> None:
    message = challenge_message("login", "c_1", "n", "https://portal.example")
    assert message == b"jp.city.portal/card-challenge/v1\nlogin\nc_1\nn\nhttps://portal.example"
    check_challenge_message(
        message, purpose="login", origin="HTTPS://Portal.Example:443/", challenge_id="c_1"
    )
    for wrong in (
        {"purpose": "link"},
        {"origin": "https://portal.example.evil"},
        {"origin": "http://portal.example"},
        {"challenge_id": "c_2"},
        {"nonce": "m"},
    ):
        with pytest.raises(login.ChallengeMismatchError):
            check_challenge_message(
                message,
                **{"purpose": "login", "origin": "https://portal.example", **wrong},  # type: ignore[arg-type]
            )
    for bad in (message + b"\n", b"\xff", message.replace(b"v1", b"v2")):
        with pytest.raises(login.ChallengeMismatchError):
            check_challenge_message(bad, purpose="login", origin="https://portal.example")
    assert parse_login_url("https://Portal.Example/c/abcd-efgh") == ("https://portal.example", "ABCD-EFGH")
    assert parse_login_url("http://127.0.0.1:5000/c/ABCD-EFGH")[0] == "http://127.0.0.1:5000"
