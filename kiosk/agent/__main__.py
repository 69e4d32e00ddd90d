"""``python -m kiosk.agent``: run the terminal agent, or make its key.

    python -m kiosk.agent --server URL --terminal ID --key FILE [--port 47100]
                          [--reader NAME | --sim PROFILE_DIR] [--allow-origin ORIGIN ...]
    python -m kiosk.agent keygen --out FILE [--force]    # prints the public key to register
    python -m kiosk.agent pubkey --key FILE              # prints it again

With ``--sim`` the card is the in-memory virtual card of a ``card.sim`` profile; type ``remove``,
``insert`` or ``quit`` on stdin to move it. SIGTERM or Ctrl-C stops the agent cleanly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import stat
import sys
import threading
from pathlib import Path
from types import FrameType

from kiosk.agent import signing
from kiosk.agent.api import DEFAULT_PORT


def load_key_file(path: str | Path) -> signing.Ed25519PrivateKey:
    """The terminal's private key; refused when others may read it (as ssh does)."""
    p = Path(path)
    mode = p.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{p}: the key is readable by others (chmod 600 {p})")
    return signing.load_private_key(p.read_bytes())


def keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    key = signing.generate_key()
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if args.force else os.O_EXCL)
    try:
        fd = os.open(out, flags, 0o600)
    except FileExistsError:
        print(f"{out} exists; use --force to replace it", file=sys.stderr)
        return 2
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(signing.private_key_pem(key))
    print(
        f"private key written to {out} (mode 0600); register this public key on the server:", file=sys.stderr
    )
    print(signing.public_key_pem(key), end="")
    return 0


def pubkey(args: argparse.Namespace) -> int:
    print(signing.public_key_pem(load_key_file(args.key)), end="")
    return 0


def run(args: argparse.Namespace) -> int:
    from card.errors import CardError
    from kiosk.agent.api import AgentServer
    from kiosk.agent.client import ServerClient
    from kiosk.agent.reader import SimBackend, backend_for
    from kiosk.agent.service import Agent

    try:
        client = ServerClient(args.server, args.terminal, load_key_file(args.key), origin=args.origin)
        backend = backend_for(args.reader, args.sim)
    except (ValueError, OSError, CardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    agent = Agent(backend, client, poll_ms=args.poll_ms, report_removal=args.report_removal).start()
    try:
        httpd = AgentServer(agent, args.port, args.allow_origin)
    except OSError as exc:
        agent.close()
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2
    desk = None
    if args.state_dir:
        from kiosk.agent.outbox import Outbox
        from kiosk.agent.shelter import ShelterDesk

        desk = ShelterDesk(
            agent, Outbox(Path(args.state_dir) / "outbox.sqlite3"), sync_seconds=args.sync_seconds
        )
        httpd.extra_routes.update(desk.routes())
        desk.start()
    done = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if isinstance(backend, SimBackend):

        def read_commands() -> None:
            for line in sys.stdin:
                command = line.strip().lower()
                if command == "remove":
                    backend.remove()
                elif command == "insert":
                    backend.insert()
                elif command in ("quit", "exit", "stop"):
                    break
                else:
                    continue
                print(f"ok {command}", flush=True)
            done.set()  # quit, or stdin closed

        threading.Thread(target=read_commands, name="kiosk-agent-stdin", daemon=True).start()

    httpd.start()
    print(
        f"kiosk agent for terminal {args.terminal} on {httpd.url} ({backend.description}); "
        f"server {client.origin}",
        flush=True,
    )
    try:
        while not done.wait(0.5):
            pass
    finally:
        httpd.close()
        if desk is not None:
            desk.close()
    print("kiosk agent stopped", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kiosk.agent",
        description="The terminal agent: owns the card reader and serves the page on 127.0.0.1.",
        epilog="Keys: python -m kiosk.agent keygen --out FILE [--force] | pubkey --key FILE",
    )
    p.add_argument("--server", required=True, help="the portal's URL (https; http only to this machine)")
    p.add_argument("--terminal", required=True, help="this terminal's id, as registered on the server")
    p.add_argument("--key", required=True, help="this terminal's Ed25519 private key (PEM, mode 0600)")
    p.add_argument(
        "--origin",
        help="the portal's public origin, if the terminal reaches it under another name (default: --server)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (0: any free port)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--reader", help="use only this PC/SC reader (default: any)")
    where.add_argument("--sim", metavar="PROFILE_DIR", help="the in-memory virtual card (development)")
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another origin whose pages may use the agent (the server's is always allowed)",
    )
    p.add_argument("--poll-ms", type=int, default=200, help="reader polling interval")
    p.add_argument(
        "--report-removal",
        action="store_true",
        help="a kiosk: tell the server when the card is taken off (ends the card holder's kiosk session)",
    )
    p.add_argument(
        "--state-dir",
        help="where the agent keeps its queue of check-ins made offline (shelter terminals); "
        "without it, /shelter/* is off",
    )
    p.add_argument("--sync-seconds", type=float, default=30.0, help="how often the queue is sent")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("keygen", "pubkey"):
        k = argparse.ArgumentParser(prog=f"python -m kiosk.agent {argv[0]}")
        if argv[0] == "keygen":
            k.add_argument("--out", required=True, help="where to write the private key (PEM, 0600)")
            k.add_argument("--force", action="store_true", help="replace an existing file")
            return keygen(k.parse_args(argv[1:]))
        k.add_argument("--key", required=True)
        return pubkey(k.parse_args(argv[1:]))
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
