"""The city's signing key in an HSM over PKCS#11 (SoftHSM2 in development and tests).

``init(directory)`` sets everything up, idempotently:
  * ``softhsm2.conf`` whose token directory is ``directory/tokens`` (never the system's),
  * the token (label ``CERTIFICATE_HSM_TOKEN``) with a random user PIN kept in ``pins.json`` (0600),
  * an RSA-2048 key pair inside the token (private key sensitive, never extractable),
  * the city's CA (``ca.pem``, its key ``ca_key.pem`` 0600 — in production an offline CA) and the
    signer certificate for the HSM key (``signer.pem``), made with ``cryptography``.

``Hsm`` is the process-wide handle: one logged-in session kept open (PKCS#11 logins belong to the
application, and closing a logged-in session logs every session out) and a pool of sessions, one
per concurrent signature.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_LABEL = "city-certificates"  # noqa: S105 - a label, not a secret
KEY_LABEL = "city-signing"
KEY_ID = b"\x01"
CITY_JA = "みなと市"


class HsmError(RuntimeError):
    """The HSM is missing, locked or not set up; the message says which (never the PIN)."""


@dataclass(frozen=True)
class Material:
    directory: Path
    module: str
    token_label: str
    key_label: str
    pin: str
    ca_pem: bytes
    signer_pem: bytes

    @property
    def conf(self) -> Path:
        return self.directory / "softhsm2.conf"


# --- set-up -----------------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


@contextlib.contextmanager
def _setup_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pins(directory: Path) -> dict[str, str]:
    path = directory / "pins.json"
    if path.exists():
        return json.loads(path.read_text())
    pins = {"user": secrets.token_hex(8), "so": secrets.token_hex(8)}
    _write_private(path, json.dumps(pins).encode())
    return pins


def _util() -> str:
    path = shutil.which("softhsm2-util")
    if path is None:
        raise HsmError("softhsm2-util is not installed (Debian package softhsm2)")
    return path


def _token_exists(conf: Path, label: str) -> bool:
    out = subprocess.run(  # noqa: S603 - fixed arguments
        [_util(), "--show-slots"],
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return any(line.split(":", 1)[-1].strip() == label for line in out.splitlines() if "Label:" in line)


def _name(common: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Minato City"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _make_ca(directory: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key_path, cert_path = directory / "ca_key.pem", directory / "ca.pem"
    if key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC) - timedelta(minutes=5)
    name = _name("Minato City Certificate CA", "Certificate issuance")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _signer_certificate(ca: x509.Certificate, ca_key: rsa.RSAPrivateKey, public_key) -> x509.Certificate:
    now = datetime.now(UTC) - timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(_name("Minato City Mayor (certificate issuance)", "Citizens Affairs"))
        .issuer_name(ca.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.EMAIL_PROTECTION, x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.12")]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),
            critical=False,  # type: ignore[arg-type]
        )
        .sign(ca_key, hashes.SHA256())
    )


def _setup_session(token, pin: str):
    """A read-write session for set-up. When this process is logged in already (a Hsm handle),
    the new session shares that login and must not log out when it closes."""
    import pkcs11

    try:
        return token.open(rw=True, user_pin=pin)
    except pkcs11.UserAlreadyLoggedIn:
        return token.open(rw=True)


def init(
    directory: str | Path,
    *,
    module: str = SOFTHSM_MODULE,
    token_label: str = TOKEN_LABEL,
    key_label: str = KEY_LABEL,
) -> Material:
    """Create (once) the SoftHSM2 token, the key pair in it and the city's certificates."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    directory = Path(directory).resolve()
    with _setup_lock(directory):
        tokens = directory / "tokens"
        tokens.mkdir(mode=0o700, exist_ok=True)
        conf = directory / "softhsm2.conf"
        if not conf.exists():
            conf.write_text(
                f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                "log.level = ERROR\nslots.removable = false\n"
            )
        pins = _pins(directory)
        created = False
        if not _token_exists(conf, token_label):
            subprocess.run(  # noqa: S603 - our own label and generated PINs (development only)
                [
                    _util(),
                    "--init-token",
                    "--free",
                    "--label",
                    token_label,
                    "--so-pin",
                    pins["so"],
                    "--pin",
                    pins["user"],
                ],
                env={**os.environ, "SOFTHSM2_CONF": str(conf)},
                capture_output=True,
                check=True,
            )
            created = True
        lib = _library(module, conf, reload=created)
        with P11_LOCK, _setup_session(lib.get_token(token_label=token_label), pins["user"]) as session:
            try:
                public = session.get_key(ObjectClass.PUBLIC_KEY, KeyType.RSA, label=key_label)
            except pkcs11.NoSuchKey:
                public, _ = session.generate_keypair(
                    KeyType.RSA,
                    2048,
                    id=KEY_ID,
                    label=key_label,
                    store=True,
                    private_template={
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.SIGN: True,
                    },
                )
            numbers = rsa.RSAPublicNumbers(
                int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big"),
                int.from_bytes(public[Attribute.MODULUS], "big"),
            )
        return _certificates(directory, module, token_label, key_label, pins["user"], numbers.public_key())


def _certificates(directory, module, token_label, key_label, pin, public_key) -> Material:
    ca, ca_key = _make_ca(directory)
    signer_path = directory / "signer.pem"
    signer = None
    if signer_path.exists():
        signer = x509.load_pem_x509_certificate(signer_path.read_bytes())
        same = signer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if not same or signer.issuer != ca.subject:
            signer = None
    if signer is None:
        signer = _signer_certificate(ca, ca_key, public_key)
        signer_path.write_bytes(signer.public_bytes(serialization.Encoding.PEM))
    return Material(
        directory=directory,
        module=module,
        token_label=token_label,
        key_label=key_label,
        pin=pin,
        ca_pem=ca.public_bytes(serialization.Encoding.PEM),
        signer_pem=signer.public_bytes(serialization.Encoding.PEM),
    )


def load(
    directory: str | Path,
    *,
    module: str = SOFTHSM_MODULE,
    token_label: str = TOKEN_LABEL,
    key_label: str = KEY_LABEL,
    pin: str | None = None,
) -> Material:
    """The material of a set-up HSM directory (HsmError when ``init`` has not run)."""
    directory = Path(directory).resolve()
    try:
        ca_pem = (directory / "ca.pem").read_bytes()
        signer_pem = (directory / "signer.pem").read_bytes()
        if pin is None:
            pin = json.loads((directory / "pins.json").read_text())["user"]
    except (OSError, ValueError, KeyError):
        raise HsmError(
            f"the certificate HSM is not set up in {directory}: run `flask certificates hsm-init`"
        ) from None
    return Material(directory, module, token_label, key_label, pin, ca_pem, signer_pem)


# --- the process-wide library ------------------------------------------------------------------------

_lib_lock = threading.Lock()
# python-pkcs11 calls C_Initialize(NULL): the module may assume one thread at a time (SoftHSM2
# then turns its own mutexes off, and concurrent calls crash the process). Every PKCS#11 call in
# this process goes through this lock; signing throughput scales with processes (gunicorn workers).
P11_LOCK = threading.RLock()
_lib_conf: dict[str, Path] = {}


def _library(module: str, conf: Path, *, reload: bool = False):
    """Load the PKCS#11 module once per process. SoftHSM2 reads SOFTHSM2_CONF when it initialises,
    so one process serves one token directory; a token made by softhsm2-util after the load is
    seen only after re-initialising."""
    import pkcs11

    with _lib_lock:
        previous = _lib_conf.get(module)
        if previous is not None and previous != conf:
            raise HsmError(f"this process already uses the HSM configuration {previous}, not {conf}")
        if "softhsm" in module:
            os.environ["SOFTHSM2_CONF"] = str(conf)
        lib = pkcs11.lib(module)
        if reload and previous is not None:
            _drop_handles(module)
            lib.reinitialize()
        _lib_conf[module] = conf
        return lib


_handles: dict[tuple[str, str], Hsm] = {}
_handles_lock = threading.Lock()


def _drop_handles(module: str) -> None:
    for key in [k for k in _handles if k[0] == module]:
        _handles.pop(key)


class Hsm:
    """Sessions on the city's token, logged in once; ``session()`` lends one to one thread."""

    def __init__(self, material: Material) -> None:
        self.material = material
        import pkcs11

        lib = _library(material.module, material.conf)
        with P11_LOCK:
            try:
                self.token = lib.get_token(token_label=material.token_label)
            except Exception as exc:  # pkcs11.NoSuchToken, or the module's own error
                raise HsmError(
                    f"no token {material.token_label!r}: run `flask certificates hsm-init`"
                ) from exc
            try:
                self._login = self.token.open(user_pin=material.pin)
            except pkcs11.UserAlreadyLoggedIn:
                self._login = self.token.open()
            except pkcs11.PinIncorrect:
                raise HsmError("the HSM refused the configured PIN") from None
        self._pool: queue.SimpleQueue = queue.SimpleQueue()

    @contextlib.contextmanager
    def session(self) -> Iterator:
        try:
            session = self._pool.get_nowait()
        except queue.Empty:
            with P11_LOCK:
                session = self.token.open()  # shares the application's login
        try:
            yield session
        finally:
            self._pool.put(session)


def handle(material: Material) -> Hsm:
    key = (material.module, str(material.directory) + "|" + material.token_label)
    with _handles_lock:
        found = _handles.get(key)
        if found is None:
            found = _handles[key] = Hsm(material)
        return found


# --- a token per test process --------------------------------------------------------------------

_process_dir: Path | None = None


def use_process_directory(directory: str | Path) -> None:
    """Tests: the token directory every app in this process uses (one per process, see _library)."""
    global _process_dir
    _process_dir = Path(directory).resolve()


def process_test_directory() -> str:
    """Outside production with no CERTIFICATE_HSM_DIR (the test configuration): a temporary token
    directory for this process, set up on first use and removed at exit."""
    global _process_dir
    with _lib_lock:
        if _process_dir is None:
            import atexit
            import shutil
            import tempfile

            path = Path(tempfile.mkdtemp(prefix="portal-hsm-"))
            atexit.register(shutil.rmtree, path, True)
            _process_dir = path
        return str(_process_dir)
