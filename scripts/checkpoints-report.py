"""Rebuilds docs/RESULTS-checkpoints.md: SmolLM2-135M as Hugging Face checkpoints — lowbit's
compressed-tensors folders (W4A16 g64 by rtn, gptq, awq, hqq; W8A16; W8A8 static with several
observers, with and without SmoothQuant; W8A8 dynamic) beside llm-compressor's folders of the same
schemes made from the same float model on the same calibration windows. Every folder is measured
by the same instrument: lowbit perplexity on the folder itself (WikiText-2 test, 40 × 512, KLD and
top-1 against the F32 model; the folder's int8 activation rounding applied), sizes are the
folders' safetensors bytes.

    LOWBIT_BIN=target/release/lowbit ~/.cache/lowbit/hf-venv/bin/python scripts/checkpoints-report.py

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


def cached(key, fn):
    if key not in cache:
        if CACHE_ONLY:
            return None
        print(f"  {key}", file=sys.stderr, flush=True)
        cache[key] = fn()
        save()
    return cache[key]


def folder_bytes(d):
    return sum(f.stat().st_size for f in Path(d).glob("*.safetensors"))


def measure(folder):
    _, out = run([LOWBIT, "perplexity", "--model", folder, "--file", TEST, "--ctx", 512, "--chunks", 40,
                  "--kld-base", BASE, "--threads", THREADS, "--json"])
    d = json.loads(out)
    k = d["kld"]
    return {"ppl": d["ppl"]["value"], "kld": k["mean_kld"]["value"], "kld99": k["kld_percentiles"]["99"],
            "top1": 100 * k["same_top"]["value"], "bytes": folder_bytes(folder)}


hf = SCRATCH / "smollm2-hf"
if not CACHE_ONLY and not hf.exists():
    run([LOWBIT, "export-hf", MODEL, hf])
BASE = SCRATCH / "smollm2-f32.kld"
if not CACHE_ONLY and not BASE.exists():
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


def lowbit_row(label, scheme, extra):
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    out = SCRATCH / f"lowbit-{slug}"

    def make():
        if out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        args = [LOWBIT, "quantize", MODEL, out, "--scheme", scheme, "--threads", THREADS, "--json", *extra]
        if CALIBRATED(scheme, extra):
            args += ["--calib", VALID, "--calib-chunks", WINDOWS]
        secs, _ = run(args)
        r = measure(out)
        r["seconds"] = secs
        return r

    return cached(f"lowbit {label} w{WINDOWS}", make)


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


def fmt(r, what):
    if r is None:
        return "not measured"
    return {"kld": f"{r['kld']:.4f}", "ppl": f"{r['ppl']:.3f}", "top1": f"{r['top1']:.2f}%", "bytes": f"{r['bytes']:,}",
            "kld99": f"{r['kld99']:.3f}", "seconds": f"{r['seconds']:.0f}"}[what]


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
    "| scheme | tool | bytes | PPL | KLD | KLD p99 | top-1 | quantize s |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
]
for label, r in lowbit_results:
    lines.append(f"| {label} | lowbit | {fmt(r, 'bytes')} | {fmt(r, 'ppl')} | {fmt(r, 'kld')} | {fmt(r, 'kld99')} | {fmt(r, 'top1')} | {fmt(r, 'seconds')} |")
for label, r in llmc_results:
    lines.append(f"| {label} | llm-compressor 0.14 | {fmt(r, 'bytes')} | {fmt(r, 'ppl')} | {fmt(r, 'kld')} | {fmt(r, 'kld99')} | {fmt(r, 'top1')} | {fmt(r, 'seconds')} |")
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
    "Tokens/s are not in this table: lowbit's engine runs these folders on dequantized f32 weights",
    "(it has no int8 × int8 GEMM yet), so their speed is the F32 model's.",
    "",
]
(ROOT / "docs" / "RESULTS-checkpoints.md").write_text("\n".join(lines))
print("\n".join(lines))
