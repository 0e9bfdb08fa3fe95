#!/usr/bin/env bash
# Installs what StreamEngine needs on a Debian 12 machine with Swift 6.3.
# Idempotent: installs only what is missing; runs `apt-get update` at most once.
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(librdkafka-dev libhiredis-dev libzstd-dev libmariadb-dev redis-server mariadb-server kcat pkg-config python3-venv chromium wrk curl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The redis-server and mariadb-server packages start system services on :6379 and
# :3306; StreamEngine never uses them (tests and the demo start their own servers,
# mariadbd with its own data directory in a temporary folder, on free ports).
command -v swift >/dev/null || { echo "setup: swift not found on PATH (Swift 6.3 is required)" >&2; exit 1; }
# schemathesis (PyPI) checks the HTTP service against its OpenAPI document in the tests;
# it lives in a virtual environment of its own, made once.
SCHEMATHESIS_VERSION=4.32.5
if ! .venv-api/bin/schemathesis --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "setup: installing schemathesis $SCHEMATHESIS_VERSION into .venv-api" >&2
  python3 -m venv .venv-api
  .venv-api/bin/pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
