#!/bin/sh
# Secrets as files (Compose `secrets:`, Kubernetes Secret volumes, Swarm): each file in
# /run/secrets named like an environment variable that steadyvoice or the AWS client reads
# (STEADYVOICE_DATABASE_URL, AWS_SECRET_ACCESS_KEY, ...) becomes that variable, so secrets never
# sit in the Compose file, the pod spec or `docker inspect`. Other files are left alone. Then
# steadyvoice replaces this shell (exec), so tini's SIGTERM reaches it directly.
set -eu
if [ -d /run/secrets ]; then
  for file in /run/secrets/STEADYVOICE_* /run/secrets/AWS_*; do
    [ -f "$file" ] || continue
    name="${file##*/}"
    case "$name" in *[!A-Z0-9_]*) continue ;; esac
    value="$(cat "$file")"
    export "$name=$value"
  done
fi
exec steadyvoice "$@"
