#!/usr/bin/env bash
# Installs the oracle, llama.cpp through the pinned PyPI package llama-cpp-python, into
# .venv-oracle (git-ignored). It builds llama.cpp from source: several minutes on 2 cores.
# Only needed to regenerate test fixtures or to run scripts/bench_llamacpp.py.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-oracle"
LLAMA_CPP_PYTHON_VERSION=0.3.36
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$LLAMA_CPP_PYTHON_VERSION')" 2>/dev/null; then
  echo "oracle: llama-cpp-python $LLAMA_CPP_PYTHON_VERSION already in $VENV"
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q numpy
echo "oracle: building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (llama.cpp from source; takes a while)"
CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" "$VENV/bin/pip" install -q "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
echo "oracle: ready in $VENV"
