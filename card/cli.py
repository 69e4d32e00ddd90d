"""``python -m card``: one card thing per subcommand (readers, info, cert, sign, text, verify, city).

PINs come from a hidden prompt or, one per line, from stdin with ``--pin-stdin`` — never from
arguments. Exit codes: 0 ok, 1 card error, 2 usage, 3 no reader/card or card removed, 4 not an
Individual Number Card, 5 wrong PIN, 6 PIN blocked, 7 last try refused, 8 malformed PIN,
9 verification failed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from card import errors
from card.jpki import CertKind
from card.pin import PinKind
from card.session import CardReader, CardSession, open_card

EXIT = {
    errors.NoReaderError: 3,
    errors.NoCardError: 3,
    errors.CardRemovedError: 3,
    errors.NotIndividualNumberCardError: 4,
    errors.WrongPinError: 5,
    errors.PinBlockedError: 6,
    errors.LastTryRefusedError: 7,
    errors.PinFormatError: 8,
}

ADVICE: dict[type[errors.CardError], Callable[[errors.CardError], str]] = {
    errors.NoReaderError: lambda e: "No card reader found. Connect a reader (and start pcscd).",
    errors.NoCardError: lambda e: "No card in the reader. Insert the Individual Number Card.",
    errors.CardRemovedError: lambda e: "The card was removed. Put it back and try again.",
    errors.NotIndividualNumberCardError: lambda e: (
        "This is not an Individual Number Card (マイナンバーカード)."
    ),
    errors.WrongPinError: lambda e: f"Wrong PIN. {getattr(e, 'tries_left', '?')} tries left.",
    errors.PinBlockedError: lambda e: (
        "This PIN is blocked (ロック). Take the card to the city counter (市区町村窓口) to reset it."
    ),
    errors.LastTryRefusedError: lambda e: (
        "Only one PIN try is left; a wrong PIN now blocks it. If you are sure, run again with "
        "--allow-last-try."
    ),
    errors.PinFormatError: lambda e: f"{e} (nothing was sent to the card; no try was used).",
}


def _pin(args: argparse.Namespace, kind: PinKind) -> str:
    if args.pin_stdin:
        line = sys.stdin.readline()
        if not line:
            raise SystemExit("expected a PIN on stdin")
        return line.rstrip("\r\n")
    return getpass.getpass(f"{kind.spec.label}: ")


def _open(args: argparse.Namespace) -> CardSession | CardReader:
    return open_card(args.backend, reader=args.reader, profile=args.profile, module=args.module)


def _out(args: argparse.Namespace, data: bytes) -> None:
    if args.out:
        Path(args.out).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)


def cmd_readers(args: argparse.Namespace) -> int:
    from card.pcsc import card_present, list_readers

    readers = list_readers()
    if not readers:
        print("no readers")
        return 3
    for reader in readers:
        print(f"{reader}\t{'card' if card_present(reader) else 'empty'}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from cryptography import x509

    with _open(args) as card:
        token = card.read_token()
        cert = x509.load_der_x509_certificate(card.read_auth_certificate())
        tries: dict[str, int | None] = {}
        for kind in PinKind:
            try:
                tries[kind.value] = card.pin_tries_left(kind)
            except errors.CardError:
                tries[kind.value] = None
    info: dict[str, Any] = {
        "token": token,
        "pins": {k: {"tries_left": v, "max_tries": PinKind(k).spec.max_tries} for k, v in tries.items()},
        "auth_certificate": {
            "issuer": cert.issuer.rfc4514_string(),
            "serial": cert.serial_number,
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
        },
    }
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return 0
    print(f"token: {token}")
    for name, left in tries.items():
        state = "blocked" if left == 0 else f"{left} tries left"
        print(f"{name} PIN: {state if left is not None else 'unknown'}")
    ac = info["auth_certificate"]
    print(f"auth certificate: serial {ac['serial']}, valid {ac['not_before']} .. {ac['not_after']}")
    print(f"issuer: {ac['issuer']}")
    return 0


def cmd_cert(args: argparse.Namespace) -> int:
    kind = CertKind(args.which)
    with _open(args) as card:
        pin = _pin(args, PinKind.SIGN) if kind is CertKind.SIGN else None
        der = card.read_certificate(kind, pin, allow_last_try=args.allow_last_try)
    if args.pem:
        import base64
        import textwrap

        body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
        _out(args, f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n".encode())
    else:
        _out(args, der)
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    message = Path(args.input).read_bytes()
    with _open(args) as card:
        if args.key == "auth":
            sig = card.sign_auth(message, _pin(args, PinKind.AUTH), allow_last_try=args.allow_last_try)
        else:
            sig = card.sign_sign(message, _pin(args, PinKind.SIGN), allow_last_try=args.allow_last_try)
    Path(args.output).write_bytes(sig)
    print(f"signed {len(message)} bytes with the {args.key} key -> {args.output}", file=sys.stderr)
    return 0


def cmd_text(args: argparse.Namespace) -> int:
    card = _open(args)
    if not isinstance(card, CardSession):
        raise errors.CardError("the text-input-support AP needs the pcsc or sim backend")
    with card:
        number, basic4 = card.read_text_ap(_pin(args, PinKind.TEXT), allow_last_try=args.allow_last_try)
    data: dict[str, str] = basic4.as_dict()
    if args.my_number:
        data["individual_number"] = number.reveal() if args.show else number.masked()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for key, value in data.items():
            print(f"{key}: {value}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from card.verify import CrlIndex, TrustStore, VerificationError, verify_signature

    trust = TrustStore.from_dir(args.trust)
    revocation = CrlIndex(args.crl, trust) if args.crl else None
    try:
        result = verify_signature(
            Path(args.cert).read_bytes(),
            Path(args.sig).read_bytes(),
            Path(args.input).read_bytes(),
            trust,
            revocation,
        )
    except VerificationError as exc:
        print(f"NOT verified: {exc.reason} ({exc})", file=sys.stderr)
        return 9
    print(
        f"verified: {result.kind} certificate, issuer {result.issuer}, serial {result.serial}, "
        f"valid until {result.not_after.isoformat()}"
    )
    if not args.crl:
        print("warning: revocation was not checked (no --crl)", file=sys.stderr)
    return 0


def cmd_city(args: argparse.Namespace) -> int:
    from card.city import CityApp
    from card.citycrypto import AesIssuerKey

    card = _open(args)
    if not isinstance(card, CardSession):
        raise errors.CardError("the city application needs the pcsc or sim backend")
    with card:
        app = CityApp(card.transport, bytes.fromhex(args.aid)) if args.aid else CityApp(card.transport)
        if not app.select():
            print("this card has no city application", file=sys.stderr)
            return 1
        if args.action == "write":
            key_hex = os.environ.get("CARD_CITY_KEY") or Path(args.key_file).read_text().strip()
            app.authenticate(AesIssuerKey(bytes.fromhex(key_hex)))
            app.write(args.record, args.value)
        print(json.dumps(app.read_all(), ensure_ascii=False))
    return 0


def _common_options() -> argparse.ArgumentParser:
    """The global options, accepted after the subcommand too (python -m card text --pin-stdin);
    SUPPRESS keeps a subcommand from resetting what was given before it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--backend", choices=["pcsc", "pkcs11", "sim"], default=argparse.SUPPRESS)
    for flag in ("--reader", "--profile", "--module"):
        common.add_argument(flag, default=argparse.SUPPRESS)
    for flag in ("--pin-stdin", "--allow-last-try"):
        common.add_argument(flag, action="store_true", default=argparse.SUPPRESS)
    return common


def add_command(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A subcommand of ``python -m card`` (also used by :mod:`card.login` and :mod:`card.filing`)."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub: argparse.ArgumentParser = subparsers.add_parser(name, parents=[_common_options()], **kwargs)
    return sub


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m card", description="Individual Number Card tool")
    p.add_argument(
        "--backend", choices=["pcsc", "pkcs11", "sim"], default=os.environ.get("CARD_BACKEND", "pcsc")
    )
    p.add_argument("--reader", default=os.environ.get("CARD_READER"))
    p.add_argument("--profile", default=os.environ.get("CARD_PROFILE"), help="sim backend: profile dir")
    p.add_argument("--module", default=None, help="pkcs11 backend: module path")
    p.add_argument("--pin-stdin", action="store_true", help="read PINs from stdin, one per line")
    p.add_argument("--allow-last-try", action="store_true", help="use the PIN even with one try left")
    p.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return add_command(p, name, **kwargs)

    command("readers", help="list readers").set_defaults(func=cmd_readers)
    s = command("info", help="token, PIN tries, auth certificate")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_info)
    s = command("cert", help="read a certificate")
    s.add_argument("which", choices=[k.value for k in CertKind])
    s.add_argument("--pem", action="store_true")
    s.add_argument("--out")
    s.set_defaults(func=cmd_cert)
    s = command("sign", help="sign a file (PKCS#1 v1.5, SHA-256)")
    s.add_argument("--key", choices=["auth", "sign"], required=True)
    s.add_argument("--in", dest="input", required=True)
    s.add_argument("--out", dest="output", required=True)
    s.set_defaults(func=cmd_sign)
    s = command("text", help="basic 4 info (and the Individual Number on request)")
    s.add_argument("--json", action="store_true")
    s.add_argument("--my-number", action="store_true", help="include the Individual Number (masked)")
    s.add_argument("--show", action="store_true", help="show the Individual Number unmasked")
    s.set_defaults(func=cmd_text)
    s = command("verify", help="verify a signature and certificate (no card needed)")
    s.add_argument("--cert", required=True)
    s.add_argument("--sig", required=True)
    s.add_argument("--in", dest="input", required=True)
    s.add_argument("--trust", required=True, help="directory of pinned trust anchors")
    s.add_argument("--crl", action="append", help="CRL file (repeatable)")
    s.set_defaults(func=cmd_verify)
    s = command("city", help="the city application: read, or write at a counter")
    s.add_argument("action", choices=["read", "write"])
    s.add_argument("record", nargs="?", type=int)
    s.add_argument("value", nargs="?")
    s.add_argument("--aid")
    s.add_argument("--key-file", help="hex AES issuer key (or env CARD_CITY_KEY)")
    s.set_defaults(func=cmd_city)
    return p


def run_parsed(args: argparse.Namespace) -> int:
    """Run a parsed subcommand; card errors become advice and exit codes in this one place."""
    try:
        result: int = args.func(args)
        return result
    except errors.CardError as exc:
        for cls in type(exc).__mro__:
            if cls in ADVICE:
                print(ADVICE[cls](exc), file=sys.stderr)
                break
        else:
            print(f"Card error: {exc}", file=sys.stderr)
        return next((code for cls, code in EXIT.items() if isinstance(exc, cls)), 1)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return run_parsed(build_parser().parse_args(argv))
