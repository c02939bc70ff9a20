#!/usr/bin/env bash
# A Docker daemon for `make test-deploy`: Debian's docker.io if no dockerd is installed, and
# dockerd started in the background (its log in /tmp/steadyvoice-dockerd.log) if none answers.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-docker: no Docker daemon answers; start one (or run as root)" >&2; exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io
fi
nohup dockerd >/tmp/steadyvoice-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 0.5
done
echo "ensure-docker: dockerd did not answer within 30 s (see /tmp/steadyvoice-dockerd.log)" >&2
exit 1
