"""The agent with the in-memory virtual card (``--sim``) against the stand-in server: what the page
gets, what reaches the server, and that the PIN reaches neither the server nor a log."""

from __future__ import annotations

import base64
import json
import logging
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from card.login import challenge_message

from .conftest import AUTH_PIN, TERMINAL, TEST_NUMBER, TEXT_PIN, Running, start_agent
from .standin import StandIn


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def assert_no_secrets(standin: StandIn, caplog: pytest.LogCaptureFixture, *texts: object) -> None:
    """No PIN in anything the server received, in any log line, or in what the page got."""
    for request in standin.requests:
        seen = request.body.decode() + json.dumps(request.headers) + request.path
        assert AUTH_PIN not in seen and TEXT_PIN not in seen
        if request.body:
            assert not {"pin", "text_pin"} & set(request.json())
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert AUTH_PIN not in logged and TEXT_PIN not in logged and TEST_NUMBER not in logged
    for text in texts:
        assert AUTH_PIN not in json.dumps(text) and TEXT_PIN not in json.dumps(text)


def wait_status(running: Running, card: bool) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _, _, status = running.call("GET", "/status")
        if status["card"] is card:
            return status
        time.sleep(0.02)
    raise AssertionError(f"card never became {card}")


def test_status(running: Running) -> None:
    status, headers, body = running.call("GET", "/status")
    assert status == 200
    assert body == {"reader": True, "card": True, "tries": {"auth": 3, "sign": 5, "text": 3}}
    assert headers["cache-control"] == "no-store"


def test_kiosk_login_asks_signs_and_posts(
    running: Running, standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    status, _, body = running.call(
        "POST", "/login", {"purpose": "kiosk_login", "pin": AUTH_PIN}, origin=standin.url
    )
    assert status == 200, body
    assert body["status"] == "done" and body["purpose"] == "kiosk_login" and body["ticket"]
    asked, answered = standin.posted("/api/card/challenges"), standin.posted("/api/card/responses")
    assert [r.terminal for r in asked + answered] == [TERMINAL, TERMINAL]
    assert asked[0].json() == {"purpose": "kiosk_login"}
    assert set(answered[0].json()) == {"challenge", "certificate", "signature"}
    assert all(c.used for c in standin.challenges.values())
    assert_no_secrets(standin, caplog, body)


@pytest.mark.parametrize("shape", ["id+message", "object", "object-without-message"])
def test_page_given_challenge(running: Running, standin: StandIn, shape: str) -> None:
    """counter.js sends the id and the message; the server's whole object works too."""
    challenge = standin.new_challenge("counter_scan", TERMINAL)
    public = challenge.public()
    request: dict = {"purpose": "counter_scan", "pin": AUTH_PIN}
    if shape == "id+message":
        request |= {"challenge": challenge.id, "message": public["message"]}
    elif shape == "object":
        request["challenge"] = public
    else:
        request["challenge"] = {"id": challenge.id, "nonce": challenge.nonce}
    status, _, body = running.call("POST", "/login", request, origin=standin.url)
    assert (status, body) == (200, {"status": "done", "purpose": "counter_scan"})
    assert standin.posted("/api/card/challenges") == []


def test_agent_signs_only_its_servers_challenges(running: Running, standin: StandIn) -> None:
    challenge = standin.new_challenge("counter_scan", TERMINAL)
    forged = [
        challenge_message("counter_scan", challenge.id, challenge.nonce, "https://evil.example"),
        challenge_message("login", challenge.id, challenge.nonce, standin.url),
        challenge_message("counter_scan", "c_other", challenge.nonce, standin.url),
        b"any document the attacker wants signed",
    ]
    for message in forged:
        request = {
            "purpose": "counter_scan",
            "challenge": challenge.id,
            "message": base64.b64encode(message).decode(),
            "pin": AUTH_PIN,
        }
        status, _, body = running.call("POST", "/login", request, origin=standin.url)
        assert (status, body["error"]["code"]) == (400, "bad_challenge")
    # a bare id is not enough to know what to sign; and the page asks for login challenges itself
    for request in (
        {"purpose": "counter_scan", "challenge": challenge.id, "pin": AUTH_PIN},
        {"purpose": "login", "pin": AUTH_PIN},
        {"purpose": "no_such_purpose", "pin": AUTH_PIN},
    ):
        status, _, body = running.call("POST", "/login", request)
        assert (status, body["error"]["code"]) == (400, "bad_request")
    assert standin.posted("/api/card/responses") == []
    _, _, status_body = running.call("GET", "/status")
    assert status_body["tries"]["auth"] == 3  # nothing reached the card's PIN


def test_wrong_pin_last_try_and_blocked(
    running: Running, standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    def login(pin: str, **extra: object) -> tuple[int, dict]:
        status, _, body = running.call("POST", "/login", {"purpose": "kiosk_login", "pin": pin, **extra})
        return status, body["error"]

    assert login("0000") == (
        400,
        {"code": "wrong_pin", "message": "wrong PIN", "tries_left": 2, "pin": "auth"},
    )
    assert login("0001")[1]["tries_left"] == 1
    status, error = login(AUTH_PIN)  # even the right PIN: the last try is not used unasked
    assert (status, error["code"], error["tries_left"]) == (400, "last_try", 1)
    assert running.call("GET", "/status")[2]["tries"]["auth"] == 1
    assert login("0002", allow_last_try=True)[1]["code"] == "pin_blocked"
    assert login(AUTH_PIN, allow_last_try=True)[1]["code"] == "pin_blocked"
    assert running.call("GET", "/status")[2]["tries"]["auth"] == 0
    assert standin.posted("/api/card/responses") == []
    assert_no_secrets(standin, caplog)


def test_last_try_used_when_allowed(running: Running, standin: StandIn) -> None:
    for wrong in ("0000", "0001"):
        running.call("POST", "/login", {"purpose": "kiosk_login", "pin": wrong})
    request = {"purpose": "kiosk_login", "pin": AUTH_PIN, "allow_last_try": True}
    status, _, body = running.call("POST", "/login", request)
    assert (status, body["status"]) == (200, "done")
    assert running.call("GET", "/status")[2]["tries"]["auth"] == 3  # a right PIN resets the count


def test_malformed_pin_costs_no_try(running: Running) -> None:
    for pin in ("12", "abcd", "12345"):
        status, _, body = running.call("POST", "/login", {"purpose": "kiosk_login", "pin": pin})
        assert (status, body["error"]["code"]) == (400, "pin_format")
        assert pin not in body["error"]["message"]
    status, _, body = running.call("POST", "/login", {"purpose": "kiosk_login", "pin": 7391})
    assert (status, body["error"]["code"]) == (400, "bad_request")
    assert "7391" not in json.dumps(body)
    assert running.call("GET", "/status")[2]["tries"]["auth"] == 3


def test_no_card(running: Running, standin: StandIn) -> None:
    running.backend.remove()
    assert wait_status(running, False) == {
        "reader": True,
        "card": False,
        "tries": {"auth": None, "sign": None, "text": None},
    }
    status, _, body = running.call("POST", "/login", {"purpose": "kiosk_login", "pin": AUTH_PIN})
    assert (status, body["error"]["code"]) == (409, "no_card")
    running.backend.insert()
    assert wait_status(running, True)["tries"]["auth"] == 3


def test_card_removed_mid_operation(running: Running, standin: StandIn) -> None:
    standin.on_challenge = lambda _challenge: running.backend.remove()
    status, _, body = running.call("POST", "/login", {"purpose": "kiosk_login", "pin": AUTH_PIN})
    assert (status, body["error"]["code"]) == (409, "card_removed")
    assert standin.posted("/api/card/responses") == []


def test_server_errors_pass_through(running: Running, standin: StandIn) -> None:
    standin.refuse["/api/card/responses"] = (403, "revoked")
    status, _, body = running.call("POST", "/login", {"purpose": "kiosk_login", "pin": AUTH_PIN})
    assert (status, body["error"]["code"]) == (403, "revoked")
    del standin.refuse["/api/card/responses"]
    used = standin.new_challenge("counter_scan", TERMINAL)
    used.used = True
    request = {"purpose": "counter_scan", "challenge": used.public(), "pin": AUTH_PIN}
    status, _, body = running.call("POST", "/login", request)
    assert (status, body["error"]["code"]) == (409, "challenge_used")
    standin.refuse["/api/card/challenges"] = (403, "terminal_disabled")
    status, _, body = running.call("POST", "/link", {"pin": AUTH_PIN})
    assert (status, body["error"]["code"]) == (403, "terminal_disabled")


def test_unknown_terminal_key_is_refused(standin: StandIn, card_dir: Path) -> None:
    run = start_agent(standin.url, Ed25519PrivateKey.generate(), card_dir)
    try:
        status, _, body = run.call("POST", "/login", {"purpose": "kiosk_login", "pin": AUTH_PIN})
        assert (status, body["error"]["code"]) == (401, "terminal_signature")
    finally:
        run.httpd.close()


def test_server_unreachable(terminal_key: Ed25519PrivateKey, card_dir: Path, standin: StandIn) -> None:
    url = standin.url
    standin.close()
    run = start_agent(url, terminal_key, card_dir)
    try:
        status, _, body = run.call("POST", "/login", {"purpose": "kiosk_login", "pin": AUTH_PIN})
        assert (status, body["error"]["code"]) == (502, "server_unreachable")
    finally:
        run.httpd.close()


def test_link_reads_the_text_ap_and_posts_it(
    running: Running, standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    status, _, body = running.call(
        "POST", "/link", {"pin": AUTH_PIN, "text_pin": TEXT_PIN}, origin=standin.url
    )
    assert (status, body) == (200, {"status": "linked", "credential": 1})
    assert standin.posted("/api/card/challenges")[0].json() == {"purpose": "link"}
    (link,) = standin.links
    assert set(link) == {"challenge", "certificate", "signature", "my_number", "basic4"}
    assert link["my_number"] == TEST_NUMBER
    assert link["basic4"] == {
        "name": "試験 一郎",
        "address": "東京都千代田区霞が関一丁目1番1号",
        "birth_date": "19850701",
        "sex": "1",
    }
    assert TEST_NUMBER not in json.dumps(body)
    assert_no_secrets(standin, caplog, body)


def test_link_with_a_staff_pages_challenge_and_wrong_text_pin(running: Running, standin: StandIn) -> None:
    challenge = standin.new_challenge("link", TERMINAL)
    request = {"challenge": challenge.id, "message": challenge.public()["message"], "pin": AUTH_PIN}
    status, _, body = running.call("POST", "/link", request)  # text PIN defaults to the auth PIN
    assert (status, body["error"]) == (
        400,
        {"code": "wrong_pin", "message": "wrong PIN", "tries_left": 2, "pin": "text"},
    )
    status, _, body = running.call("POST", "/link", {**request, "text_pin": TEXT_PIN})
    assert (status, body["status"]) == (200, "linked")
    assert running.call("GET", "/status")[2]["tries"] == {"auth": 3, "sign": 5, "text": 3}


# -- who may call ------------------------------------------------------------------------------
def test_cors_answers_the_servers_origin_only(running: Running, standin: StandIn) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
        "Access-Control-Request-Private-Network": "true",
    }
    status, headers, _ = running.call("OPTIONS", "/login", origin=standin.url, headers=preflight)
    assert status == 204
    assert headers["access-control-allow-origin"] == standin.url
    assert "POST" in headers["access-control-allow-methods"]
    assert headers["access-control-allow-headers"].lower() == "content-type"
    assert headers["access-control-allow-private-network"] == "true"
    status, headers, _ = running.call("GET", "/status", origin=standin.url)
    assert (status, headers["access-control-allow-origin"]) == (200, standin.url)
    for evil in ("https://evil.example", "null", standin.url.replace("127.0.0.1", "localhost")):
        for method, path in (("OPTIONS", "/login"), ("GET", "/status"), ("GET", "/events")):
            status, headers, body = running.call(method, path, origin=evil, headers=preflight)
            assert (status, body["error"]["code"]) == (403, "origin_refused")
            assert "access-control-allow-origin" not in headers
        status, _, body = running.call(
            "POST", "/login", {"purpose": "kiosk_login", "pin": AUTH_PIN}, origin=evil
        )
        assert (status, body["error"]["code"]) == (403, "origin_refused")
    assert standin.requests == []  # nothing was asked of the server, nothing of the card
    assert running.call("GET", "/status")[2]["tries"]["auth"] == 3


def test_another_allowed_origin(standin: StandIn, terminal_key: Ed25519PrivateKey, card_dir: Path) -> None:
    run = start_agent(standin.url, terminal_key, card_dir, allow_origin=["https://kiosk.city.example.jp"])
    try:
        status, headers, _ = run.call("GET", "/status", origin="https://kiosk.city.example.jp:443")
        assert (status, headers["access-control-allow-origin"]) == (200, "https://kiosk.city.example.jp:443")
    finally:
        run.httpd.close()


def test_requests_a_cross_site_form_could_send_are_refused(running: Running, standin: StandIn) -> None:
    form = f"pin={AUTH_PIN}".encode()
    status, _, body = running.call("POST", "/login", form, headers={"Content-Type": "text/plain"})
    assert (status, body["error"]["code"]) == (415, "unsupported_media_type")
    status, _, body = running.call("GET", "/status", headers={"Host": "evil.example:47100"})
    assert (status, body["error"]["code"]) == (403, "bad_host")
    status, _, body = running.call("POST", "/login", b'{"pin": "7391", oops')
    assert (status, body["error"]["code"]) == (400, "bad_request")
    assert AUTH_PIN not in json.dumps(body)
    assert running.call("GET", "/login")[0] == 405
    assert running.call("POST", "/status", {})[0] == 405
    assert running.call("GET", "/nothing")[0] == 404
    assert running.call("POST", "/login", b"x" * 20000)[0] == 413
    assert standin.requests == []


def test_listens_on_loopback_only(running: Running) -> None:
    assert running.httpd.server_address[0] == "127.0.0.1"
