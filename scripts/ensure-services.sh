#!/usr/bin/env bash
# Make sure the PostgreSQL server the tests use is reachable on 127.0.0.1:5432.
# Tests create their own databases and drop them; nothing here touches existing data.
set -euo pipefail

pg_up() { python3 - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", 5432)) == 0 else 1)
PY
}

wait_pg() {
  for _ in $(seq 1 60); do pg_up && return 0; sleep 0.5; done
  return 1
}

if pg_up; then exit 0; fi
echo "ensure-services: PostgreSQL is not answering on 127.0.0.1:5432; starting it" >&2
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
  else
    echo "ensure-services: install PostgreSQL (Debian package 'postgresql')" >&2; exit 1
  fi
fi
version="$(ls /etc/postgresql | sort -V | tail -1)"
conf="/etc/postgresql/$version/main"
# Trust local TCP connections for the test user, as the CI machines are set up.
if ! grep -q "steadyvoice-tests" "$conf/pg_hba.conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust # steadyvoice-tests' "$conf/pg_hba.conf"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
wait_pg || { echo "ensure-services: PostgreSQL did not come up" >&2; exit 1; }
