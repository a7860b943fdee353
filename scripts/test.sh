#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. fetch the real models into the cache (scripts/fetch-models.sh; skipped with LOWBIT_OFFLINE=1,
#      in which case the real-model tests report themselves as skipped),
#   2. set up a Python virtual environment with the `gguf` reference reader (the oracle),
#   3. cargo test for the whole workspace (release profile: the real-model tests quantize
#      hundreds of millions of weights),
#   4. the oracle tests: gguf-py reads every file lowbit writes and dequantizes it to lowbit's values,
#   5. the Hugging Face reader tests: transformers + compressed-tensors load lowbit's compressed-
#      tensors folders (weights bit for bit, log-probabilities against lowbit's engine), and
#      lowbit runs folders llm-compressor wrote (a second cached venv, scripts/hf-requirements.txt).
# It also installs Debian's chromium for the report.html browser test when it is missing (that
# test skips, saying so, only when the package cannot be installed here).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${LOWBIT_CACHE:-$HOME/.cache/lowbit}"
export LOWBIT_CACHE="$cache"
export LOWBIT_MODELS="${LOWBIT_MODELS:-$cache/models}"
# Evaluation text lives beside the repository (../shared/data), never inside it.
export LOWBIT_WIKITEXT="${LOWBIT_WIKITEXT:-$(cd .. && pwd)/shared/data/wikitext2-test.txt}"

if [ "${LOWBIT_OFFLINE:-0}" != 1 ]; then
  scripts/fetch-models.sh
fi

venv="$cache/venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import gguf, numpy, pytest" 2>/dev/null; then
  echo "setting up the oracle virtual environment in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/oracle-requirements.txt
fi

hf_venv="$cache/hf-venv"
if [ ! -x "$hf_venv/bin/python" ] || ! "$hf_venv/bin/python" -c "import llmcompressor, compressed_tensors, transformers, torch, pytest" 2>/dev/null; then
  echo "setting up the Hugging Face reader virtual environment in $hf_venv (CPU torch, ~6 GB)"
  python3 -m venv "$hf_venv"
  "$hf_venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/hf-requirements.txt
fi

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the report.html browser test"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  if ! { $sudo_ apt-get install -y -q chromium >/dev/null 2>&1 ||
         { $sudo_ apt-get update -q >/dev/null 2>&1 && $sudo_ apt-get install -y -q chromium >/dev/null 2>&1; }; }; then
    echo "chromium could not be installed: the browser test will say so and skip"
    export LOWBIT_BROWSER_UNAVAILABLE=1
  fi
fi

cargo test --workspace --release

cargo build --release -p lowbit-cli
LOWBIT_BIN="$PWD/target/release/lowbit" "$venv/bin/python" -m pytest -q tests/oracle
HF_HUB_OFFLINE=1 LOWBIT_BIN="$PWD/target/release/lowbit" "$hf_venv/bin/python" -m pytest -q -p no:cacheprovider tests/hf
