#!/usr/bin/env bash
# Make sure `promtool` (Debian package `prometheus`) is on PATH: the tests check and unit-test the
# Prometheus rules in deploy/prometheus/ with it. Installs it when missing and running as root.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-promtool: promtool is missing; installing the Debian package 'prometheus'" >&2
  apt-get update -qq
  # The package would start a Prometheus server where an init system runs: policy-rc.d stops
  # that for the duration of the install (only if no policy is already in place).
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT  # also when the install is interrupted
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
  command -v promtool >/dev/null 2>&1 || { echo "ensure-promtool: promtool still missing" >&2; exit 1; }
else
  echo "ensure-promtool: promtool is missing; install it with: sudo apt-get install -y prometheus" >&2
  exit 1
fi
