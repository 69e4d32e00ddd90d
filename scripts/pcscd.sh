#!/usr/bin/env bash
# Start pcscd (with the vsmartcard vpcd driver from /etc/reader.conf.d) for tests, idempotently.
# pcscd runs without --auto-exit so the virtual reader stays up between test runs.
set -euo pipefail

SOCKET=/run/pcscd/pcscd.comm

if ! command -v pcscd >/dev/null 2>&1; then
    echo "pcscd.sh: pcscd is not installed (Debian: apt-get install pcscd vsmartcard-vpcd)" >&2
    exit 1
fi

running() {
    [ -S "$SOCKET" ] && pgrep -x pcscd >/dev/null 2>&1
}

if ! running; then
    # a stale socket from a killed daemon would make pcscd refuse to start
    if [ -e "$SOCKET" ] && ! pgrep -x pcscd >/dev/null 2>&1; then
        rm -f "$SOCKET"
    fi
    mkdir -p /run/pcscd
    pcscd
fi

# wait until the daemon answers and lists the virtual reader
for _ in $(seq 1 50); do
    if running && timeout 2 python3 - <<'PY' 2>/dev/null
import ctypes, ctypes.util, sys
lib = ctypes.CDLL(ctypes.util.find_library("pcsclite") or "libpcsclite.so.1")
ctx = ctypes.c_long()
if lib.SCardEstablishContext(2, None, None, ctypes.byref(ctx)) != 0:
    sys.exit(1)
size = ctypes.c_ulong(0)
rv = lib.SCardListReaders(ctx, None, None, ctypes.byref(size))
lib.SCardReleaseContext(ctx)
sys.exit(0 if rv == 0 else 1)
PY
    then
        exit 0
    fi
    sleep 0.2
done
echo "pcscd.sh: pcscd did not come up with a reader" >&2
exit 1
