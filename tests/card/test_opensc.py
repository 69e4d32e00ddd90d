"""An independent client agrees: OpenSC recognises the virtual card as JPKI, lists its certificates,
and signs with it over PKCS#11 in a way openssl verifies. Also our PKCS#11 backend."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from card import errors
from card.jpki import CertKind
from card.pin import PinKind
from card.sim import Profile
from card.sim.vpcd import VpcdClient
from card.verify import TrustStore, verify_signature

pytestmark = pytest.mark.pcscd
MODULE = "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so"


@pytest.fixture(scope="module", autouse=True)
def opensc() -> None:
    if not (shutil.which("opensc-tool") and Path(MODULE).exists() and shutil.which("openssl")):
        if os.environ.get("CI"):
            pytest.fail("OpenSC (opensc, opensc-pkcs11) and openssl are required under CI")
        pytest.skip("OpenSC not installed")


def run(*args: str) -> str:
    env = {**os.environ, "CARD_TEST_PIN": "1234"}
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_opensc_names_the_driver_jpki(vpcd_card: VpcdClient) -> None:
    assert run("opensc-tool", "-r", "0", "-n").strip().splitlines()[-1] == "jpki"


def test_pkcs15_tool_lists_the_certificates(vpcd_card: VpcdClient, profile: Profile) -> None:
    out = run("pkcs15-tool", "--list-certificates")
    for label in (
        "User Authentication Certificate",
        "Digital Signature Certificate",
        "User Authentication Certificate CA",
        "Digital Signature Certificate CA",
    ):
        assert f"[{label}]" in out
    assert f"{profile.auth_serial:X}" in out.replace(" ", "").upper()
    pins = run("pkcs15-tool", "--list-pins")
    assert "Tries left     : 3" in pins and "Tries left     : 5" in pins


def test_pkcs11_tool_signature_verified_by_openssl(
    vpcd_card: VpcdClient, profile: Profile, tmp_path: Path
) -> None:
    message, signature = tmp_path / "challenge.bin", tmp_path / "sig.bin"
    message.write_bytes(b"login challenge 42")
    # the PIN goes through the environment, never onto a command line
    run(
        "pkcs11-tool",
        "--module",
        MODULE,
        "--slot-index",
        "0",
        "--login",
        "--pin",
        "env:CARD_TEST_PIN",
        "--sign",
        "--mechanism",
        "SHA256-RSA-PKCS",
        "--id",
        "01",
        "--input-file",
        str(message),
        "--output-file",
        str(signature),
    )
    pubkey = tmp_path / "pub.pem"
    pubkey.write_text(
        run(
            "openssl",
            "x509",
            "-inform",
            "der",
            "-in",
            str(profile.directory / "auth_cert.der"),
            "-pubkey",
            "-noout",
        )
    )
    out = run(
        "openssl", "dgst", "-sha256", "-verify", str(pubkey), "-signature", str(signature), str(message)
    )
    assert "Verified OK" in out


def test_pkcs11_backend(vpcd_card: VpcdClient, profile: Profile) -> None:
    from card.pkcs11 import Pkcs11Card

    card = Pkcs11Card(MODULE, reader="Virtual PCD 00 00")
    trust = TrustStore.from_dir(profile.pki_dir)
    assert card.read_token() == "JPKI (User Authentication PIN)"
    cert = card.read_auth_certificate()
    assert cert == profile.certificate("auth")
    assert card.read_certificate(CertKind.AUTH_CA)
    assert verify_signature(cert, card.sign_auth(b"n1", "1234"), b"n1", trust).kind == "auth"
    sign_cert = card.read_sign_certificate("test1234")
    for n in (b"a", b"b"):  # a login per signature
        assert verify_signature(sign_cert, card.sign_sign(n, "TEST1234"), n, trust).kind == "sign"
    assert card.pin_tries_left(PinKind.AUTH) == 3
    with pytest.raises(errors.WrongPinError):
        card.sign_auth(b"x", "9999")
    with pytest.raises(errors.PinFormatError):
        card.sign_auth(b"x", "99")
    assert card.pin_tries_left(PinKind.AUTH) == 2


def test_open_card_selects_the_backend(vpcd_card: VpcdClient, profile: Profile) -> None:
    from card.session import open_card

    for backend in ("pcsc", "pkcs11"):
        with open_card(backend, reader="Virtual PCD 00 00", module=MODULE) as card:
            assert card.read_auth_certificate() == profile.certificate("auth")
