#!/usr/bin/env bash
# Regenerates the agreement table of docs/ENGINE.md: lowbit perplexity vs llama-perplexity on the
# same GGUF files (WikiText-2 test, --ctx 512 --chunks 40, 2 threads).
#
#   LLAMA_BIN=/path/to/llama.cpp/build/bin scripts/agreement-report.sh > agreement.md
#
# Needs: an existing llama.cpp build (llama-quantize, llama-perplexity; this script builds nothing),
# the models (scripts/fetch-models.sh), ../shared/data. About 20 GB of scratch space for the
# log-probability bases (Gemma-3's vocabulary is 262,144 tokens). Takes about an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/report-env.sh agreement
# The quantized files come from llama-quantize, so both tools evaluate the very same bytes.
llama_quant smollm2 Q8_0; llama_quant smollm2 Q4_0; llama_quant gemma3 Q8_0; llama_quant gemma3 Q5_0

run() { python3 scripts/vs-llama-perplexity.py --llama-bin "$LLAMA_BIN" --lowbit "$lowbit" --text "$text" --work "$scratch" "$@"; }
echo "### SmolLM2-135M"
run --name smollm2 --f32 "$work/smollm2-f32.gguf" \
    --quant "Q8_0=$scratch/smollm2-Q8_0.gguf" --quant "Q4_0=$scratch/smollm2-Q4_0.gguf" \
    --quant "Q4_1 (shipped)=$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf" --q8-too Q8_0 --q8-too Q4_0
echo; echo "### Gemma-3-270M"
run --name gemma3 --f32 "$work/gemma3-f32.gguf" \
    --quant "Q8_0=$scratch/gemma3-Q8_0.gguf" --quant "Q5_0=$scratch/gemma3-Q5_0.gguf" \
    --quant "Q4_K_M (shipped)=$cache/models/gemma-3-270m-q4_k_m.gguf"
# The bases are large; keep them only when asked.
[ -n "${KEEP_BASES:-}" ] || rm -f "$scratch"/*.kld "$scratch"/*.logits
