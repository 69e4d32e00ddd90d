"""``python -m kiosk.agent``: keygen, a real agent process on the virtual card, clean shutdown, no
PIN in its output, and no Flask on the terminal."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kiosk.agent import signing
from kiosk.agent.__main__ import main

from .conftest import AUTH_PIN, TERMINAL, TEXT_PIN
from .standin import StandIn

ROOT = Path(__file__).resolve().parents[2]


def test_keygen_writes_a_private_key_only_its_owner_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "terminal.pem"
    assert main(["keygen", "--out", str(key_file)]) == 0
    out = capsys.readouterr()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = signing.load_private_key(key_file.read_bytes())
    assert out.out == signing.public_key_pem(key)  # the public key, ready to register
    assert "PRIVATE" not in out.out + out.err
    assert main(["keygen", "--out", str(key_file)]) == 2  # never overwritten unasked
    assert signing.load_private_key(key_file.read_bytes()).public_key() == key.public_key()
    assert main(["pubkey", "--key", str(key_file)]) == 0
    assert capsys.readouterr().out == signing.public_key_pem(key)
    assert main(["keygen", "--out", str(key_file), "--force"]) == 0


def test_a_key_others_can_read_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "terminal.pem"
    main(["keygen", "--out", str(key_file)])
    key_file.chmod(0o644)
    code = main(["--server", "http://127.0.0.1:9", "--terminal", "T", "--key", str(key_file), "--sim", "x"])
    assert code == 2
    assert "chmod 600" in capsys.readouterr().err


def test_plain_http_only_to_this_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "terminal.pem"
    main(["keygen", "--out", str(key_file)])
    args = ["--server", "http://portal.city.example.jp", "--terminal", "T", "--key", str(key_file)]
    assert main([*args, "--sim", str(tmp_path)]) == 2
    assert "https" in capsys.readouterr().err


def test_the_agent_imports_no_flask() -> None:
    code = (
        "import sys, kiosk, kiosk.agent.__main__, kiosk.agent.api, kiosk.agent.service, "
        "kiosk.agent.reader, kiosk.agent.client, card.login\n"
        "server = ('flask', 'werkzeug', 'portal', 'sqlalchemy')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in server)\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_agent_process_on_the_virtual_card(
    tmp_path: Path, card_dir: Path, standin: StandIn, terminal_key: signing.Ed25519PrivateKey
) -> None:
    key_file = tmp_path / "terminal.pem"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(signing.private_key_pem(terminal_key))
    command = [
        sys.executable, "-m", "kiosk.agent",
        "--server", standin.url, "--terminal", TERMINAL, "--key", str(key_file),
        "--port", "0", "--sim", str(card_dir), "--poll-ms", "20", "--log-level", "DEBUG",
    ]  # fmt: skip
    with subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            banner = proc.stdout.readline()
            assert "kiosk agent for terminal T-KIOSK-1 on http://127.0.0.1:" in banner, banner
            url = banner.split(" on ")[1].split()[0]

            def call(path: str, body: dict | None = None) -> dict:
                data = None if body is None else json.dumps(body).encode()
                request = urllib.request.Request(  # noqa: S310 (the agent's loopback URL)
                    url + path, data=data, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                    return json.loads(response.read())

            assert call("/status")["card"] is True
            assert call("/login", {"purpose": "kiosk_login", "pin": AUTH_PIN})["status"] == "done"
            assert call("/link", {"pin": AUTH_PIN, "text_pin": TEXT_PIN})["status"] == "linked"
            proc.stdin.write("remove\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "ok remove"
            deadline = time.monotonic() + 5  # the watcher sees it at its next poll
            while call("/status")["card"] and time.monotonic() < deadline:
                time.sleep(0.02)
            assert call("/status")["card"] is False
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        output = proc.stdout.read() + proc.stderr.read()
    assert "kiosk agent stopped" in output
    assert "POST /login -> 200" in output  # it does log, at DEBUG even
    assert AUTH_PIN not in output and TEXT_PIN not in output and "999912345677" not in output
    assert [r.path for r in standin.requests] == [
        "/api/card/challenges",
        "/api/card/responses",
        "/api/card/challenges",
        "/api/card/links",
    ]
