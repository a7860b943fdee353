#!/usr/bin/env bash
# Regenerates the engine speed table of docs/ENGINE.md: `lowbit bench` vs `llama-bench -p 128
# -n 32 -r $REPS -t 2` (REPS=5 unless set) on the same files (made by llama-quantize from the F32
# expansions of the shipped models), model by model in one run. Run it on a quiet machine.
#
#   LLAMA_BIN=/path/to/llama.cpp/build/bin scripts/speed-report.sh > speed.md
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/report-env.sh speed
for t in F16 Q8_0 Q4_0 Q4_K_M Q2_K; do llama_quant smollm2 $t; llama_quant gemma3 $t; done
run() { python3 scripts/vs-llama-bench.py --llama-bin "$LLAMA_BIN" --lowbit "$lowbit" -r "${REPS:-5}" "$@"; }
echo "### SmolLM2-135M"
run "F32=$work/smollm2-f32.gguf" "F16=$scratch/smollm2-F16.gguf" "Q8_0=$scratch/smollm2-Q8_0.gguf" \
    "Q4_0=$scratch/smollm2-Q4_0.gguf" "Q4_K_M=$scratch/smollm2-Q4_K_M.gguf" "Q2_K=$scratch/smollm2-Q2_K.gguf"
echo; echo "### Gemma-3-270M"
run "F32=$work/gemma3-f32.gguf" "F16=$scratch/gemma3-F16.gguf" "Q8_0=$scratch/gemma3-Q8_0.gguf" \
    "Q4_0=$scratch/gemma3-Q4_0.gguf" "Q4_K_M=$scratch/gemma3-Q4_K_M.gguf" "Q2_K=$scratch/gemma3-Q2_K.gguf"
