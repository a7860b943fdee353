#!/usr/bin/env bash
# Regenerates the tables of docs/QUALITY.md and docs/SPEED.md: lowbit vs llama-quantize on the three
# models, every type, with and without an importance matrix, in one run.
#
#   LLAMA_BIN=/path/to/llama.cpp/build/bin scripts/quality-report.sh > report.md
#
# Needs: an existing llama.cpp build (llama-quantize, llama-imatrix; this script builds nothing),
# the models (scripts/fetch-models.sh), the oracle venv (scripts/test.sh makes it), ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/report-env.sh report
py="$cache/venv/bin/python"
export LOWBIT_BIN="$lowbit"
valid="$(cd .. && pwd)/shared/data/wikitext2-valid.txt"

# References: F32 expansions of the shipped models (report-env.sh), MiniLM's matrices as a GGUF.
[ -f "$work/minilm-f32.gguf" ] || "$py" scripts/minilm-to-gguf.py "$cache/models/all-MiniLM-L6-v2" "$work/minilm-f32.gguf"
# Importance matrices from llama.cpp itself, on the validation split (never the evaluation text).
for m in smollm2 gemma3; do
  [ -f "$work/$m-imatrix.gguf" ] || "$LLAMA_BIN/llama-imatrix" -m "$work/$m-f32.gguf" -f "$valid" \
      -c 512 --chunks 20 -t 2 -o "$work/$m-imatrix.gguf" >/dev/null 2>&1
done

run() { "$py" scripts/vs-llama-quantize.py --llama-bin "$LLAMA_BIN" --threads 2 "$@"; }
echo "### SmolLM2-135M, no importance matrix"; run --f32 "$work/smollm2-f32.gguf"
echo; echo "### SmolLM2-135M, with importance matrix"; run --f32 "$work/smollm2-f32.gguf" --imatrix "$work/smollm2-imatrix.gguf"
echo; echo "### Gemma-3-270M, no importance matrix"; run --f32 "$work/gemma3-f32.gguf"
echo; echo "### Gemma-3-270M, with importance matrix"; run --f32 "$work/gemma3-f32.gguf" --imatrix "$work/gemma3-imatrix.gguf"
echo; echo "### all-MiniLM-L6-v2 matrices, no importance matrix"; run --f32 "$work/minilm-f32.gguf"
echo; echo "### SmolLM2-135M, whole-model mixes (speed)"; run --f32 "$work/smollm2-f32.gguf" --no-pure --types Q8_0,Q4_0,Q4_1,Q5_0,Q4_K_M,Q6_K,IQ4_NL,IQ4_XS
echo; echo "### SmolLM2-135M, Q4_K_M with importance matrix (speed)"; run --f32 "$work/smollm2-f32.gguf" --no-pure --types Q4_K_M --imatrix "$work/smollm2-imatrix.gguf"
