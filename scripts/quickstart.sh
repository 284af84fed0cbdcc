#!/usr/bin/env bash
# Set up samzoo in .venv (Python 3.11) and run its main job.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q -e .
.venv/bin/samzoo --help
echo
echo "samzoo has no trained default model yet, so there is no segmentation to run (see README, Status)."
