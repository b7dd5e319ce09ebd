#!/usr/bin/env bash
# Wheels of the pure-Python packages that tools/device_bench.sh needs and a GPU image with PyTorch may lack
# (mmengine, open_clip and their small dependencies), downloaded here into .whl/ (git-ignored) so that a machine
# without network access can install them:
#
#   bash tools/device_wheels.sh                 # here, once (needs the package registry)
#   bash tools/device_bench.sh                  # there: installs .whl/*.whl into /tmp/site first, if .whl exists
#
# PYTHON_VERSION (default 3.12) is the Python of the machine the wheels are for.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "${PYTHON_VERSION:-3.12}" \
    --implementation cp --platform manylinux2014_x86_64 -d .whl \
    mmengine==0.10.7 open_clip_torch==3.3.0 addict yapf termcolor ftfy wcwidth yacs platformdirs
ls -1 .whl
