#!/usr/bin/env bash
# Make sure `nginx` is on PATH: tests/deploy/test_nginx.py runs the example reverse proxy in
# deploy/nginx/ for real in front of the service. Installs it when missing and running as root.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # Debian 12 and later: `nginx` is the server with the stock modules (ssl, proxy, headers, access);
  # `nginx-light` only adds the echo module on top of it.
  echo "ensure-nginx: nginx is missing; installing the Debian package 'nginx'" >&2
  apt-get update -qq
  # The package would start nginx on port 80 where an init system runs: policy-rc.d stops that
  # for the duration of the install (only if no policy is already in place).
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT  # also when the install is interrupted
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx
  [ -x /usr/sbin/nginx ] || { echo "ensure-nginx: nginx still missing" >&2; exit 1; }
else
  echo "ensure-nginx: nginx is missing; install it with: sudo apt-get install -y nginx" >&2
  exit 1
fi
