# Shared set-up of the comparison scripts (agreement-report.sh, speed-report.sh,
# quality-report.sh); sourced, not run. Needs LLAMA_BIN (an existing llama.cpp build/bin folder:
# nothing here builds llama.cpp). Sets:
#   cache, work (F32 references), scratch (this script's files: $SCRATCH or $cache/$1),
#   lowbit (the binary: $LOWBIT_BIN, else a fresh release build), text (WikiText-2 test),
# makes the F32 references of the two LLMs, and defines `llama_quant MODEL TYPE`.
: "${LLAMA_BIN:?set LLAMA_BIN to a llama.cpp build/bin folder}"
cache="${LOWBIT_CACHE:-$HOME/.cache/lowbit}"
work="$cache/report"
scratch="${SCRATCH:-$cache/$1}"
mkdir -p "$work" "$scratch"
if [ -z "${LOWBIT_BIN:-}" ]; then cargo build --release -q -p lowbit-cli; fi
lowbit="${LOWBIT_BIN:-$PWD/target/release/lowbit}"
text="$(cd .. && pwd)/shared/data/wikitext2-test.txt"

# F32 references: the shipped models expanded (their original types then requantize losslessly).
[ -f "$work/smollm2-f32.gguf" ] || "$lowbit" dequantize "$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf" "$work/smollm2-f32.gguf"
[ -f "$work/gemma3-f32.gguf" ] || "$lowbit" dequantize "$cache/models/gemma-3-270m-q4_k_m.gguf" "$work/gemma3-f32.gguf"

# llama_quant smollm2 Q4_0 → $scratch/smollm2-Q4_0.gguf, made by llama-quantize from the F32
# reference, so both tools see the very same bytes.
llama_quant() {
  [ -f "$scratch/$1-$2.gguf" ] ||
    "$LLAMA_BIN/llama-quantize" "$work/$1-f32.gguf" "$scratch/$1-$2.gguf" "$2" 2 >/dev/null 2>&1
}
