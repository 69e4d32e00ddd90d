"""``python -m card sign-filing URL``: fetch the canonical form by code, show it, ask the signature
PIN, sign, post — against a small stand-in server (no portal, no database). The real portal is in
tests/portal/test_prefiling_signing.py. The PIN never appears in output or in what is posted."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from card import filing
from card.sim import Profile, make_profile
from card.verify import TrustStore, verify_signature

from .conftest import ROOT

PIN = "SIGN2468"
CODE = "ABCD-EFGH"
FORM = {
    "attachments": [{"code": "id_copy", "sha256": "ab" * 32}],
    "procedure": "moving_in",
    "reservation_no": "12345678K",
    "values": {
        "moved_on": "2026-11-20",
        "note": "line one\nProcedure: fake",
        "children": [{"name": "山田 太郎"}],
    },
    "version": 1,
}


class StandIn:
    def __init__(self, pki_dir: Path) -> None:
        self.canonical = json.dumps(FORM, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        self.digest = hashlib.sha256(self.canonical).hexdigest()
        self.trust = TrustStore.from_dir(pki_dir)
        self.posted: list[dict[str, Any]] = []
        self.error: tuple[int, str] | None = None
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                if stand_in.error:
                    status, code = stand_in.error
                    return self._send(status, {"error": {"code": code, "message": f"refused: {code}"}})
                if self.path != f"/api/prefilings/sign/{CODE}":
                    return self._send(404, {"error": {"code": "sign_request_unknown", "message": ""}})
                return self._send(
                    200,
                    {"canonical": base64.b64encode(stand_in.canonical).decode(), "digest": stand_in.digest},
                )

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.posted.append(body)
                verify_signature(
                    base64.b64decode(body["certificate"]),
                    base64.b64decode(body["signature"]),
                    stand_in.canonical,
                    stand_in.trust,
                    expected_kind="sign",
                )
                return self._send(200, {"status": "signed"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def own_profile(tmp_path: Path, pki_dir: Path) -> Profile:
    return make_profile(tmp_path / "card", pki_dir=pki_dir, my_number="999912345677", sign_pin=PIN)


@pytest.fixture
def server(own_profile: Profile, pki_dir: Path) -> Iterator[StandIn]:
    standin = StandIn(pki_dir)
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
    code: str = CODE,
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(pins))
    status = filing.main(
        ["sign-filing", f"{server.url}/f/{code}", "--sim", str(profile.directory), "--pin-stdin"]
    )
    out = capsys.readouterr()
    text = out.out + out.err
    assert PIN not in text and PIN.lower() not in text
    return status, text


def test_sign_filing(server: StandIn, own_profile: Profile, monkeypatch, capsys) -> None:
    status, text = run(server, own_profile, monkeypatch, capsys, pins=PIN.lower() + "\n")
    assert status == 0, text
    # the summary comes before the PIN and shows what is signed
    assert "Procedure: moving_in (form version 1)" in text
    assert "Reservation number: 1234-5678-K" in text
    assert "moved_on: 2026-11-20" in text and "name: 山田 太郎" in text
    assert "note: line one\\nProcedure: fake" in text  # a value cannot fake a line of the summary
    assert server.digest in text and "signed with your card" in text
    assert text.index("Procedure:") < text.index("Enter the signature PIN")
    (posted,) = server.posted
    assert set(posted) == {"certificate", "signature"}
    assert base64.b64decode(posted["certificate"]) == own_profile.certificate("sign")
    assert PIN not in json.dumps(posted)


def test_lower_case_code_and_dashless(server: StandIn, own_profile: Profile, monkeypatch, capsys) -> None:
    status, text = run(server, own_profile, monkeypatch, capsys, code="abcdefgh")
    assert status == 0, text


def test_form_not_matching_its_digest_is_not_signed(
    server: StandIn, own_profile, monkeypatch, capsys
) -> None:
    server.digest = "00" * 32
    status, text = run(server, own_profile, monkeypatch, capsys)
    assert status == filing.EXIT_SERVER_REFUSED
    assert "does not match its digest" in text and "Enter the signature PIN" not in text
    assert server.posted == []


def test_server_refusal_is_explained(server: StandIn, own_profile, monkeypatch, capsys) -> None:
    server.error = (410, "sign_request_expired")
    status, text = run(server, own_profile, monkeypatch, capsys)
    assert status == filing.EXIT_SERVER_REFUSED and "sign_request_expired" in text
    assert server.posted == []


def test_malformed_pin_is_refused_before_the_card(server: StandIn, own_profile, monkeypatch, capsys) -> None:
    status, text = run(server, own_profile, monkeypatch, capsys, pins="12\n")
    assert status != 0 and server.posted == []
    assert "12\n" not in text.split("Enter the signature PIN")[-1]


def test_pin_is_never_an_argument(server: StandIn, own_profile: Profile, capsys) -> None:
    with pytest.raises(SystemExit):
        filing.main(
            ["sign-filing", f"{server.url}/f/{CODE}", "--sim", str(own_profile.directory), "--pin", PIN]
        )


@pytest.mark.parametrize(
    "url",
    [
        "http://portal.example/f/ABCD-EFGH",  # plain http off this machine
        "https://portal.example/c/ABCD-EFGH",  # a login URL
        "https://portal.example/f/AB",
        "ftp://portal.example/f/ABCD-EFGH",
    ],
)
def test_bad_urls(url: str, capsys) -> None:
    assert filing.main(["sign-filing", url, "--sim", "/nonexistent"]) == 2


def test_parse_filing_url() -> None:
    assert filing.parse_filing_url("https://Portal.Example:443/f/abcd-efgh") == (
        "https://portal.example",
        "ABCD-EFGH",
    )


def test_python_m_card_has_sign_filing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "card", "sign-filing", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "<origin>/f/<code>" in done.stdout
