"""Rebuilds docs/RESULTS-checkpoints.md: SmolLM2-135M as Hugging Face checkpoints — lowbit's
compressed-tensors folders (W4A16 g64 by rtn, gptq, awq, hqq; W8A16; W8A8 static with several
observers, with and without SmoothQuant; W8A8 dynamic) beside llm-compressor's folders of the same
schemes made from the same float model on the same calibration windows; Gemma-3-270M's lowbit
folders (W4A16 g128, W8A8); and the speed of the W8A8 folders (lowbit's int8 × int8 products)
against lowbit's F32 and llama.cpp's Q8_0, measured in one run. Every folder is measured by the
same instrument: lowbit perplexity on the folder itself (WikiText-2 test, 40 × 512, KLD and top-1
against the F32 model; the folder's int8 activation rounding applied), sizes are the folders'
safetensors bytes.

    LOWBIT_BIN=target/release/lowbit LLAMA_BIN=/path/to/llama.cpp/build/bin \
        ~/.cache/lowbit/hf-venv/bin/python scripts/checkpoints-report.py

LLAMA_BIN is optional (without it the Q8_0 comparison is left out). ONLY=smollm2|gemma3|speed
measures one part (the others render from the cache).

Needs the HF venv (scripts/test.sh makes it), the models (scripts/fetch-models.sh), ../shared/data.
Measurements are cached in $SCRATCH/checkpoints.json (default ~/.cache/lowbit/checkpoints), so a
rerun resumes; CACHE_ONLY=1 only renders.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("LOWBIT_CACHE", Path.home() / ".cache" / "lowbit"))
SCRATCH = Path(os.environ.get("SCRATCH", CACHE / "checkpoints"))
SCRATCH.mkdir(parents=True, exist_ok=True)
LOWBIT = os.environ.get("LOWBIT_BIN", str(ROOT / "target" / "release" / "lowbit"))
DATA = ROOT.parent / "shared" / "data"
TEST, VALID = DATA / "wikitext2-test.txt", DATA / "wikitext2-valid.txt"
MODEL = CACHE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA = CACHE / "models" / "gemma-3-270m-q4_k_m.gguf"
LLAMA_BIN = os.environ.get("LLAMA_BIN")
ONLY = os.environ.get("ONLY")
THREADS = "2"
WINDOWS = int(os.environ.get("WINDOWS", "64"))
CACHE_ONLY = os.environ.get("CACHE_ONLY") == "1"
cache_path = SCRATCH / "checkpoints.json"
cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}


def save():
    tmp = cache_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    tmp.replace(cache_path)


def run(cmd):
    t = time.time()
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stderr[-3000:]}")
    return time.time() - t, p.stdout


def cached(key, fn, part="smollm2"):
    if key not in cache:
        if CACHE_ONLY or (ONLY and ONLY != part):
            return None
        print(f"  {key}", file=sys.stderr, flush=True)
        cache[key] = fn()
        save()
    return cache[key]


def folder_bytes(d):
    return sum(f.stat().st_size for f in Path(d).glob("*.safetensors"))


def measure(folder, base=None):
    _, out = run([LOWBIT, "perplexity", "--model", folder, "--file", TEST, "--ctx", 512, "--chunks", 40,
                  "--kld-base", base or BASE, "--threads", THREADS, "--json"])
    d = json.loads(out)
    k = d["kld"]
    return {"ppl": d["ppl"]["value"], "kld": k["mean_kld"]["value"], "kld99": k["kld_percentiles"]["99"],
            "top1": 100 * k["same_top"]["value"], "bytes": folder_bytes(folder),
            "products": "int8" if d.get("int8_linears") else "f32"}


MEASURING = lambda part: not CACHE_ONLY and ONLY in (None, part)
hf = SCRATCH / "smollm2-hf"
if MEASURING("smollm2") and not hf.exists():
    run([LOWBIT, "export-hf", MODEL, hf])
BASE = SCRATCH / "smollm2-f32.kld"
if (MEASURING("smollm2") or MEASURING("gemma3")) and not BASE.exists():
    run([LOWBIT, "perplexity", "--model", MODEL, "--file", TEST, "--ctx", 512, "--chunks", 40,
         "--save-logits", BASE, "--threads", THREADS])
f32 = cached("f32", lambda: {"ppl": json.loads(run([LOWBIT, "perplexity", "--model", MODEL, "--file", TEST, "--ctx", 512,
                                                    "--chunks", 40, "--threads", THREADS, "--json"])[1])["ppl"]["value"],
                             "bytes": folder_bytes(hf)})

# (label, scheme, lowbit extra arguments); calibrated ones get --calib with WINDOWS windows.
LOWBIT_ROWS = [
    ("W4A16 g64, rtn", "w4a16-g64", []),
    ("W4A16 g64, gptq", "w4a16-g64", ["--method", "gptq"]),
    ("W4A16 g64, awq", "w4a16-g64", ["--method", "awq"]),
    ("W4A16 g64 asym, hqq", "w4a16-g64-asym", ["--method", "hqq"]),
    ("W8A16 (per channel), rtn", "w8a16", []),
    ("W8A8 static, minmax", "w8a8", ["--observer", "minmax"]),
    ("W8A8 static, mse", "w8a8", ["--observer", "mse"]),
    ("W8A8 static, percentile 99.99", "w8a8", ["--observer", "percentile:99.99"]),
    ("W8A8 static, minmax + SmoothQuant 0.8", "w8a8", ["--observer", "minmax", "--smoothquant", "0.8"]),
    ("W8A8 dynamic", "w8a8-dynamic", []),
    ("W8A8 dynamic + SmoothQuant 0.5", "w8a8-dynamic", ["--smoothquant", "0.5"]),
]
LLMC_ROWS = [
    ("W4A16 g64, rtn", "w4a16-g64"),
    ("W4A16 g64, gptq", "gptq-w4a16-g64"),
    ("W8A8 static, minmax", "w8a8"),
    ("W8A8 dynamic", "w8a8-dynamic"),
]
CALIBRATED = lambda scheme, extra: scheme == "w8a8" or any(m in extra for m in ("gptq", "awq")) or "--smoothquant" in extra


def slug(label):
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def lowbit_row(label, scheme, extra, model=MODEL, prefix="lowbit", base=None, windows=WINDOWS, part="smollm2"):
    out = SCRATCH / f"{prefix}-{slug(label)}"

    def make():
        if out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        args = [LOWBIT, "quantize", model, out, "--scheme", scheme, "--threads", THREADS, "--json", *extra]
        if CALIBRATED(scheme, extra):
            args += ["--calib", VALID, "--calib-chunks", windows]
        secs, _ = run(args)
        r = measure(out, base)
        r["seconds"] = secs
        return r

    return cached(f"{prefix} {label} w{windows}", make, part)


def llmc_row(label, scheme):
    out = SCRATCH / f"llmc-{scheme}"

    def make():
        if out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        args = [sys.executable, ROOT / "scripts" / "llmc-quantize.py", hf, out, scheme]
        if scheme.startswith("gptq-") or scheme == "w8a8":
            args += ["--calib", VALID, "--windows", WINDOWS]
        _, stdout = run(args)
        r = measure(out)
        r["seconds"] = float(re.search(r"seconds ([0-9.]+)", stdout).group(1))
        return r

    return cached(f"llmc {label} w{WINDOWS}", make)


lowbit_results = [(label, lowbit_row(label, s, e)) for label, s, e in LOWBIT_ROWS]
llmc_results = [(label, llmc_row(label, s)) for label, s in LLMC_ROWS]

# Gemma-3-270M: rows of 640 split into groups of 128; fewer calibration windows (32) because its
# GPTQ/AWQ passes take about twice SmolLM2's time.
GEMMA_WINDOWS = 32
GEMMA_BASE = SCRATCH / "gemma3-f32.kld"
if MEASURING("gemma3") and not GEMMA_BASE.exists():
    run([LOWBIT, "perplexity", "--model", GEMMA, "--file", TEST, "--ctx", 512, "--chunks", 40,
         "--save-logits", GEMMA_BASE, "--threads", THREADS])
gemma_f32 = cached("gemma3 f32", lambda: {"ppl": json.loads(run([LOWBIT, "perplexity", "--model", GEMMA, "--file", TEST, "--ctx", 512,
                                                                 "--chunks", 40, "--threads", THREADS, "--json"])[1])["ppl"]["value"]}, "gemma3")
GEMMA_ROWS = [
    ("W4A16 g128, rtn", "w4a16-g128", []),
    ("W4A16 g128, gptq", "w4a16-g128", ["--method", "gptq"]),
    ("W4A16 g128, awq", "w4a16-g128", ["--method", "awq"]),
    ("W4A16 g128 asym, hqq", "w4a16-g128-asym", ["--method", "hqq"]),
    ("W8A16 (per channel), rtn", "w8a16", []),
    ("W8A8 static, minmax", "w8a8", ["--observer", "minmax"]),
    ("W8A8 static, minmax + SmoothQuant 0.8", "w8a8", ["--observer", "minmax", "--smoothquant", "0.8"]),
    ("W8A8 dynamic", "w8a8-dynamic", []),
    ("W8A8 dynamic + SmoothQuant 0.5", "w8a8-dynamic", ["--smoothquant", "0.5"]),
]
gemma_results = [(label, lowbit_row(label, sch, e, GEMMA, "gemma3", GEMMA_BASE, GEMMA_WINDOWS, "gemma3")) for label, sch, e in GEMMA_ROWS]

# Speed: lowbit bench over the F32 model and two W8A8 folders (int8 × int8 products), the same
# again with --fake-quant, and llama-bench on llama.cpp's Q8_0 of the same F32 model — one run of
# this script, the machine otherwise idle.
SPEED_FOLDERS = ["W8A8 dynamic", "W8A8 static, minmax + SmoothQuant 0.8"]


def speed():
    f32g = SCRATCH / "smollm2-f32.gguf"
    if not f32g.exists():
        run([LOWBIT, "dequantize", MODEL, f32g, "--type", "F32"])
    folders = [SCRATCH / f"lowbit-{slug(l)}" for l in SPEED_FOLDERS]
    out = {}
    for fake in (False, True):
        args = [LOWBIT, "bench", "--model", f32g]
        for f in folders:
            args += ["--model", f]
        args += ["-p", 512, "-n", 32, "-r", 3, "--threads", THREADS, "--no-bandwidth", "--json"] + (["--fake-quant"] if fake else [])
        d = json.loads(run(args)[1])
        for name, m in zip(["F32"] + SPEED_FOLDERS, d["models"]):
            t = {x["test"]: x["median"] for x in m["tests"]}
            out[f"{name}{' fake' if fake else ''}"] = {"pp512": t["pp512"], "tg32": t["tg32"], "int8_linears": m["int8_linears"]}
    if LLAMA_BIN:
        q8 = SCRATCH / "smollm2-q8_0.gguf"
        if not q8.exists():
            run([Path(LLAMA_BIN) / "llama-quantize", f32g, q8, "Q8_0", THREADS])
        rows = json.loads(run([Path(LLAMA_BIN) / "llama-bench", "-m", q8, "-m", f32g, "-p", 512, "-n", 32, "-t", THREADS,
                               "-r", 3, "-o", "json"])[1])
        for r in rows:
            key = "llama.cpp Q8_0" if str(r["model_filename"]).endswith("q8_0.gguf") else "llama.cpp F32"
            test = "pp512" if r["n_prompt"] else "tg32"
            out.setdefault(key, {})[test] = r["avg_ts"]
    return out


speed_results = cached("speed", speed, "speed")


def fmt(r, what):
    if r is None:
        return "not measured"
    return {"kld": f"{r['kld']:.4f}", "ppl": f"{r['ppl']:.3f}", "top1": f"{r['top1']:.2f}%", "bytes": f"{r['bytes']:,}",
            "kld99": f"{r['kld99']:.3f}", "seconds": f"{r['seconds']:.0f}", "products": r.get("products", "f32")}[what]


lines = [
    "# Hugging Face checkpoints: what lowbit's compressed-tensors folders measure",
    "",
    "Generated by `scripts/checkpoints-report.py` (do not edit by hand). SmolLM2-135M-Instruct (its",
    "shipped Q4_1 GGUF expanded to F32 is the float model; `lowbit export-hf` gives llm-compressor the",
    f"same weights). Calibration: the first {WINDOWS} windows of 512 tokens of WikiText-2 *valid*, for",
    "both tools. Every folder is measured by one instrument, `lowbit perplexity` on the folder (it",
    "dequantizes the weights exactly as compressed-tensors does — checked bit for bit in `tests/hf` —",
    "and applies the folder's int8 activation rounding): WikiText-2 test, 40 chunks of 512, KL",
    "divergence and top-1 agreement against the F32 model, 2 threads. SmolLM2's rows of 576 do not",
    "split into groups of 128 (576 = 9 × 64), so W4A16 uses g64. Sizes are the folders' safetensors",
    "bytes: float tensors (the 28M-parameter tied embedding among them) are F32, as lowbit writes",
    "them so scales and dequantized values stay exact. \"quantize s\": wall seconds of the tool's",
    "quantization (calibration included) on 2 threads; the committed run shared the machine with",
    "the test suite, so they are upper bounds.",
    "",
    f"F32: PPL {f32['ppl']:.3f}, {f32['bytes']:,} bytes." if f32 else "F32: not measured.",
    "",
    "\"products\": how `lowbit perplexity` ran a W8A8 folder's linears — `int8` (int8 × int8 products,",
    "the default) or `f32` (the rounded activations through f32 products, as `--fake-quant` does; rows",
    "measured before the integer kernels existed). The two are equally valid samples of the scheme",
    "(docs/ACTIVATIONS.md: W8A8 is chaotic, last-bit differences move single codes).",
    "",
    "| scheme | tool | bytes | PPL | KLD | KLD p99 | top-1 | products | quantize s |",
    "|---|---|---:|---:|---:|---:|---:|---|---:|",
]
for label, r in lowbit_results:
    lines.append(f"| {label} | lowbit | {fmt(r, 'bytes')} | {fmt(r, 'ppl')} | {fmt(r, 'kld')} | {fmt(r, 'kld99')} | {fmt(r, 'top1')} | {fmt(r, 'products')} | {fmt(r, 'seconds')} |")
for label, r in llmc_results:
    lines.append(f"| {label} | llm-compressor 0.14 | {fmt(r, 'bytes')} | {fmt(r, 'ppl')} | {fmt(r, 'kld')} | {fmt(r, 'kld99')} | {fmt(r, 'top1')} | {fmt(r, 'products')} | {fmt(r, 'seconds')} |")
lines.append("")
lb = dict(lowbit_results)
lc = dict(llmc_results)
g_lb, g_lc = lb.get("W4A16 g64, gptq"), lc.get("W4A16 g64, gptq")
if g_lb and g_lc:
    ratio = g_lb["kld"] / g_lc["kld"]
    lines.append(f"**Goal: lowbit GPTQ W4A16 KLD ≤ 0.8× llm-compressor's GPTQ W4A16 (g64, same windows):** "
                 f"{g_lb['kld']:.4f} vs {g_lc['kld']:.4f} = {ratio:.2f}× — {'met' if ratio <= 0.8 else 'not met'}.")
best_static = min((r for l, r in lowbit_results if r and l.startswith("W8A8 static")), key=lambda r: r["kld"], default=None)
if best_static:
    lines.append(f"**Goal: W8A8 static KLD ≤ llama.cpp Q8_0's (SmolLM2 0.0035):** best lowbit static {best_static['kld']:.4f} — "
                 f"{'met' if best_static['kld'] <= 0.0035 else 'not met'}.")
lines += [
    "",
    "## Gemma-3-270M (lowbit's folders)",
    "",
    f"Calibration: the first {GEMMA_WINDOWS} windows of WikiText-2 *valid*; rows of 640 split into groups of 128, so",
    "W4A16 uses g128. Same instrument (KLD against Gemma-3's F32 logits). Bytes are dominated by the",
    "262,144 × 640 tied embedding, which stays F32 (671 MB) as in every folder lowbit writes.",
    "",
    f"F32: PPL {gemma_f32['ppl']:.3f}." if gemma_f32 else "F32: not measured.",
    "",
    "| scheme | bytes | PPL | KLD | KLD p99 | top-1 | products | quantize s |",
    "|---|---:|---:|---:|---:|---:|---|---:|",
]
for label, r in gemma_results:
    lines.append(f"| {label} | {fmt(r, 'bytes')} | {fmt(r, 'ppl')} | {fmt(r, 'kld')} | {fmt(r, 'kld99')} | {fmt(r, 'top1')} | {fmt(r, 'products')} | {fmt(r, 'seconds')} |")
best_g = min((r for l, r in gemma_results if r and l.startswith("W8A8 static")), key=lambda r: r["kld"], default=None)
if best_g:
    lines += ["", f"**Goal: W8A8 static KLD ≤ llama.cpp Q8_0's (Gemma-3 0.0023):** best lowbit static {best_g['kld']:.4f} — "
                  f"{'met' if best_g['kld'] <= 0.0023 else 'not met'}."]
lines += [
    "",
    "## Speed of W8A8 (SmolLM2, 2 threads, one run)",
    "",
    "`lowbit bench -p 512 -n 32 -r 3` on the F32 GGUF and on two W8A8 folders, whose layer linears run",
    "as int8 × int8 products (`kernels::int8`: AVX-512 VNNI here), then the same folders with",
    "`--fake-quant` (activations rounded, products in f32); `llama-bench` on llama.cpp's Q8_0 and F32",
    "of the same model in the same run. Medians of tokens/s.",
    "",
    "| model | pp512 t/s | × lowbit F32 | tg32 t/s | × lowbit F32 |",
    "|---|---:|---:|---:|---:|",
]
if speed_results:
    base = speed_results["F32"]
    names = ["F32"] + SPEED_FOLDERS + [f"{n} fake" for n in SPEED_FOLDERS] + ["llama.cpp Q8_0", "llama.cpp F32"]
    for n in names:
        r = speed_results.get(n)
        if not r:
            continue
        label = {"F32": "lowbit F32"}.get(n, n if n.startswith("llama") else f"lowbit {n.replace(' fake', '')}"
                                           + (" (fake quantization)" if n.endswith(" fake") else " (int8 products)"))
        lines.append(f"| {label} | {r['pp512']:.1f} | {r['pp512'] / base['pp512']:.2f} | {r['tg32']:.1f} | {r['tg32'] / base['tg32']:.2f} |")
    w8 = min(speed_results[n]["pp512"] for n in SPEED_FOLDERS)
    lines += ["", f"**Goal: W8A8 prompt processing ≥ 1.3× lowbit's F32:** slowest W8A8 folder {w8 / base['pp512']:.2f}× — "
                  f"{'met' if w8 / base['pp512'] >= 1.3 else 'not met'}."]
    if "llama.cpp Q8_0" in speed_results:
        q = speed_results["llama.cpp Q8_0"]["pp512"]
        lines.append(f"**Goal: W8A8 prompt processing ≥ 1.0× llama.cpp's Q8_0:** {w8 / q:.2f}× — {'met' if w8 >= q else 'not met'}.")
else:
    lines.append("| not measured | | | | |")
lines.append("")
(ROOT / "docs" / "RESULTS-checkpoints.md").write_text("\n".join(lines))
print("\n".join(lines))
