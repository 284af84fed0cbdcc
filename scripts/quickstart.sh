#!/usr/bin/env bash
# Set up samzoo in .venv (Python 3.11), then segment a real HeLa movie with the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SHARED=${SAMZOO_SHARED:-../shared}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q -e .
mkdir -p out
.venv/bin/samzoo segment "$SHARED/data/Fluo_Hela_02_img.tif" --axes tyx -o out/hela_labels.tif
