#!/usr/bin/env bash
# Build the image steadyvoice's Dockerfiles start FROM, from Debian packages alone: no registry
# pull. A Debian bookworm (minbase) with Python 3.11, its venv module, tini and the CA
# certificates, imported as one layer. An air-gapped site points MIRROR at its own Debian mirror.
# Usage: build-base-image.sh [TAG]   (default steadyvoice-base:bookworm)
# Needs root, docker, and debootstrap (or mmdebstrap); installs debootstrap with apt if missing.
set -euo pipefail
tag="${1:-steadyvoice-base:bookworm}"
suite="${SUITE:-bookworm}"
mirror="${MIRROR:-http://deb.debian.org/debian}"
# What the image runs on: Python 3.11 (steadyvoice's requires-python), venv (the image installs
# into /opt/steadyvoice), tini (PID 1: reaps and forwards SIGTERM), CA certificates (S3, webhooks),
# pg_dump and pg_restore for `steadyvoice backup` of a PostgreSQL store (client 15: it dumps
# servers up to 15).
packages="python3,python3-venv,tini,ca-certificates,postgresql-client"

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "build-base-image: $tag exists (FORCE=1 rebuilds it)"; exit 0
fi

root="$(mktemp -d /tmp/steadyvoice-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
if command -v mmdebstrap >/dev/null 2>&1; then
  mmdebstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror"
else
  if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
  fi
  debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror"
fi
# Smaller and reproducible-ish: no apt lists, caches, docs or logs of the bootstrap itself.
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/var/log/*.log "$root"/tmp/* "$root"/root/.cache
# The image must hold no compiler: steadyvoice's C extensions come prebuilt in the wheelhouse.
if [ -e "$root/usr/bin/gcc" ] || [ -e "$root/usr/bin/cc" ]; then
  echo "build-base-image: a compiler got into the base image" >&2; exit 1
fi
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$tag"
echo "build-base-image: built $tag ($(chroot "$root" python3 --version))"
