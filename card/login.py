"""``python -m card login URL``: log in to the city portal on a PC with the card (docs/card-identity.md).

The login page shows ``python -m card login <origin>/c/<code>``. This helper fetches the pending
challenge by its code, checks that the bytes it is asked to sign are a login challenge *for that
origin* (so a page elsewhere cannot relay another server's challenge), asks the 4-digit user
authentication PIN (hidden prompt, or one line on stdin with ``--pin-stdin``; never an argument),
signs with the user-authentication key and posts certificate + signature with the code. The page,
polling, logs in.

The PIN goes to the card only: it is not logged, sent to the server or shown in any message.
HTTP is the standard library's ``urllib`` (no redirects followed; plain ``http`` only to loopback).

Exit codes are the card CLI's (:mod:`card.cli`), plus 10 the server refused (the message says why and
what to do) and 11 the server could not be reached or answered something that is not the protocol.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import ipaddress
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from card import errors
from card.pin import PinKind
from card.session import CardReader, CardSession, open_card

CHALLENGE_PREFIX = "jp.city.portal/card-challenge/v1"
EXIT_SERVER_REFUSED = 10
EXIT_SERVER_UNREACHABLE = 11
TIMEOUT = 20.0
MAX_ANSWER = 1 << 20

_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{2,31}")

#: what to tell a person for each server error code (docs/card-identity.md, "Challenges")
SERVER_ADVICE = {
    "challenge_unknown": "The server does not know this code. Reload the login page for a new one.",
    "challenge_expired": "The code has expired (a code lasts a minute). Reload the login page for a new one.",
    "challenge_used": "This code has already been used. Reload the login page for a new one.",
    "bad_signature": "The server could not verify the card's signature. Try again.",
    "untrusted": "The server does not recognise this card's certificate.",
    "expired": "The card's certificate has expired. Renew it at the city counter (市区町村窓口).",
    "not_yet_valid": "The card's certificate is not valid yet. Check the computer's clock, then try again.",
    "revoked": "The card's certificate has been revoked. Renew it at the city counter (市区町村窓口).",
    "revocation_unknown": "The server cannot check the certificate right now. Try again later.",
    "card_not_linked": (
        "This card is not linked to a resident account yet. Link it once at a city counter or kiosk."
    ),
    "resident_not_active": (
        "The resident record for this card is not active. Please ask at the city counter."
    ),
    "rate_limited": "Too many attempts. Wait a minute, then try again.",
}


class LoginError(Exception):
    """The login could not be done for a reason that is not the card's; ``exit_code`` says how."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ServerError(LoginError):
    """The server answered with an error (``{"error": {"code", "message"}}``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message or code, EXIT_SERVER_REFUSED)
        self.status, self.code = status, code

    def advice(self) -> str:
        return SERVER_ADVICE.get(self.code) or f"The server refused: {self} ({self.code})."


class ChallengeMismatchError(ValueError):
    """The bytes to sign are not a challenge of the expected purpose, id and origin."""


# -- the challenge ------------------------------------------------------------------------------
def challenge_message(purpose: str, challenge_id: str, nonce: str, origin: str) -> bytes:
    """The exact bytes the card signs for a challenge (five lines, no trailing newline)."""
    parts = [CHALLENGE_PREFIX, purpose, challenge_id, nonce, origin]
    if any(not p or "\n" in p or "\r" in p for p in parts):
        raise ChallengeMismatchError("challenge fields must be non-empty single lines")
    return "\n".join(parts).encode("utf-8")


def check_challenge_message(
    message: bytes, *, purpose: str, origin: str, challenge_id: str | None = None, nonce: str | None = None
) -> None:
    """Refuse to sign anything but a challenge for ``purpose`` at ``origin`` (and id/nonce if given)."""
    try:
        lines = message.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise ChallengeMismatchError("the challenge is not text") from None
    if len(lines) != 5 or lines[0] != CHALLENGE_PREFIX or not all(lines):
        raise ChallengeMismatchError("not a card challenge of this protocol")
    if lines[1] != purpose:
        raise ChallengeMismatchError(f"the challenge is for {lines[1]!r}, not {purpose!r}")
    if challenge_id is not None and lines[2] != challenge_id:
        raise ChallengeMismatchError("the challenge id does not match")
    if nonce is not None and lines[3] != nonce:
        raise ChallengeMismatchError("the challenge nonce does not match")
    if normalize_origin(lines[4]) != normalize_origin(origin):
        raise ChallengeMismatchError(f"the challenge is for {lines[4]}, not {origin}")


def normalize_origin(url: str) -> str:
    """``scheme://host[:port]``, lower-case, default port dropped, no path."""
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure(url: str) -> None:
    """``https``, or plain ``http`` to this machine only (development and tests)."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and is_loopback(url)):
        return
    raise ValueError(f"the server must be https (plain http only to this machine): {url}")


def parse_login_url(url: str) -> tuple[str, str]:
    """``<origin>/c/<code>`` → (origin, code)."""
    require_secure(url)
    parts = urllib.parse.urlsplit(url.strip())
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2 or segments[-2] != "c":
        raise ValueError(f"expected a login URL like https://portal.example/c/ABCD-EFGH, got {url!r}")
    code = urllib.parse.unquote(segments[-1]).strip().upper()
    if not _CODE.fullmatch(code):
        raise ValueError("the code in the login URL is malformed")
    return normalize_origin(url), code


# -- HTTP ------------------------------------------------------------------------------------------
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def opener_for(url: str) -> urllib.request.OpenerDirector:
    """No redirects; no proxy for loopback (an environment proxy would not reach this machine)."""
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if is_loopback(url):
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers)


def _error_from(status: int, raw: bytes) -> ServerError:
    try:
        data = json.loads(raw)
        error = data["error"]
        return ServerError(status, str(error.get("code") or "server_error"), str(error.get("message") or ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        code = "rate_limited" if status == 429 else "server_error"
        return ServerError(status, code, f"HTTP {status}")


def http_json(
    method: str,
    url: str,
    payload: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = TIMEOUT,
) -> tuple[int, dict[str, Any]]:
    """One JSON request; ``(status, object)`` for 2xx, :class:`ServerError` for an error answer,
    :class:`LoginError` (exit 11) when the server cannot be reached or does not speak JSON."""
    if body is None and payload is not None:
        body = json.dumps(payload, separators=(",", ":")).encode()
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 (http(s) checked)
    request.add_header("Accept", "application/json")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with opener_for(url).open(request, timeout=timeout) as response:
            status, raw = response.status, response.read(MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        with exc:
            raise _error_from(exc.code, exc.read(MAX_ANSWER)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LoginError(f"cannot reach {normalize_origin(url)}: {reason}", EXIT_SERVER_UNREACHABLE) from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise LoginError(f"the server answered HTTP {status} without JSON", EXIT_SERVER_UNREACHABLE) from None
    if not isinstance(data, dict):
        raise LoginError("the server's answer is not a JSON object", EXIT_SERVER_UNREACHABLE)
    return status, data


# -- the login ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Challenge:
    id: str
    purpose: str
    message: bytes


def fetch_challenge(origin: str, code: str) -> Challenge:
    url = f"{origin}/api/card/challenges/by-code/{urllib.parse.quote(code, safe='')}"
    _status, data = http_json("GET", url)
    try:
        challenge = Challenge(str(data["id"]), str(data["purpose"]), base64.b64decode(data["message"]))
    except (KeyError, TypeError, binascii.Error, ValueError):
        raise LoginError("the server's challenge is malformed", EXIT_SERVER_UNREACHABLE) from None
    if challenge.purpose != "login":
        raise LoginError(f"this code is for {challenge.purpose!r}, not a login on a PC", EXIT_SERVER_REFUSED)
    try:
        check_challenge_message(challenge.message, purpose="login", origin=origin, challenge_id=challenge.id)
    except ChallengeMismatchError as exc:
        raise LoginError(f"refusing to sign: {exc}", EXIT_SERVER_REFUSED) from None
    return challenge


def post_response(
    origin: str, challenge: Challenge, code: str, certificate: bytes, signature: bytes
) -> dict[str, Any]:
    _status, data = http_json(
        "POST",
        f"{origin}/api/card/responses",
        {
            "challenge": challenge.id,
            "certificate": base64.b64encode(certificate).decode("ascii"),
            "signature": base64.b64encode(signature).decode("ascii"),
            "code": code,
        },
    )
    return data


def _read_pin(pin_stdin: bool) -> str:
    if pin_stdin:
        line = sys.stdin.readline()
        if not line:
            raise LoginError("expected the PIN on stdin", 2)
        return line.rstrip("\r\n")
    return getpass.getpass(f"{PinKind.AUTH.spec.label}, 4 digits: ")


def login(
    url: str,
    card: CardSession | CardReader,
    *,
    pin_stdin: bool = False,
    allow_last_try: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Do the whole login with an open card; returns the server's answer."""
    origin, code = parse_login_url(url)
    challenge = fetch_challenge(origin, code)
    say(f"Log in to {origin} with your Individual Number Card (マイナンバーカード), code {code}.")
    certificate = card.read_auth_certificate()
    left = card.pin_tries_left(PinKind.AUTH)
    if left == 0:
        raise errors.PinBlockedError("PIN blocked")
    if left == 1 and not allow_last_try:
        raise errors.LastTryRefusedError()
    if left < PinKind.AUTH.spec.max_tries:
        say(f"Careful: {left} PIN tries left.")
    pin = _read_pin(pin_stdin)
    signature = card.sign_auth(challenge.message, pin, allow_last_try=allow_last_try)
    return post_response(origin, challenge, code, certificate, signature)


def run_helper(
    args: argparse.Namespace,
    *,
    parse_url: Callable[[str], object],
    act: Callable[..., dict[str, Any]],
    accepted: str,
    refused: str,
    done: str,
    advice: Callable[[ServerError], str] = ServerError.advice,
) -> int:
    """What the server-helper subcommands (``login``, ``sign-filing``) share: check the URL before
    the card is touched, open the card, act, and turn server answers into messages and exit codes
    (card errors are turned into advice by :func:`card.cli.run_parsed`)."""
    sim = getattr(args, "sim", None)
    backend, profile = ("sim", sim) if sim else (args.backend, args.profile)
    try:
        parse_url(args.url)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with open_card(backend, reader=args.reader, profile=profile, module=args.module) as card:
            answer = act(args.url, card, pin_stdin=args.pin_stdin, allow_last_try=args.allow_last_try)
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return 130
    except ServerError as exc:
        print(advice(exc), file=sys.stderr)
        return exc.exit_code
    except LoginError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if answer.get("status") != accepted:
        print(f"{refused}: {answer.get('status')!r}", file=sys.stderr)
        return EXIT_SERVER_REFUSED
    print(done)
    return 0


def add_helper_command(
    parser: argparse.ArgumentParser,
    name: str,
    func: Callable[[argparse.Namespace], int],
    *,
    url_help: str,
    **kwargs: Any,
) -> None:
    """A server-helper subcommand: the URL the page shows, and ``--sim DIR`` for the virtual card."""
    from card import cli

    s = cli.add_command(parser, name, **kwargs)
    s.add_argument("url", help=url_help)
    s.add_argument("--sim", metavar="DIR", default=argparse.SUPPRESS, help="virtual card profile (tests)")
    s.set_defaults(func=func)


def run(args: argparse.Namespace) -> int:
    """The ``login`` subcommand."""
    return run_helper(
        args,
        parse_url=parse_login_url,
        act=login,
        accepted="done",
        refused="The server did not complete the login",
        done="Done: you are logged in. Go back to the browser window, which continues by itself.",
    )


def add_login_command(parser: argparse.ArgumentParser) -> None:
    """Add ``login`` to the card CLI's parser (:func:`card.cli.build_parser`)."""
    add_helper_command(
        parser,
        "login",
        run,
        url_help="the URL the login page shows, <origin>/c/<code>",
        help="log in to the city portal on this PC (the URL the login page shows)",
        description="Log in to the city portal with the card: python -m card login <origin>/c/<code>",
    )


def main(
    argv: list[str] | None = None,
    extra: tuple[Callable[[argparse.ArgumentParser], None], ...] = (),
) -> int:
    """``python -m card``: the card CLI with ``login`` (and the ``extra`` commands) added."""
    from card import cli

    parser = cli.build_parser()
    add_login_command(parser)
    for add in extra:
        add(parser)
    return cli.run_parsed(parser.parse_args(argv))
