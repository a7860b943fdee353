#!/usr/bin/env bash
# Rebuilds docs/RESULTS.md: lowbit's calibrated methods (rtn, rtn + importance matrix, gptq, awq,
# hqq) against llama.cpp's llama-quantize / llama-imatrix on SmolLM2-135M and Gemma-3-270M, every
# file measured by llama-perplexity and by lowbit perplexity.
#
#   LLAMA_BIN=/path/to/llama.cpp/build/bin scripts/results-report.sh     # ONLY=smollm2 for one model
#
# Needs: an existing llama.cpp build (llama-quantize, llama-imatrix, llama-perplexity; nothing here
# builds it), the models (scripts/fetch-models.sh), the oracle venv (scripts/test.sh makes it; the
# imatrix comparison reads both files with gguf-py), ../shared/data. Takes hours on 2 cores; every
# measurement is cached in $SCRATCH/results.json, so a rerun resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/report-env.sh results
export LLAMA_BIN LOWBIT_BIN="$lowbit" WORK="$work" SCRATCH="$scratch" TEST_TEXT="$text"
export VALID_TEXT="$(cd .. && pwd)/shared/data/wikitext2-valid.txt"
export ORACLE_PY="$cache/venv/bin/python"
python3 scripts/results-report.py
