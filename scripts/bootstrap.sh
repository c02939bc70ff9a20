#!/usr/bin/env bash
# Create the virtual environment and install steadyvoice into it.
# Usage: bootstrap.sh [VENV] [EXTRAS]   e.g. `bootstrap.sh .venv` (the runtime only, to serve) or
# `bootstrap.sh .venv dev,eval` (plus the dev tools and the evaluation extras, to test).
# On a fresh Debian machine this also installs Python 3.11's venv support if it is missing.
set -euo pipefail
venv="${1:-.venv}"
extras="${2:-}"

find_python() {
  for py in python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  return 1
}

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
  else
    echo "bootstrap: please install: $*" >&2; exit 1
  fi
}

py="$(find_python || true)"
if [ -z "$py" ]; then apt_install python3.11 python3.11-venv; py="$(find_python)"; fi
if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then apt_install python3.11-venv; fi
# pyworld and webrtcvad are built from source: they need a C compiler and Python's headers.
include="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
if [ ! -f "$include/Python.h" ] || ! command -v gcc >/dev/null 2>&1; then
  apt_install build-essential python3.11-dev
fi

# `steadyvoice backup` snapshots PostgreSQL with pg_dump and restores with pg_restore
# (docs/backup.md). Not needed on SQLite, so without root this only says so.
if ! command -v pg_dump >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt_install postgresql-client
  else
    echo "bootstrap: note: pg_dump not found; install postgresql-client to back up PostgreSQL" >&2
  fi
fi

if [ ! -x "$venv/bin/python" ]; then "$py" -m venv "$venv"; fi
"$venv/bin/python" -m pip install -q --upgrade pip
spec="."
if [ -n "$extras" ]; then spec=".[$extras]"; fi
"$venv/bin/python" -m pip install -q -e "$spec"
echo "bootstrap: installed $spec into $venv"
