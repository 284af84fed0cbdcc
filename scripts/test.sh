#!/usr/bin/env bash
# Set up samzoo with its test dependencies in .venv (Python 3.11), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch/torchvision first, pinned: these versions lie on the project machines' disk (DEVELOPERS.md)
.venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
