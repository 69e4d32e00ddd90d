"""``python -m card`` on the sim backend: output, exit codes and advice; PINs never echoed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from card.cli import main
from card.sim import Profile, make_profile

from .conftest import ROOT


@pytest.fixture
def own_profile(tmp_path: Path, pki_dir: Path) -> Profile:
    return make_profile(tmp_path / "card", pki_dir=pki_dir, my_number="999912345677", sign_pin="TEST1234")


def cli(profile: Profile, *args: str, pins: str = "", monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(pins))
    return main(["--backend", "sim", "--profile", str(profile.directory), "--pin-stdin", *args])


def test_info_json(
    own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(own_profile, "info", "--json", monkeypatch=monkeypatch) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["token"] == "JPKIAPICCTOKEN2"
    assert info["pins"]["auth"] == {"tries_left": 3, "max_tries": 3}
    assert info["auth_certificate"]["serial"] == own_profile.auth_serial


def test_cert_sign_and_verify(
    own_profile: Profile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    msg, sig, cert = tmp_path / "m", tmp_path / "s", tmp_path / "c.der"
    msg.write_bytes(b"challenge")
    assert cli(own_profile, "cert", "auth", "--out", str(cert), monkeypatch=monkeypatch) == 0
    assert (
        cli(
            own_profile,
            "cert",
            "sign",
            "--pem",
            "--out",
            str(tmp_path / "s.pem"),
            pins="test1234\n",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    assert (tmp_path / "s.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert (
        cli(
            own_profile,
            "sign",
            "--key",
            "auth",
            "--in",
            str(msg),
            "--out",
            str(sig),
            pins="1234\n",
            monkeypatch=monkeypatch,
        )
        == 0
    )
    crl = own_profile.pki_dir / "auth_crl.der"
    args = [
        "verify",
        "--cert",
        str(cert),
        "--sig",
        str(sig),
        "--in",
        str(msg),
        "--trust",
        str(own_profile.pki_dir),
    ]
    assert main([*args, "--crl", str(crl)]) == 0
    assert "verified: auth" in capsys.readouterr().out
    msg.write_bytes(b"tampered")
    assert main(args) == 9
    assert "bad_signature" in capsys.readouterr().err


def test_pin_errors_tell_what_to_do(
    own_profile: Profile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    msg = tmp_path / "m"
    msg.write_bytes(b"x")
    sign = ["sign", "--key", "auth", "--in", str(msg), "--out", str(tmp_path / "s")]
    assert cli(own_profile, *sign, pins="12\n", monkeypatch=monkeypatch) == 8
    assert "no try was used" in capsys.readouterr().err
    assert cli(own_profile, *sign, pins="0000\n", monkeypatch=monkeypatch) == 5
    assert "2 tries left" in capsys.readouterr().err
    assert cli(own_profile, *sign, pins="0000\n", monkeypatch=monkeypatch) == 5
    assert cli(own_profile, *sign, pins="1234\n", monkeypatch=monkeypatch) == 7  # persisted: 1 try left
    assert "--allow-last-try" in capsys.readouterr().err
    assert cli(own_profile, "--allow-last-try", *sign, pins="0000\n", monkeypatch=monkeypatch) == 6
    err = capsys.readouterr().err
    assert "city counter" in err
    for pin in ("0000", "1234"):
        assert pin not in err


def test_text_masks_the_number_unless_shown(
    own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(own_profile, "text", "--json", pins="1234\n", monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["birth_date"] == "19800401" and "individual_number" not in out
    assert cli(own_profile, "text", "--my-number", pins="1234\n", monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert "999912345677" not in out and "********5677" in out
    assert cli(own_profile, "text", "--my-number", "--show", pins="1234\n", monkeypatch=monkeypatch) == 0
    assert "999912345677" in capsys.readouterr().out


def test_city_read_and_write(
    own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CARD_CITY_KEY", own_profile.pki.city_key().hex())
    assert cli(own_profile, "city", "write", "2", "P-42", monkeypatch=monkeypatch) == 0
    assert cli(own_profile, "city", "read", monkeypatch=monkeypatch) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"2": "P-42"}


def test_module_entry_point(own_profile: Profile) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "card", "--backend", "sim", "--profile", str(own_profile.directory), "info"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "JPKIAPICCTOKEN2" in result.stdout


@pytest.mark.pcscd
def test_readers_through_pcscd(vpcd_card: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["readers"]) == 0
    assert "Virtual PCD 00 00\tcard" in capsys.readouterr().out


def test_options_work_after_the_subcommand_too(
    own_profile: Profile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("1234\n"))
    argv = ["text", "--json", "--backend", "sim", "--profile", str(own_profile.directory), "--pin-stdin"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["birth_date"] == "19800401"
    # given before the subcommand, a later subcommand does not reset it
    monkeypatch.setattr(sys, "stdin", io.StringIO("1234\n"))
    assert main(["--backend", "sim", "--profile", str(own_profile.directory), "--pin-stdin", "text"]) == 0
