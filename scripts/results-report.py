#!/usr/bin/env python3
"""Rebuilds docs/RESULTS.md: lowbit's calibrated methods against llama.cpp on SmolLM2-135M and
Gemma-3-270M. Called by scripts/results-report.sh (which sets up the paths); every measurement
is cached in a JSON file beside the model files, so an interrupted run resumes where it stopped.

What it does, per model:
  1. F32 logits on WikiText-2 *test* (40 × 512): llama-perplexity --kl-divergence-base and
     lowbit perplexity --save-logits (each tool's KLD is measured against its own F32 run).
  2. Importance matrices on WikiText-2 *valid* (the first 128 windows of 512 tokens), by
     llama-imatrix and by lowbit imatrix: the time of each, and the largest relative difference
     of their values per tensor.
  3. For each type: llama-quantize's file (plain, and with llama's imatrix) and lowbit's files
     (rtn plain, rtn with its own importance matrix, gptq, awq, hqq where the type has a zero
     point) quantized from the same F32 file, with the quantize time and peak memory; each file
     measured by llama-perplexity (-c 512 --chunks 40, KLD vs F32) and by lowbit perplexity.
  4. Budgeted files (lowbit quantize --target-size / --target-bpw) at the sizes of llama.cpp's
     imatrix files and below its smallest preset.
  5. Affine layouts in memory (lowbit perplexity --quantize), the calibration-size study and the
     peers' layouts.

SCOPE=goals (the default) measures what the issues' goals compare (llama.cpp's files, lowbit's
rtn + importance matrix and gptq files, the rtn budgets) and takes the rest (awq, hqq, plain rtn,
gptq budgets, affine layouts, the studies) only from the cache; SCOPE=full measures everything.
CACHE_ONLY=1 measures nothing: it renders what the cache holds.
"""
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

LLAMA = Path(os.environ["LLAMA_BIN"])
LOWBIT = os.environ["LOWBIT_BIN"]
WORK = Path(os.environ["WORK"])  # F32 references
OUT = Path(os.environ["SCRATCH"])  # files and the cache
TEST = os.environ["TEST_TEXT"]
VALID = os.environ["VALID_TEXT"]
PY = os.environ.get("ORACLE_PY", sys.executable)
DOC = Path(os.environ.get("RESULTS_DOC", "docs/RESULTS.md"))
WINDOWS = 128
THREADS = "2"
SCOPE = os.environ.get("SCOPE", "goals")
CACHE_ONLY = os.environ.get("CACHE_ONLY") == "1"

MODELS = {
    "smollm2": {
        "title": "SmolLM2-135M-Instruct",
        "types": ["Q4_0", "Q4_K_M", "IQ4_XS", "Q3_K_M", "Q2_K"],
        # lowbit files at a size llama.cpp's Q4_K_M reaches (its fallbacks make it 6.2 bpw here).
        "extra": [("Q5_K_S", "gptq")],
        # 576-wide rows do not split into groups of 128 (llm-compressor refuses g128 too).
        "affine": ["int4-g64", "int3-g64"],
        "peers": [("int4-g64-sym", "gptq"), ("int4-g64", "gptq"), ("int4-g32", "gptq"),
                  ("int4-g64-sym", "rtn"), ("int4-g64", "awq")],
        "windows_study": [32, 128, 512],
        # Budgets: llama.cpp's imatrix files' sizes, and bits per weight below every preset.
        "budget_types": ["Q2_K", "Q3_K_M", "IQ4_XS", "Q4_K_M"],
        "budget_bpw": [3.0, 3.5, 4.3, 4.6],
        "budget_methods": ["rtn", "gptq"],
        # Every file measured by both tools.
        "lowbit_measures": None,
        "time_imatrix": True,
        # The automatic recipe (rtn, the cached table) at these bpw, llama.cpp's files beside it.
        "recipe_bpw": "4.6,5.0,5.6",
    },
    "gemma3": {
        "title": "Gemma-3-270M",
        # The anchors (a goals run measures only those; ~10 min per type here).
        "types": ["IQ4_XS", "Q3_K_M", "Q2_K"] + (["Q4_K_M", "Q4_0"] if SCOPE == "full" else []),
        "extra": [],
        "affine": ["int4-g128", "int3-g128"],
        # Each in-memory measurement of Gemma-3 takes ~4 min here: the methods that matter most.
        "affine_methods": ("rtn", "gptq"),
        "budget_types": ["Q2_K", "Q3_K_M", "IQ4_XS", "Q4_K_M"],
        "budget_bpw": [4.6, 4.8],
        "budget_methods": ["gptq"],
        "peers": [],
        "windows_study": [],
        # Gemma-3's 262k-token head makes each of lowbit's measurements ~4 min here: in a goals
        # run llama.cpp measures Gemma-3 alone (the goal's instrument); SCOPE=full adds lowbit's.
        "lowbit_measures": {"llama imatrix", "lowbit gptq"} if SCOPE == "full" else set(),
        "required": {"llama imatrix", "lowbit gptq"},
        "budgets_required": False,
    },
}
HQQ_TYPES = {"Q4_K_M", "Q2_K", "Q4_1", "Q5_1", "Q4_K_S", "Q5_K_S", "Q5_K_M"}

cache_path = OUT / "results.json"
cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}


def save():
    tmp = cache_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
    tmp.replace(cache_path)


def run(cmd, log=None):
    """Runs cmd under /usr/bin/time; returns (seconds, peak RSS bytes, stdout)."""
    full = ["/usr/bin/time", "-f", "TIME %e %M"] + [str(c) for c in cmd]
    p = subprocess.run(full, capture_output=True, text=True)
    if log:
        Path(log).write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stderr[-3000:]}")
    m = re.findall(r"TIME ([0-9.]+) ([0-9]+)", p.stderr)[-1]
    return float(m[0]), int(m[1]) * 1024, p.stdout


class Missing(Exception):
    """A measurement this run does not make (CACHE_ONLY, or an optional one outside SCOPE=full)."""


optional_depth = 0
SKIPPED = []


def optional(label, fn):
    """fn() when its measurements are cached or SCOPE=full; else None, and the label noted."""
    global optional_depth
    optional_depth += SCOPE != "full"
    try:
        return fn()
    except Missing:
        SKIPPED.append(label)
        return None
    finally:
        optional_depth -= SCOPE != "full"


def need(label, fn):
    """fn(): a measurement the goals compare (in a CACHE_ONLY run, only when cached)."""
    return optional(label, fn) if CACHE_ONLY else fn()


def cached(key, fn):
    if key not in cache and (CACHE_ONLY or optional_depth):
        raise Missing(key)
    if key not in cache:
        print(f"  {key}", file=sys.stderr, flush=True)
        cache[key] = fn()
        save()
    return cache[key]


def llama_kld(model, f, base):
    log = f"{f}.llama.log"
    run([LLAMA / "llama-perplexity", "-m", f, "-f", TEST, "-c", "512", "--chunks", "40",
         "--kl-divergence-base", base, "--kl-divergence", "-t", THREADS], log)
    text = Path(log).read_text()
    num = lambda pat: float(re.search(pat, text, re.M).group(1))
    return {
        "ppl": num(r"^Mean PPL\(Q\)\s*:\s*([0-9.]+)"),
        "kld": num(r"^Mean\s+KLD:\s*([0-9.]+)"),
        "kld99": num(r"^99\.0%\s+KLD:\s*([0-9.]+)"),
        "top1": num(r"^Same top p:\s*([0-9.]+)"),
    }


def lowbit_kld(f, base, extra=()):
    _, _, out = run([LOWBIT, "perplexity", "--model", f, "--file", TEST, "--ctx", "512",
                     "--chunks", "40", "--kld-base", base, "--threads", THREADS, "--json", *extra])
    d = json.loads(out)
    k = d["kld"]
    r = {"ppl": d["ppl"]["value"], "kld": k["mean_kld"]["value"],
         "kld99": k["kld_percentiles"]["99"], "top1": 100 * k["same_top"]["value"]}
    if "quantized" in d:
        q = d["quantized"]
        r.update(bpw=q["bits_per_weight"], matrix_bytes=q["matrix_bytes"], seconds=q["seconds"])
    return r


def imatrix_compare(a, b):
    """Largest relative difference of mean x² per tensor between two imatrix files."""
    script = r'''
import sys, numpy as np
from gguf import GGUFReader
def load(p):
    r = GGUFReader(p); t = {x.name: np.array(x.data, dtype=np.float64).reshape(-1) for x in r.tensors}
    return {n[:-len('.in_sum2')]: t[n] / t[n[:-len('.in_sum2')] + '.counts'][0] for n in t if n.endswith('.in_sum2')}
a, b = load(sys.argv[1]), load(sys.argv[2])
worst = {}
for n in sorted(set(a) & set(b)):
    x, y = a[n], b[n]
    worst[n] = float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-12 * np.max(np.abs(y)) + 1e-30)))
import json; print(json.dumps({"common": len(worst), "only_a": len(set(a) - set(b)), "only_b": len(set(b) - set(a)), "worst": worst}))
'''
    p = subprocess.run([PY, "-c", script, str(a), str(b)], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(p.stderr)
    return json.loads(p.stdout)


def size(f):
    return os.path.getsize(f)


def model_results(m, spec):
    f32 = WORK / f"{m}-f32.gguf"
    _, _, out = run([LOWBIT, "inspect", f32, "--json"])
    ELEMENTS[m] = json.loads(out)["elements"]
    lbase, bbase = OUT / f"{m}.llama-base.kld", OUT / f"{m}.lowbit-base.bin"
    # Written under a temporary name and renamed, so an interrupted run never leaves half a base.
    if CACHE_ONLY and not lbase.exists():
        raise Missing(f"{m} F32 logits")
    if not lbase.exists():
        tmp = lbase.with_suffix(".part")
        run([LLAMA / "llama-perplexity", "-m", f32, "-f", TEST, "-c", "512", "--chunks", "40",
             "--kl-divergence-base", tmp, "-t", THREADS], f"{lbase}.log")
        tmp.replace(lbase)

    def lowbit_base():
        """lowbit's F32 logits, made the first time a measurement by lowbit needs them."""
        if bbase.exists():
            return bbase
        if CACHE_ONLY:
            raise Missing(f"{m} lowbit F32 logits")
        tmp = bbase.with_suffix(".part")
        run([LOWBIT, "perplexity", "--model", f32, "--file", TEST, "--chunks", "40",
             "--save-logits", tmp, "--threads", THREADS])
        tmp.replace(bbase)
        return bbase
    # Importance matrices on the same windows.
    lim, bim = OUT / f"{m}-llama.imatrix.gguf", OUT / f"{m}-lowbit.imatrix.gguf"
    cached(f"{m}/imatrix/llama", lambda: dict(zip(("seconds", "rss"), run(
        [LLAMA / "llama-imatrix", "-m", f32, "-f", VALID, "-c", "512", "--chunks", WINDOWS,
         "-o", lim, "-t", THREADS, "--no-ppl"], f"{lim}.log")[:2])))
    cached(f"{m}/imatrix/lowbit", lambda: dict(zip(("seconds", "rss"), run(
        [LOWBIT, "imatrix", "--model", f32, "--file", VALID, "--ctx", "512", "--chunks", WINDOWS,
         "-o", bim, "--threads", THREADS])[:2])))
    cached(f"{m}/imatrix/compare", lambda: imatrix_compare(bim, lim))
    # The times again, alone on the machine (the first run shared it with other work); the
    # files they write are thrown away, those above stay what every later step used.
    for tool, cmd in (("llama", [LLAMA / "llama-imatrix", "-m", f32, "-f", VALID, "-c", "512",
                                 "--chunks", WINDOWS, "-o", OUT / "timing.imatrix.gguf", "-t", THREADS, "--no-ppl"]),
                      ("lowbit", [LOWBIT, "imatrix", "--model", f32, "--file", VALID, "--ctx", "512",
                                  "--chunks", WINDOWS, "-o", OUT / "timing.imatrix.gguf", "--threads", THREADS])):
        (need if spec.get("time_imatrix") else optional)(f"{m} {tool} imatrix time", lambda: cached(f"{m}/imatrix/time-{tool}", lambda: dict(
            zip(("seconds", "rss"), run(cmd, OUT / "timing.imatrix.log")[:2]))))

    both = spec["lowbit_measures"]

    def second(kind, key, f):
        """lowbit's own measurement of a file, where this model takes one."""
        if both is None or kind in both:
            return cached(key + "/lowbit", lambda: lowbit_kld(f, lowbit_base()))
        return None

    def lowbit_file(ty, method, calib=True, windows=WINDOWS):
        tag = f"{ty}-{method}" + ("" if calib or method == "hqq" else "-plain") + (
            f"-w{windows}" if windows != WINDOWS else "")
        f = OUT / f"{m}-lowbit-{tag}.gguf"
        key = f"{m}/file/lowbit/{tag}"

        def make():
            cmd = [LOWBIT, "quantize", f32, f, "--type", ty, "--method", method, "--threads",
                   THREADS, "--json"]
            if method == "rtn" and calib:
                cmd += ["--imatrix", bim]  # the same windows' statistics, already collected
            elif calib and method != "hqq":
                cmd += ["--calib", VALID, "--calib-chunks", windows]
            t, rss, out = run(cmd)
            d = json.loads(out)
            return {"seconds": t, "rss": rss, "bytes": size(f), "bpw": d["bits_per_weight"],
                    "calibration": d.get("calibration")}
        info = cached(key, make)
        info["llama"] = cached(key + "/llama", lambda: llama_kld(m, f, lbase))
        info["lowbit"] = second(f"lowbit {method}", key, f)
        return info

    def llama_file(ty, imatrix):
        tag = f"{ty}-{'imatrix' if imatrix else 'plain'}"
        f = OUT / f"{m}-llama-{tag}.gguf"
        key = f"{m}/file/llama/{tag}"

        def make():
            cmd = [LLAMA / "llama-quantize"] + (["--imatrix", lim] if imatrix else []) + [f32, f, ty, THREADS]
            t, rss, _ = run(cmd, f"{f}.log")
            return {"seconds": t, "rss": rss, "bytes": size(f)}
        info = cached(key, make)
        info["llama"] = cached(key + "/llama", lambda: llama_kld(m, f, lbase))
        info["lowbit"] = second(f"llama {'imatrix' if imatrix else 'plain'}", key, f)
        return info

    rows = {}
    # What the goals compare first (llama.cpp's imatrix file against lowbit's gptq file), then
    # the rest; entries a goals-scope run does not measure are left out.
    required = spec.get("required", {"llama plain", "llama imatrix", "lowbit rtn+imatrix", "lowbit gptq"})
    makers = {
        "llama plain": lambda ty: llama_file(ty, False),
        "llama imatrix": lambda ty: llama_file(ty, True),
        "lowbit rtn": lambda ty: lowbit_file(ty, "rtn", calib=False),
        "lowbit rtn+imatrix": lambda ty: lowbit_file(ty, "rtn"),
        "lowbit gptq": lambda ty: lowbit_file(ty, "gptq"),
        "lowbit awq": lambda ty: lowbit_file(ty, "awq"),
        "lowbit hqq": lambda ty: lowbit_file(ty, "hqq", calib=False),
    }
    order = ["llama imatrix", "lowbit gptq", "llama plain", "lowbit rtn+imatrix", "lowbit rtn",
             "lowbit awq", "lowbit hqq"]
    for name in order:
        for ty in spec["types"]:
            if name == "lowbit hqq" and ty not in HQQ_TYPES:
                continue
            if name == "lowbit rtn" and both is not None:
                continue
            make = makers[name]
            r = need(f"{ty} {name}", lambda: make(ty)) if name in required else optional(f"{ty} {name}", lambda: make(ty))
            if r is not None:
                rows.setdefault(ty, {})[name] = r
    for ty, method in spec["extra"]:
        r = optional(f"{ty} lowbit {method}", lambda: lowbit_file(ty, method))
        if r is not None:
            rows.setdefault(ty, {})[f"lowbit {method}"] = r
    # Rows in the spec's order of types, files in a fixed order (the extras last).
    shown = ["llama plain", "llama imatrix", "lowbit rtn", "lowbit rtn+imatrix", "lowbit gptq",
             "lowbit awq", "lowbit hqq"]
    rows = {ty: {n: fs[n] for n in shown + [k for k in fs if k not in shown] if n in fs}
            for ty, fs in rows.items()}

    def in_memory(layout, method, windows=WINDOWS):
        key = f"{m}/memory/{layout}-{method}" + (f"-w{windows}" if windows != WINDOWS else "")
        extra = ["--quantize", layout, "--method", method]
        if method in ("gptq", "awq", "rtn+imatrix"):
            extra = ["--quantize", layout, "--method", method.split("+")[0], "--calib", VALID,
                     "--calib-chunks", str(windows)]
        return cached(key, lambda: lowbit_kld(WORK / f"{m}-f32.gguf", lowbit_base(), extra))

    def budget_file(label, method, target):
        tag = f"budget-{label}-{method}"
        f = OUT / f"{m}-lowbit-{tag}.gguf"
        key = f"{m}/budget/{label}-{method}"

        def make():
            # rtn takes the importance matrix already collected on the same windows; the
            # calibration text then feeds the sensitivity table only.
            cmd = [LOWBIT, "quantize", f32, f, "--method", method, "--calib", VALID,
                   "--calib-chunks", WINDOWS, "--threads", THREADS, "--json"] + target
            if method == "rtn":
                cmd += ["--imatrix", bim]
            p = subprocess.run(["/usr/bin/time", "-f", "TIME %e %M"] + [str(c) for c in cmd],
                               capture_output=True, text=True)
            tm = re.findall(r"TIME ([0-9.]+) ([0-9]+)", p.stderr)[-1]
            if p.returncode != 0:
                err = [l for l in p.stderr.splitlines() if l.startswith("error") or l.startswith("  ")]
                return {"error": " ".join(err)[:600], "seconds": float(tm[0])}
            d = json.loads(p.stdout)
            return {"seconds": float(tm[0]), "rss": int(tm[1]) * 1024, "bytes": size(f),
                    "bpw": d["bits_per_weight"], "budget": d["budget"]}
        info = cached(key, make)
        if "error" not in info:
            info["llama"] = cached(key + "/llama", lambda: llama_kld(m, f, lbase))
            info["lowbit"] = second(f"lowbit {method}", key, f)
        return info

    budgets = {}
    for i, method in enumerate(spec.get("budget_methods", [])):
        # The first method's budgets are the goals'; the others are optional.
        pick = need if i == 0 and spec.get("budgets_required", True) else optional
        for ty in spec.get("budget_types", []):
            ref = rows.get(ty, {}).get("llama imatrix")
            if ref is None:
                continue
            r = pick(f"{ty}-size {method} budget", lambda: budget_file(f"{ty}", method, ["--target-size", str(ref["bytes"])]))
            if r is not None:
                budgets[(f"{ty} size", method)] = (ref, r)
        for bpw in spec.get("budget_bpw", []):
            r = pick(f"{bpw} bpw {method} budget", lambda: budget_file(f"{bpw}bpw", method, ["--target-bpw", str(bpw)]))
            if r is not None:
                budgets[(f"{bpw} bpw", method)] = (None, r)

    recipe = None
    if spec.get("recipe_bpw"):
        refs = OUT / f"{m}-llama-presets.json"
        rdir = OUT / f"{m}-recipe"

        def make_recipe():
            refs.write_text(json.dumps([
                {"name": f"llama.cpp {ty} imatrix (llama-perplexity, test)", "bytes": fs["llama imatrix"]["bytes"],
                 "kld": fs["llama imatrix"]["llama"]["kld"]} for ty, fs in rows.items() if "llama imatrix" in fs]))
            subprocess.run(["rm", "-rf", str(rdir)], check=True)
            t, rss, out = run([LOWBIT, "recipe", "--model", f32, "--calib", VALID, "--budgets",
                               spec["recipe_bpw"], "--methods", "rtn", "--calib-chunks", "32",
                               "--compare", refs, "-o", rdir, "--threads", THREADS, "--json"])
            return {"seconds": t, "rss": rss, "recipe": json.loads(out)}
        recipe = need(f"{m} recipe", lambda: cached(f"{m}/recipe", make_recipe))
        if recipe and (rdir / "report.html").exists():
            (DOC.parent / f"report-{m}.html").write_bytes((rdir / "report.html").read_bytes())

    def kept(d):
        return {k: v for k, v in d.items() if v is not None}
    methods = spec.get("affine_methods", ("rtn", "gptq", "awq", "hqq"))
    # MEASURE_MEMORY=1: the in-memory layouts (affine, peers) are measured in a goals run too.
    optional_memory = need if os.environ.get("MEASURE_MEMORY") == "1" else optional
    affine = kept({lay: kept({meth: optional_memory(f"{lay} {meth} in memory", lambda: in_memory(lay, meth)) for meth in methods}) or None
                   for lay in spec["affine"]})
    peers = kept({f"{lay} {meth}": optional_memory(f"{lay} {meth} in memory", lambda: in_memory(lay, meth)) for lay, meth in spec["peers"]})
    study = kept({w: optional(f"Q4_0 gptq with {w} windows", lambda: lowbit_file("Q4_0", "gptq", windows=w)) for w in spec["windows_study"]})
    return rows, affine, peers, study, budgets, recipe


# Weights per model (the bpw of llama.cpp's files: file bytes × 8 / elements).
ELEMENTS = {}


def render(results):
    L = ["# Results: calibrated quantization against llama.cpp", "",
         "Rebuilt by `LLAMA_BIN=… scripts/results-report.sh` (it builds nothing of llama.cpp;"
         " measurements are cached, so a rerun only adds what is missing). Every file is made from"
         " the same F32 file (the shipped model expanded) and measured twice on WikiText-2 *test*"
         " (40 windows of 512 tokens, 2 threads): by llama.cpp's `llama-perplexity` (KLD against"
         " its own F32 run; its 8-bit activations add ≈0.003 to every quantized file) and by"
         " `lowbit perplexity` (f32 activations: the weights' error alone). Calibration and"
         f" importance matrices use the first {WINDOWS} windows of 512 tokens of WikiText-2"
         " *valid* — never the test split. Times and peak memory are `/usr/bin/time` of the"
         " whole command on this 2-core machine; entries measured while the machine also ran other"
         " work (a build, a test) are slower than alone; the importance-matrix times were"
         " re-measured alone.", ""]
    for m, (rows, affine, peers, study, im, budgets, recipe) in results.items():
        L += [f"## {MODELS[m]['title']}", ""]
        lm = MODELS[m]["lowbit_measures"]
        if lm is not None:
            L += [("lowbit's own measurement: " + ", ".join(sorted(lm)) + " files only." if lm else
                   "Measured by llama-perplexity only in this run (lowbit's own measurement takes"
                   " ~4 min per file on this model; `SCOPE=full` adds it)."), ""]
        L += ["| type | file | bytes | bpw | llama.cpp PPL | KLD | 99% KLD | top-1 | lowbit PPL |"
              " KLD | 99% KLD | top-1 | quantize s | peak MiB |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for ty, files in rows.items():
            for name, r in files.items():
                a, b = r["llama"], r["lowbit"]
                bpw = r.get("bpw") or r["bytes"] * 8 / ELEMENTS[m]
                L.append(f"| {ty} | {name} | {r['bytes']:,} | {bpw:.3f} |")
                L[-1] += f" {a['ppl']:.4f} | {a['kld']:.4f} | {a['kld99']:.3f} | {a['top1']:.2f} |"
                L[-1] += (f" {b['ppl']:.4f} | {b['kld']:.4f} | {b['kld99']:.3f} | {b['top1']:.2f} |"
                          if b else " – | – | – | – |")
                L[-1] += f" {r['seconds']:.1f} | {r['rss'] / 2**20:.0f} |"
        L += ["", "**Goal check** (llama.cpp's imatrix file vs the best lowbit file no larger, both"
              " measured by llama-perplexity):", "",
              "| llama.cpp file | bytes | KLD | best lowbit file ≤ its size | bytes | KLD | ratio |"
              " best single-type lowbit file (a method alone) | KLD | ratio |",
              "|---|---:|---:|---|---:|---:|---:|---|---:|---:|"]
        all_lowbit = [(f"{ty} {n}", r) for ty, fs in rows.items() for n, r in fs.items() if n.startswith("lowbit")]
        single = list(all_lowbit)
        all_lowbit += [(f"budget {label} ({method})", r) for (label, method), (_, r) in budgets.items()
                       if "error" not in r and r.get("llama")]
        for ty, files in rows.items():
            ref = files.get("llama imatrix")
            if not ref:
                continue
            cands = [(n, r) for n, r in all_lowbit if r["bytes"] <= ref["bytes"]]
            if not cands:
                continue
            n, r = min(cands, key=lambda c: c[1]["llama"]["kld"])
            L.append(f"| {ty} imatrix | {ref['bytes']:,} | {ref['llama']['kld']:.4f} | {n} |"
                     f" {r['bytes']:,} | {r['llama']['kld']:.4f} | {r['llama']['kld'] / ref['llama']['kld']:.2f} |")
            one = [(n, r) for n, r in single if r["bytes"] <= ref["bytes"]]
            if one:
                n1, r1 = min(one, key=lambda c: c[1]["llama"]["kld"])
                L[-1] += f" {n1} | {r1['llama']['kld']:.4f} | {r1['llama']['kld'] / ref['llama']['kld']:.2f} |"
            else:
                L[-1] += " – | – | – |"
        if affine:
            L += ["", "Affine layouts in memory (`lowbit perplexity --quantize LAYOUT --method M`;"
                  " f16 scales, asymmetric unless `-sym`; embedding and LM head as stored; lowbit's"
                  " measure):", "", "| layout | method | bpw | PPL | KLD | 99% KLD | top-1 | quantize s |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
            for lay, ms in affine.items():
                for meth, r in ms.items():
                    L.append(f"| {lay} | {meth} | {r['bpw']:.3f} | {r['ppl']:.4f} | {r['kld']:.4f} |"
                             f" {r['kld99']:.3f} | {r['top1']:.2f} | {r['seconds']:.1f} |")
        if peers:
            L += ["", "Peer layouts (llm-compressor 0.14's figures from the issue: GPTQ g64 sym 0.190,"
                  " g64 asym 0.103, g32 asym 0.079; RTN g64 sym 0.374; AWQ g64 asym 0.130):", "",
                  "| layout, method | KLD (lowbit) | quantize s |", "|---|---:|---:|"]
            for k, r in peers.items():
                L.append(f"| {k} | {r['kld']:.4f} | {r['seconds']:.1f} |")
        if study:
            L += ["", "Calibration size (GPTQ Q4_0, llama-perplexity / lowbit KLD):", "",
                  "| windows | KLD llama.cpp | KLD lowbit | quantize s | peak MiB |", "|---:|---:|---:|---:|---:|"]
            for w, r in study.items():
                L.append(f"| {r['calibration']['windows'] if r.get('calibration') else w} | {r['llama']['kld']:.4f} |"
                         f" {r['lowbit']['kld']:.4f} | {r['seconds']:.1f} | {r['rss'] / 2**20:.0f} |")
        if budgets:
            L += ["", "Budgeted files (`lowbit quantize --target-size BYTES` or `--target-bpw B`"
                  f" with `--calib` ({WINDOWS} windows); the sensitivity table from 32 windows, 2"
                  " held out; KLD by llama-perplexity):", "",
                  "| budget | method | llama.cpp imatrix file: bytes, KLD | lowbit file bytes | KLD | ratio | held-out KLD (predicted) | seconds |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
            for (label, method), (ref, r) in budgets.items():
                if "error" in r:
                    L.append(f"| {label} | {method} | – | – | – | – | refused: {r['error']} | {r['seconds']:.1f} |")
                    continue
                refs = f"{ref['bytes']:,}, {ref['llama']['kld']:.4f}" if ref else "–"
                ratio = f"{r['llama']['kld'] / ref['llama']['kld']:.2f}" if ref else "–"
                b = r["budget"]
                L.append(f"| {label} | {method} | {refs} | {r['bytes']:,} | {r['llama']['kld']:.4f} | {ratio} |"
                         f" {b['measured']['kld']:.4f} ({b['predicted_kld']:.4f}) | {r['seconds']:.1f} |")
            tables = [(k, r["budget"]["table"]) for k, (_, r) in budgets.items() if "budget" in r]
            for (label, method), t in tables:
                if not t["cached"]:
                    L.append("")
                    L.append(f"Sensitivity table ({method}): {t['seconds']:.0f} s; proxy alone vs measured KLD"
                             f" rank correlation {t['rank_correlation']:.2f}; predicted vs measured at"
                             f" {t['validation']['ty']} on {t['validation']['tensors']} tensors {t['validation']['rank_correlation']:.2f}.")
        if recipe:
            L += ["", f"The automatic recipe (`lowbit recipe --model F32 --calib valid.txt --budgets"
                  f" {MODELS[m]['recipe_bpw']} --methods rtn --calib-chunks 32 --compare presets.json`,"
                  f" {recipe['seconds']:.0f} s with the cached table): the report is"
                  f" [report-{m}.html](report-{m}.html); held-out KLD, PPL ratio and top-1 on the"
                  " calibration text's held-out windows, decoding speed by lowbit's engine:", "",
                  "| file | bytes | bpw | KLD | PPL × | top-1 | predicted KLD | prompt tok/s | decode tok/s | Pareto |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
            for p in recipe["recipe"]["points"]:
                L.append(f"| {p['file']} | {p['bytes']:,} | {p['bpw']:.3f} | {p['kld']:.4f} | {p['ppl_ratio']:.4f} |"
                         f" {100 * p['top1']:.1f}% | {p['predicted_kld']:.4f} | {p['prompt_tps']:.0f} | {p['gen_tps']:.1f} |"
                         f" {'yes' if p['pareto'] else ''} |")
        ti, tl = im["lowbit"]["seconds"], im["llama"]["seconds"]
        worst = im["compare"]["worst"]
        top = sorted(worst.items(), key=lambda kv: -kv[1])[:3]
        L += ["", f"Importance matrix on the same {WINDOWS} windows: `lowbit imatrix` {ti:.1f} s,"
              f" `llama-imatrix --no-ppl` {tl:.1f} s (lowbit {tl / ti:.2f}× as fast);"
              f" {im['compare']['common']} tensors in both files, largest relative difference of"
              f" mean x² per tensor: median {sorted(worst.values())[len(worst) // 2]:.2e}, worst"
              f" {', '.join(f'{n} {v:.2e}' for n, v in top)}.", ""]
    if SKIPPED:
        L += ["## Not measured in this run", "",
              f"Scope `{SCOPE}`{' (cache only)' if CACHE_ONLY else ''}: these entries were not in the cache and"
              " were left out (`SCOPE=full` measures them): " + ", ".join(dict.fromkeys(SKIPPED)) + ".", ""]
    DOC.write_text("\n".join(L) + "\n")


results = {}
for m, spec in MODELS.items():
    if os.environ.get("ONLY") and m != os.environ["ONLY"]:
        continue
    print(f"{m}", file=sys.stderr)
    try:
        rows, affine, peers, study, budgets, recipe = model_results(m, spec)
    except Missing as e:
        print(f"  {m}: not measured ({e})", file=sys.stderr)
        SKIPPED.append(f"everything on {MODELS[m]['title']} (its F32 logits are not in the cache)")
        continue
    im = {k: cache[f"{m}/imatrix/{k}"] for k in ("llama", "lowbit", "compare")}
    for tool in ("llama", "lowbit"):
        im[tool] = cache.get(f"{m}/imatrix/time-{tool}", im[tool])
    results[m] = (rows, affine, peers, study, im, budgets, recipe)
    render(results)
render(results)
print(f"wrote {DOC}", file=sys.stderr)
