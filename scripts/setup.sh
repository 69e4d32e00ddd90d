#!/usr/bin/env bash
# Install what is missing: Debian packages, the Python virtual environment, npm tools, compiled
# translations. Idempotent and quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  pcscd vsmartcard-vpcd opensc opensc-pkcs11 pcsc-tools libpcsclite-dev swig softhsm2
  postgresql redis-server chromium fonts-noto-cjk fonts-ipaexfont nodejs npm poppler-utils nginx
)
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# nodejs/npm may come from elsewhere on the machine: only ask apt for them when absent.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for pkg in "${missing[@]}"; do [[ "$pkg" == nodejs || "$pkg" == npm ]] || filtered+=("$pkg"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "setup: installing Python packages"
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  echo "$want" >"$stamp"
fi

if [[ ! -f node_modules/axe-core/axe.min.js ]]; then
  echo "setup: installing npm tools (axe-core)"
  npm install --silent --no-audit --no-fund >/dev/null
fi

# Compile translation catalogues when a .po is newer than its .mo.
for po in portal/translations/*/LC_MESSAGES/messages.po; do
  [[ -f $po ]] || continue
  mo=${po%.po}.mo
  if [[ ! -f $mo || $po -nt $mo ]]; then
    .venv/bin/pybabel compile -f -i "$po" -o "$mo" 2>/dev/null
  fi
done
