#!/usr/bin/env bash
# Build the CPU image (deploy/docker/Dockerfile) without any registry at build time:
#   1. the base image from Debian packages (scripts/build-base-image.sh);
#   2. a wheelhouse on this host (`pip wheel`: steadyvoice and every dependency, C extensions
#      compiled here, pinned to the versions the project's venv runs, so the image ships what
#      the tests ran);
#   3. `docker build` whose context is the wheelhouse and the entrypoint alone: no source
#      tree, no data dir, no keys can reach the image, and it installs with `pip --no-index`.
# An air-gapped site runs step 2 on a connected host of the same platform (Debian bookworm,
# x86_64, Python 3.11), carries build/wheelhouse across, and runs this with WHEELHOUSE_READY=1.
# Usage: deploy/docker/build-image.sh [TAG]   (default steadyvoice:cpu)
set -euo pipefail
cd "$(dirname "$0")/../.."
tag="${1:-steadyvoice:cpu}"
base="${BASE_IMAGE:-steadyvoice-base:bookworm}"
python="${PYTHON:-.venv/bin/python}"
wheelhouse=build/wheelhouse
context=build/image-context

bash scripts/build-base-image.sh "$base"
if [ "${WHEELHOUSE_READY:-0}" != 1 ]; then
  mkdir -p "$wheelhouse"
  # Direct references (`pkg @ file://…`) are not valid constraints; the rest pin every version.
  "$python" -m pip freeze --exclude-editable | grep -v ' @ ' > build/constraints.txt
  rm -f "$wheelhouse"/steadyvoice-*.whl  # the version stays 0.1.0 while the code changes
  "$python" -m pip wheel -q --wheel-dir "$wheelhouse" -c build/constraints.txt .
fi
rm -rf "$context" && mkdir -p "$context"
cp -l "$wheelhouse"/*.whl "$context"/ 2>/dev/null || cp "$wheelhouse"/*.whl "$context"/
cp deploy/docker/entrypoint.sh "$context"/
version="$("$python" -c 'import tomllib; print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')"
docker build --network none -f deploy/docker/Dockerfile \
  --build-arg BASE_IMAGE="$base" --build-arg STEADYVOICE_VERSION="$version" \
  -t "$tag" "$context"
echo "build-image: built $tag"
