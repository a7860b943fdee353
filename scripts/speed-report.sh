#!/usr/bin/env bash
# Regenerates the engine speed table of docs/SPEED.md: `lowbit bench` vs `llama-bench -p 128 -n 32
# -r 3 -t 2` on the same files (made by llama-quantize from the F32 expansions of the shipped
# models), model by model in one run. Run it on a quiet machine.
#
#   LLAMA_BIN=/path/to/llama.cpp/build/bin scripts/speed-report.sh > speed.md
set -euo pipefail
cd "$(dirname "$0")/.."
: "${LLAMA_BIN:?set LLAMA_BIN to a llama.cpp build/bin folder}"
cache="${LOWBIT_CACHE:-$HOME/.cache/lowbit}"
work="$cache/report"
scratch="${SCRATCH:-$cache/speed}"
mkdir -p "$work" "$scratch"
if [ -z "${LOWBIT_BIN:-}" ]; then cargo build --release -q -p lowbit-cli; fi
lowbit="${LOWBIT_BIN:-$PWD/target/release/lowbit}"
[ -f "$work/smollm2-f32.gguf" ] || "$lowbit" dequantize "$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf" "$work/smollm2-f32.gguf"
[ -f "$work/gemma3-f32.gguf" ] || "$lowbit" dequantize "$cache/models/gemma-3-270m-q4_k_m.gguf" "$work/gemma3-f32.gguf"
q() { [ -f "$scratch/$1-$2.gguf" ] || "$LLAMA_BIN/llama-quantize" "$work/$1-f32.gguf" "$scratch/$1-$2.gguf" "$2" 2 >/dev/null 2>&1; }
for t in F16 Q8_0 Q4_0 Q4_K_M Q2_K; do q smollm2 $t; q gemma3 $t; done
run() { python3 scripts/vs-llama-bench.py --llama-bin "$LLAMA_BIN" --lowbit "$lowbit" -r "${REPS:-5}" "$@"; }
echo "### SmolLM2-135M"
run "F32=$work/smollm2-f32.gguf" "F16=$scratch/smollm2-F16.gguf" "Q8_0=$scratch/smollm2-Q8_0.gguf" \
    "Q4_0=$scratch/smollm2-Q4_0.gguf" "Q4_K_M=$scratch/smollm2-Q4_K_M.gguf" "Q2_K=$scratch/smollm2-Q2_K.gguf"
echo; echo "### Gemma-3-270M"
run "F32=$work/gemma3-f32.gguf" "F16=$scratch/gemma3-F16.gguf" "Q8_0=$scratch/gemma3-Q8_0.gguf" \
    "Q4_0=$scratch/gemma3-Q4_0.gguf" "Q4_K_M=$scratch/gemma3-Q4_K_M.gguf" "Q2_K=$scratch/gemma3-Q2_K.gguf"
