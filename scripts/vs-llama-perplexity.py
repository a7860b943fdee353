#!/usr/bin/env python3
"""lowbit perplexity vs llama-perplexity on the same GGUF files: F32 perplexity, and for each
quantized file its perplexity, mean KLD and top-1 agreement against the F32 model, with each
tool's own base (llama.cpp's --kl-divergence-base file, lowbit's --save-logits file).

    scripts/vs-llama-perplexity.py --llama-bin DIR --lowbit BIN --text FILE --work DIR \
        --name smollm2 --f32 F32.gguf --quant Q8_0=q8.gguf --quant Q4_0=q4.gguf [--q8-too Q4_0]

Prints one markdown table. Builds nothing; the quantized files are made by the caller.
"""
import argparse, json, os, re, subprocess, sys


def sh(cmd, log):
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        f.write(r.stdout)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n--- {log}\n{r.stdout[-3000:]}")
    return r.stdout


def grab(pat, text, log):
    m = re.search(pat, text)
    if not m:
        sys.exit(f"cannot find {pat!r} in {log}")
    return [float(g) for g in m.groups()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bin", required=True)
    ap.add_argument("--lowbit", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--f32", required=True)
    ap.add_argument("--quant", action="append", default=[], help="LABEL=FILE")
    ap.add_argument("--q8-too", action="append", default=[], help="labels also run with --activations q8")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    w = lambda s: os.path.join(a.work, f"{a.name}-{s}")
    common = ["-f", a.text, "-c", str(a.ctx), "--chunks", str(a.chunks), "-t", str(a.threads)]
    lcommon = ["--file", a.text, "--ctx", str(a.ctx), "--chunks", str(a.chunks),
               "--threads", str(a.threads), "--json"]
    llama = os.path.join(a.llama_bin, "llama-perplexity")
    rows = []

    def lowbit(model, extra, tag):
        out = sh([a.lowbit, "perplexity", "--model", model] + lcommon + extra, w(f"{tag}.lowbit.json"))
        return json.loads(out[out.index("{"):])

    # Bases: each tool saves its own F32 log-probabilities.
    log = w("f32.llama.log")
    out = sh([llama, "-m", a.f32] + common + ["--kl-divergence-base", w("base.llama.kld")], log)
    lp, le = grab(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)", out, log)
    j = lowbit(a.f32, ["--save-logits", w("base.lowbit.logits")], "f32")
    rows.append(("F32", "auto", (lp, le, None, None, None, None), (j["ppl"]["value"], j["ppl"]["err"], None, None, None, None)))

    for spec in a.quant:
        label, path = spec.split("=", 1)
        log = w(f"{label}.llama.log")
        out = sh([llama, "-m", path] + common + ["--kl-divergence-base", w("base.llama.kld"), "--kl-divergence"], log)
        qp, qe = grab(r"Mean PPL\(Q\)\s*:\s*([\d.]+)\s*±\s*([\d.]+)", out, log)
        kl, kle = grab(r"Mean\s+KLD:\s*([\d.]+)\s*±\s*([\d.]+)", out, log)
        tp, tpe = grab(r"Same top p:\s*([\d.]+)\s*±\s*([\d.]+)", out, log)
        llama_row = (qp, qe, kl, kle, tp, tpe)
        for act in ["auto"] + (["q8"] if label in a.q8_too else []):
            j = lowbit(path, ["--kld-base", w("base.lowbit.logits"), "--activations", act], f"{label}-{act}")
            k = j["kld"]
            mine = (j["ppl"]["value"], j["ppl"]["err"], k["mean_kld"]["value"], k["mean_kld"]["err"],
                    100 * k["same_top"]["value"], 100 * k["same_top"]["err"])
            rows.append((label, act, llama_row, mine))

    print(f"| {a.name} | lowbit activations | PPL llama.cpp | PPL lowbit | KLD llama.cpp | KLD lowbit | top-1 llama.cpp | top-1 lowbit |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    f = lambda v, e, d: "–" if v is None else f"{v:.{d}f} ± {e:.{d}f}"
    for label, act, l, m in rows:
        print(f"| {label} | {act} | {f(l[0], l[1], 4)} | {f(m[0], m[1], 4)} | {f(l[2], l[3], 5)} | {f(m[2], m[3], 5)} "
              f"| {f(l[4], l[5], 2)} | {f(m[4], m[5], 2)} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
