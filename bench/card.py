"""Benchmarks for the card package. Prints figures and the ratio to each limit, measured in one run.

(a) Our stack (CardSession over PcscTransport) against raw pyscard transmits of the very same APDUs on
    the same virtual card through pcscd + vpcd: read the auth certificate; VERIFY + sign. Goal ≤ 1.2.
(b) Verification with a 1,000,000-entry CRL: load time (goal ≤ 10 s), memory, time per verify
    (goal ≤ 1 ms). The CRL is generated once and cached in a temp directory.

Run: ``.venv/bin/python bench/card.py [--quick]`` (needs pcscd + vsmartcard-vpcd for part a).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from card.apdu import Command, Response  # noqa: E402
from card.session import CardSession  # noqa: E402
from card.sim import make_profile  # noqa: E402
from card.sim.bigcrl import build_crl  # noqa: E402
from card.sim.pki import TestPki  # noqa: E402
from card.verify import CrlIndex, TrustStore, VerificationError, verify_signature  # noqa: E402

READER = "Virtual PCD 00 00"
CACHE = Path(tempfile.gettempdir()) / "card-bench-cache"
RATIO_GOAL = 1.2


def timed(func: Callable[[], object], n: int) -> float:
    """Median seconds per call over ``n`` calls (after one warm-up)."""
    func()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def timed_pair(a: Callable[[], object], b: Callable[[], object], n: int) -> tuple[float, float]:
    """Median seconds per call of ``a`` and ``b``, interleaved so drift and noise hit both alike."""
    a()
    b()
    sa, sb = [], []
    for _ in range(n):
        start = time.perf_counter()
        a()
        sa.append(time.perf_counter() - start)
        start = time.perf_counter()
        b()
        sb.append(time.perf_counter() - start)
    return statistics.median(sa), statistics.median(sb)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- (a) stack vs raw pyscard ---------------------------------------------------------------
def bench_stack(n: int) -> bool:
    from card.pcsc import PcscTransport, card_present

    subprocess.run(["bash", str(ROOT / "scripts" / "pcscd.sh")], check=True, timeout=60)
    profile_dir = CACHE / "profile"
    if not (profile_dir / "profile.json").exists():
        make_profile(profile_dir)
    server = subprocess.Popen(
        [sys.executable, "-m", "card.sim", "serve", str(profile_dir), "--no-persist"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not card_present(READER):
            if time.monotonic() > deadline:
                raise SystemExit("the virtual card did not appear in pcscd")
            time.sleep(0.05)
        transport = PcscTransport(READER)
        session = CardSession(transport)
        recorded: list[bytes] = []

        def record(command: Command, response: Response | None, elapsed: float) -> None:
            recorded.append(command.encode())

        from smartcard.System import readers

        reader = next(r for r in readers() if str(r) == READER)
        raw = reader.createConnection()
        raw.connect()

        def replay(apdus: list[bytes]) -> Callable[[], None]:
            def run() -> None:
                for apdu in apdus:
                    raw.transmit(list(apdu))

            return run

        ops: dict[str, Callable[[], object]] = {
            "read auth certificate": session.read_auth_certificate,
            "VERIFY + sign (auth key)": lambda: session.sign_auth(b"bench challenge", "1234"),
        }
        ok = True
        print(f"(a) our stack vs raw pyscard transmits, {READER}, median of {n}")
        for name, op in ops.items():
            op()  # steady state (application already selected)
            recorded.clear()
            transport.add_observer(record)
            op()
            transport.remove_observer(record)
            apdus = list(recorded)
            ours, baseline = timed_pair(op, replay(apdus), n)
            ratio = ours / baseline
            ok &= ratio <= RATIO_GOAL
            verdict = "ok" if ratio <= RATIO_GOAL else "OVER"
            print(
                f"    {name:28s} {len(apdus):2d} APDUs  ours {ours * 1000:7.2f} ms  "
                f"raw {baseline * 1000:7.2f} ms  ratio {ratio:4.2f} (goal <= {RATIO_GOAL}: {verdict})"
            )
        raw.disconnect()
        session.close()
        return ok
    finally:
        if server.stdin:
            server.stdin.write(b"quit\n")
            server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


# -- (b) large CRL ---------------------------------------------------------------------------
def bench_crl(entries: int, n: int) -> bool:
    pki = TestPki.open(CACHE / "pki")
    crl_path = CACHE / f"crl_{entries}.der"
    if not crl_path.exists():
        now = dt.datetime.now(dt.UTC)
        start = time.perf_counter()
        der = build_crl(
            pki.root("auth").subject,
            pki.root_key("auth"),
            range(10**9, 10**9 + entries),
            this_update=now - dt.timedelta(minutes=5),
            next_update=now + dt.timedelta(days=3650),
        )
        crl_path.write_bytes(der)
        print(f"    (generated the CRL in {time.perf_counter() - start:.1f} s, cached in {crl_path})")
    trust = TrustStore.from_dir(pki.directory)
    from cryptography.hazmat.primitives.asymmetric import rsa

    card_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    cert = pki.issue("auth", card_key.public_key()).public_bytes(serialization.Encoding.DER)
    revoked_cert = pki.issue("auth", card_key.public_key(), serial=10**9 + entries // 2)
    message = b"server challenge"
    signature = card_key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    index = CrlIndex([crl_path], trust, allow_stale=True)
    load = time.perf_counter() - start
    gc.collect()
    memory = rss_mb() - before
    per_verify = timed(lambda: verify_signature(cert, signature, message, trust, index), n)
    try:
        verify_signature(
            revoked_cert.public_bytes(serialization.Encoding.DER), signature, message, trust, index
        )
        revoked_ok = False
    except VerificationError as exc:
        revoked_ok = exc.reason == "revoked"
    print(f"(b) CRL with {len(index):,} entries ({crl_path.stat().st_size / 1e6:.1f} MB DER)")
    print(f"    load (parse + signature + index) {load:6.2f} s   ratio to 10 s goal {load / 10:4.2f}")
    print(f"    memory of the index              {memory:6.0f} MB RSS")
    ms = per_verify * 1000
    print(f"    verify_signature with CRL        {ms:6.3f} ms   ratio to 1 ms goal {ms:4.2f}")
    print(f"    a revoked serial is refused      {'yes' if revoked_ok else 'NO'}")
    return load <= 10 and per_verify <= 1e-3 and revoked_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer iterations, 100,000-entry CRL")
    parser.add_argument("--skip-pcscd", action="store_true", help="only the CRL benchmark")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    ok = True
    if not args.skip_pcscd:
        ok &= bench_stack(20 if args.quick else 100)
    ok &= bench_crl(100_000 if args.quick else 1_000_000, 200 if args.quick else 2000)
    print("all goals met" if ok else "SOME GOALS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
