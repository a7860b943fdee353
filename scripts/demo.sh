#!/usr/bin/env bash
# The main job on a real model, end to end: fetch SmolLM2-135M-Instruct, expand it to F32 (the
# reference), quantize it to a few types, then measure each one against the reference and print
# one table: size, bits per weight, perplexity, KL divergence and top-1 agreement on WikiText-2,
# prompt and generation tokens/s. A few minutes on 2 cores.
#
#   scripts/demo.sh [TYPE ...]      default: Q8_0 Q6_K Q4_K_M IQ4_NL Q4_0
#   CHUNKS=40 scripts/demo.sh       more text (default 16 chunks of 512 tokens)
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${LOWBIT_CACHE:-$HOME/.cache/lowbit}"
work="$cache/demo"
mkdir -p "$work"
chunks="${CHUNKS:-16}"
text="${LOWBIT_WIKITEXT:-$(cd .. && pwd)/shared/data/wikitext2-test.txt}"

scripts/fetch-models.sh smollm2
cargo build --release -q -p lowbit-cli
lowbit=target/release/lowbit
src="$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
f32="$work/SmolLM2-135M-F32.gguf"

"$lowbit" inspect "$src" --no-tensors
[ -f "$f32" ] || "$lowbit" dequantize "$src" "$f32" --type F32
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(Q8_0 Q6_K Q4_K_M IQ4_NL Q4_0)
models=("$f32")
for t in "${types[@]}"; do
  echo
  "$lowbit" quantize "$f32" "$work/SmolLM2-135M-$t.gguf" --type "$t"
  models+=("$work/SmolLM2-135M-$t.gguf")
done

if [ ! -f "$text" ]; then
  echo "no evaluation text at $text (set LOWBIT_WIKITEXT): skipping the measurements" >&2
  exit 0
fi
echo
echo "Measuring on $(basename "$text"), $chunks chunks of 512 tokens, against the F32 reference…"
"$lowbit" perplexity --model "$f32" --file "$text" --chunks "$chunks" \
  --save-logits "$work/base.logits" --json > "$work/F32.ppl.json"
for t in "${types[@]}"; do
  "$lowbit" perplexity --model "$work/SmolLM2-135M-$t.gguf" --file "$text" --chunks "$chunks" \
    --kld-base "$work/base.logits" --json > "$work/$t.ppl.json"
done
bench_args=()
for m in "${models[@]}"; do bench_args+=(--model "$m"); done
"$lowbit" bench "${bench_args[@]}" -p 128 -n 32 -r 3 --json > "$work/bench.json"
rm -f "$work/base.logits"

python3 - "$work" "${types[@]}" <<'PY'
import json, sys
work, types = sys.argv[1], sys.argv[2:]
bench = {m["model"].rsplit("/", 1)[-1]: m for m in json.load(open(f"{work}/bench.json"))["models"]}
base = json.load(open(f"{work}/F32.ppl.json"))
print(f"\nSmolLM2-135M-Instruct, WikiText-2 test ({base['chunks']} × {base['ctx']} tokens), "
      f"{json.load(open(f'{work}/bench.json'))['threads']} threads")
head = ("type", "size MiB", "bpw", "PPL", "ΔPPL", "KLD", "top-1", "pp128 t/s", "tg32 t/s")
print("| " + " | ".join(head) + " |")
print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
for t in ["F32"] + types:
    name = f"SmolLM2-135M-{t}.gguf"
    p = json.load(open(f"{work}/{t}.ppl.json"))
    b = bench[name]
    tests = {x["test"]: x["median"] for x in b["tests"]}
    ppl = p["ppl"]["value"]
    k = p.get("kld")
    row = [t, f"{b['file_bytes'] / 2**20:.1f}", f"{b['bits_per_weight']:.2f}", f"{ppl:.4f}",
           f"{100 * (ppl / base['ppl']['value'] - 1):+.2f}%" if k else "–",
           f"{k['mean_kld']['value']:.5f}" if k else "–",
           f"{100 * k['same_top']['value']:.2f}%" if k else "–",
           f"{tests.get('pp128', 0):.0f}", f"{tests.get('tg32', 0):.0f}"]
    print("| " + " | ".join(row) + " |")
PY
