"""``python -m card.sim``: make test card profiles and serve a virtual card to pcscd (vpcd).

    python -m card.sim make-profile DIR --name 試験太郎 --kana シケンタロウ --address … \\
        --birth 19800401 --sex 1 [--auth-pin 1234 --sign-pin ABC123] [--pki DIR]
    python -m card.sim serve DIR [--port 35963]

While serving, type ``remove``, ``insert`` or ``quit`` on stdin (or send SIGUSR1 = remove,
SIGUSR2 = insert, SIGTERM = quit).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from card.sim.card import VirtualCard
from card.sim.profile import make_profile
from card.sim.vpcd import DEFAULT_PORT, VpcdClient


def _make(args: argparse.Namespace) -> int:
    profile = make_profile(
        args.dir,
        name=args.name,
        kana=args.kana,
        address=args.address,
        birth=args.birth,
        sex=args.sex,
        auth_pin=args.auth_pin,
        sign_pin=args.sign_pin,
        text_pin=args.text_pin,
        pki_dir=args.pki,
        my_number=args.my_number,
    )
    print(f"profile {profile.directory}: auth certificate serial {profile.auth_serial}")
    print(f"trust anchors: {' '.join(str(p) for p in profile.pki.root_paths())}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    card = VirtualCard.from_profile(args.dir, persist=not args.no_persist)
    client = VpcdClient(card, port=args.port)
    done = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGUSR1:
            client.remove()
        elif signum == signal.SIGUSR2:
            client.insert()
        else:
            done.set()

    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    def read_commands() -> None:
        for line in sys.stdin:
            command = line.strip().lower()
            if command == "remove":
                client.remove()
            elif command == "insert":
                client.insert()
            elif command in ("quit", "exit", "stop"):
                done.set()
                return
            if command:
                print(f"ok {command}", flush=True)

    client.start()
    threading.Thread(target=read_commands, daemon=True).start()
    if client.wait_connected(args.wait):
        print(f"serving {args.dir} on vpcd port {args.port}", flush=True)
    else:
        print(f"waiting for vpcd on port {args.port} (is pcscd running?)", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        client.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m card.sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make-profile", help="make a test card (keys, certificates, test PKI)")
    mk.add_argument("dir")
    mk.add_argument("--name", default="試験 太郎")
    mk.add_argument("--kana", default="シケン タロウ")
    mk.add_argument("--address", default="東京都千代田区霞が関二丁目1番2号")
    mk.add_argument("--birth", default="19800401", help="YYYYMMDD")
    mk.add_argument("--sex", default="1", choices=["0", "1", "2", "9"], help="ISO 5218")
    mk.add_argument("--auth-pin", default="1234", help="test PIN (4 digits)")
    mk.add_argument("--sign-pin", default="ABC123", help="test PIN (6-16 A-Z 0-9)")
    mk.add_argument("--text-pin", default=None, help="test PIN (4 digits; default: auth PIN)")
    mk.add_argument("--my-number", default=None, help="fake 12-digit number (default: random)")
    mk.add_argument("--pki", default=None, help="shared test PKI directory (default: DIR/pki)")
    mk.set_defaults(func=_make)
    sv = sub.add_parser("serve", help="serve the card to pcscd through vpcd until stopped")
    sv.add_argument("dir")
    sv.add_argument("--port", type=int, default=DEFAULT_PORT)
    sv.add_argument("--wait", type=float, default=10.0, help="seconds to wait for vpcd")
    sv.add_argument("--no-persist", action="store_true", help="do not save PIN counters")
    sv.set_defaults(func=_serve)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
