#!/usr/bin/env bash
# The main job on a real model: fetch SmolLM2-135M-Instruct, expand it to F32 (the reference),
# quantize it to a few types and print what each costs (size, bits per weight, time, error).
#   scripts/demo.sh [TYPE ...]      default: Q8_0 Q6_K Q4_K_M IQ4_NL
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${LOWBIT_CACHE:-$HOME/.cache/lowbit}"
work="$cache/demo"
mkdir -p "$work"

scripts/fetch-models.sh smollm2
cargo build --release -q -p lowbit-cli
lowbit=target/release/lowbit
src="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
f32="$work/SmolLM2-135M-F32.gguf"

"$lowbit" inspect "$src" --no-tensors
[ -f "$f32" ] || "$lowbit" dequantize "$src" "$f32" --type F32
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(Q8_0 Q6_K Q4_K_M IQ4_NL)
for t in "${types[@]}"; do
  echo
  "$lowbit" quantize "$f32" "$work/SmolLM2-135M-$t.gguf" --type "$t"
done
