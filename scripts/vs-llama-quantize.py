#!/usr/bin/env python3
"""Side-by-side with llama-quantize: error per type (same tensors, same reference) and wall time.

    scripts/vs-llama-quantize.py --llama-bin DIR --f32 MODEL-F32.gguf [--imatrix FILE] [--threads 2]
                                 [--types Q8_0,Q4_K,...] [--out docs-table.md]

DIR holds an existing llama.cpp build (llama-quantize). Both tools quantize the same F32 file with
--pure (one type for every matrix, so the rows compare like with like); `lowbit compare` then
measures both outputs against the F32 file with the same code (weighted by the imatrix when one
is given: the error that reaches the model's outputs). Only tensors that both tools stored
in the requested type enter the error columns (rows that do not split into 256-blocks fall back
differently in the two tools). Prints a Markdown table.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LOWBIT = os.environ.get("LOWBIT_BIN", os.path.join(HERE, "..", "target", "release", "lowbit"))
TYPES = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS",
         "TQ1_0", "TQ2_0", "MXFP4"]
# llama-quantize's names for a single type with --pure (its K names mean the _M mixes, which --pure flattens).
LLAMA_NAME = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "MXFP4": "MXFP4_MOE"}


def timed(cmd):
    """Runs cmd; returns (wall seconds, CPU seconds of the child, stdout). CPU time is the fair
    measure on a shared machine; wall time is what a user waits on an idle one."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu, p.stdout


def compare(ref, other, imatrix=None):
    _, _, out = timed([LOWBIT, "compare", ref, other, "--json"] + (["--imatrix", imatrix] if imatrix else []))
    return {t["name"]: t for t in json.loads(out)["tensors"]}


def pooled(rows):
    """Relative RMSE pooled over tensors: sqrt(sum err^2 / sum ref^2) from per-tensor figures."""
    num = sum((r["rmse"] ** 2) * r["n"] for r in rows)
    den = sum(((r["rmse"] / r["relative_rmse"]) ** 2) * r["n"] for r in rows if r["relative_rmse"] > 0)
    return (num / den) ** 0.5 if den else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bin", required=True)
    ap.add_argument("--f32", required=True)
    ap.add_argument("--imatrix")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--no-pure", action="store_true", help="compare the mixes (e.g. Q4_K_M) instead of single types")
    a = ap.parse_args()
    _, _, info = timed([LOWBIT, "inspect", a.f32, "--json"])
    sizes = {t["name"]: t["dims"] for t in json.loads(info)["tensors"]}
    n_of = lambda name: __import__("math").prod(sizes[name])
    print("| type | tensors compared | lowbit rel. RMSE | llama.cpp rel. RMSE | error ratio | lowbit wall s | llama wall s | lowbit CPU s | llama CPU s | CPU speed ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for ty in a.types.split(","):
            ours, theirs = os.path.join(d, "lowbit.gguf"), os.path.join(d, "llama.gguf")
            pure = [] if a.no_pure else ["--pure"]
            lcmd = [os.path.join(a.llama_bin, "llama-quantize")] + pure
            ocmd = [LOWBIT, "quantize", a.f32, ours, "--type", ty, "--threads", str(a.threads), "--json"] + pure
            if a.imatrix:
                lcmd += ["--imatrix", a.imatrix]
                ocmd += ["--imatrix", a.imatrix]
            lcmd += [a.f32, theirs, ty if a.no_pure else LLAMA_NAME.get(ty, ty), str(a.threads)]
            t_l, c_l, _ = timed(lcmd)
            t_o, c_o, _ = timed(ocmd)
            co, cl = compare(a.f32, ours, a.imatrix), compare(a.f32, theirs, a.imatrix)
            same = [n for n in co if co[n]["type"] == ty and cl.get(n, {}).get("type") == ty]
            ro = pooled([dict(co[n], n=n_of(n)) for n in same])
            rl = pooled([dict(cl[n], n=n_of(n)) for n in same])
            ratio = ro / rl if rl else float("nan")
            print(f"| {ty} | {len(same)} | {ro:.5f} | {rl:.5f} | {ratio:.4f} | {t_o:.2f} | {t_l:.2f} | {c_o:.2f} | {c_l:.2f} | {c_l / c_o:.2f}x |")
            for p in (ours, theirs):
                os.remove(p)


if __name__ == "__main__":
    main()
