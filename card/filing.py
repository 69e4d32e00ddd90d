"""``python -m card sign-filing URL``: sign a web pre-filing (事前申請) with the card's signature key.

The pre-filing page shows ``python -m card sign-filing <origin>/f/<code>``. This helper fetches the
canonical form of the pre-filing by its code, checks that its SHA-256 is the digest the server says,
SHOWS the resident what they are about to sign (procedure, reservation number, every value,
attachments by their SHA-256), and only then asks the signature PIN (署名用電子証明書暗証番号, 6–16
letters and digits; hidden prompt, or one line on stdin with ``--pin-stdin``; never an argument). It
signs the canonical bytes (PKCS#1 v1.5, SHA-256 DigestInfo, :meth:`sign_sign`), reads the signature
certificate and posts both with the code.

The PIN goes to the card only: not logged, not sent to the server, not shown in any message.
HTTP is :func:`card.login.http_json` (standard library, no redirects, plain http only to loopback).
Exit codes as ``login``: 10 the server refused (the message says why), 11 unreachable/not the protocol.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import hashlib
import json
import re
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from card import errors
from card.login import (
    EXIT_SERVER_REFUSED,
    EXIT_SERVER_UNREACHABLE,
    LoginError,
    ServerError,
    add_helper_command,
    http_json,
    normalize_origin,
    require_secure,
    run_helper,
)
from card.pin import PinKind, normalize_pin
from card.session import CardReader, CardSession

_CODE = re.compile(r"[A-Z0-9]{4}-?[A-Z0-9]{4}")

#: advice when the server's answer carries no message of its own
FILING_ADVICE = {
    "sign_request_unknown": "The server does not know this code. Start again from your pre-filing page.",
    "sign_request_expired": "The code has expired (10 minutes). Start again from your pre-filing page.",
    "sign_request_used": "This code has already been used. Start again from your pre-filing page.",
    "form_changed": "The pre-filing changed after the code was made. Check it, then start again.",
    "wrong_person": "This card belongs to someone else than the person the pre-filing is for.",
    "revoked": "Your signature certificate has been revoked (e.g. after a change of address). "
    "Renew it at the city counter (市区町村窓口).",
    "expired": "Your signature certificate has expired. Renew it at the city counter (市区町村窓口).",
    "bad_signature": "The server could not verify the signature. Start again.",
}


class FilingError(LoginError):
    """Refusing to sign (the form is not what it claims to be) or a usage problem."""


@dataclass(frozen=True, slots=True)
class FilingForm:
    canonical: bytes
    digest: str
    body: dict[str, Any]


def parse_filing_url(url: str) -> tuple[str, str]:
    """``<origin>/f/<code>`` → (origin, code as ``ABCD-EFGH``)."""
    require_secure(url)
    parts = urllib.parse.urlsplit(url.strip())
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2 or segments[-2] != "f":
        raise ValueError(f"expected a signing URL like https://portal.example/f/ABCD-EFGH, got {url!r}")
    code = urllib.parse.unquote(segments[-1]).strip().upper()
    if not _CODE.fullmatch(code):
        raise ValueError("the code in the signing URL is malformed")
    code = code.replace("-", "")
    return normalize_origin(url), f"{code[:4]}-{code[4:]}"


def _api(origin: str, code: str) -> str:
    return f"{origin}/api/prefilings/sign/{urllib.parse.quote(code, safe='')}"


def fetch_form(origin: str, code: str) -> FilingForm:
    _status, data = http_json("GET", _api(origin, code))
    try:
        canonical = base64.b64decode(str(data["canonical"]), validate=True)
        digest = str(data["digest"]).lower()
        body = json.loads(canonical.decode("utf-8"))
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise LoginError("the server's form is malformed", EXIT_SERVER_UNREACHABLE) from None
    if hashlib.sha256(canonical).hexdigest() != digest:
        raise FilingError("refusing to sign: the form does not match its digest", EXIT_SERVER_REFUSED)
    if not isinstance(body, dict) or not {"procedure", "version", "values"} <= set(body):
        raise FilingError("refusing to sign: this is not a pre-filing form", EXIT_SERVER_REFUSED)
    return FilingForm(canonical, digest, body)


def _lines(value: Any, indent: str) -> list[str]:
    if isinstance(value, dict):
        out: list[str] = []
        for key in sorted(value):
            item = value[key]
            if isinstance(item, (dict, list)) and item:
                out.append(f"{indent}{key}:")
                out.extend(_lines(item, indent + "  "))
            else:
                out.append(f"{indent}{key}: {_scalar(item)}")
        return out
    if isinstance(value, list):
        out = []
        for n, item in enumerate(value, 1):
            if isinstance(item, (dict, list)) and item:
                out.append(f"{indent}[{n}]")
                out.extend(_lines(item, indent + "  "))
            else:
                out.append(f"{indent}[{n}] {_scalar(item)}")
        return out
    return [f"{indent}{_scalar(value)}"]


def _scalar(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    # one line per value: a newline in a value cannot fake another line of the summary
    return str(value).replace("\r", "\\r").replace("\n", "\\n")


def summary(form: FilingForm) -> str:
    """What the resident reads before entering the PIN: exactly the content of the signed bytes."""
    body = form.body
    number = str(body.get("reservation_no") or "")
    shown = f"{number[:4]}-{number[4:8]}-{number[8:]}" if len(number) == 9 else (number or "—")
    lines = [
        f"Procedure: {_scalar(body.get('procedure'))} (form version {_scalar(body.get('version'))})",
        f"Reservation number: {shown}",
        "Values:",
        *(_lines(body.get("values") or {}, "  ") or ["  —"]),
    ]
    attachments = body.get("attachments") or []
    lines.append(f"Attachments: {len(attachments)}")
    for a in attachments:
        if isinstance(a, dict):
            lines.append(f"  {_scalar(a.get('code'))} sha256 {_scalar(a.get('sha256'))}")
    lines.append(f"SHA-256 of what you sign: {form.digest}")
    return "\n".join(lines)


def post_signature(origin: str, code: str, certificate: bytes, signature: bytes) -> dict[str, Any]:
    _status, data = http_json(
        "POST",
        _api(origin, code),
        {
            "certificate": base64.b64encode(certificate).decode("ascii"),
            "signature": base64.b64encode(signature).decode("ascii"),
        },
    )
    return data


def _read_pin(pin_stdin: bool) -> str:
    if pin_stdin:
        line = sys.stdin.readline()
        if not line:
            raise LoginError("expected the signature PIN on stdin", 2)
        return line.rstrip("\r\n")
    return getpass.getpass(f"{PinKind.SIGN.spec.label}, 6–16 letters and digits: ")


def sign_filing(
    url: str,
    card: CardSession | CardReader,
    *,
    pin_stdin: bool = False,
    allow_last_try: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Do the whole signing with an open card; returns the server's answer."""
    origin, code = parse_filing_url(url)
    form = fetch_form(origin, code)
    say(f"Sign this pre-filing for {origin} with your Individual Number Card (マイナンバーカード),")
    say(f"code {code}. You are signing exactly this:")
    say(summary(form))
    left = card.pin_tries_left(PinKind.SIGN)
    if left == 0:
        raise errors.PinBlockedError("PIN blocked")
    if left == 1 and not allow_last_try:
        raise errors.LastTryRefusedError()
    if left < PinKind.SIGN.spec.max_tries:
        say(f"Careful: {left} PIN tries left.")
    say("Enter the signature PIN to sign exactly the above, or press Ctrl+C to cancel.")
    pin = _read_pin(pin_stdin)
    normalize_pin(PinKind.SIGN, pin)  # a malformed PIN is refused before the card counts a try
    signature = card.sign_sign(form.canonical, pin, allow_last_try=allow_last_try)
    certificate = card.read_sign_certificate(pin, allow_last_try=allow_last_try)
    return post_signature(origin, code, certificate, signature)


def _advice(exc: ServerError) -> str:
    if exc.code in FILING_ADVICE and str(exc) in (exc.code, ""):
        return FILING_ADVICE[exc.code]
    return f"The server refused: {exc} ({exc.code})."


def run(args: argparse.Namespace) -> int:
    """The ``sign-filing`` subcommand."""
    return run_helper(
        args,
        parse_url=parse_filing_url,
        act=sign_filing,
        accepted="signed",
        refused="The server did not accept the signature",
        done="Done: the pre-filing is signed with your card and verified. Reload the pre-filing page.",
        advice=_advice,
    )


def add_sign_filing_command(parser: argparse.ArgumentParser) -> None:
    """Add ``sign-filing`` to the card CLI's parser (:func:`card.cli.build_parser`)."""
    add_helper_command(
        parser,
        "sign-filing",
        run,
        url_help="the URL the pre-filing page shows, <origin>/f/<code>",
        help="sign a web pre-filing with the card's signature certificate (the URL the page shows)",
        description="Sign a pre-filing with the card: python -m card sign-filing <origin>/f/<code>",
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m card``: the card CLI with ``login`` and ``sign-filing`` added."""
    from card import login

    return login.main(argv, extra=(add_sign_filing_command,))
