#!/usr/bin/env bash
# Creates .venv and installs batchgate with everything its tests and local models need.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,local]'
if [ -f scripts/install-local-models.sh ]; then
  PIP=".venv/bin/python -m pip" bash scripts/install-local-models.sh
fi
