#!/usr/bin/env python3
"""lowbit bench vs llama-bench on the same GGUF files, same threads, one run: prompt (pp) and
generation (tg) tokens/s, the ratio lowbit/llama.cpp, and the share of the memory-bandwidth
bound each reaches in generation (bandwidth measured by lowbit in the same run).

    scripts/vs-llama-bench.py --llama-bin DIR --lowbit BIN [--threads 2] [-p 128] [-n 32] [-r 3] \
        LABEL=FILE ...

Models are measured one at a time, llama-bench then lowbit, so both see the same machine state.
"""
import argparse, json, os, subprocess, sys


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bin", required=True)
    ap.add_argument("--lowbit", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("models", nargs="+", help="LABEL=FILE")
    a = ap.parse_args()
    bw_report = json.loads(run([a.lowbit, "bench", "--model", a.models[0].split("=", 1)[1],
                                "-p", "0", "-n", "1", "-r", "1", "--threads", str(a.threads), "--json"]))
    bw = bw_report["read_bandwidth_bytes_per_s"]
    rows = []
    for spec in a.models:
        label, path = spec.split("=", 1)
        lj = json.loads(run([os.path.join(a.llama_bin, "llama-bench"), "-m", path, "-t", str(a.threads),
                             "-p", str(a.p), "-n", str(a.n), "-r", str(a.r), "-o", "json"]))
        llama = {}
        for t in lj:
            key = f"pp{t['n_prompt']}" if t["n_gen"] == 0 else f"tg{t['n_gen']}"
            llama[key] = (t["avg_ts"], t["stddev_ts"])
        mj = json.loads(run([a.lowbit, "bench", "--model", path, "-p", str(a.p), "-n", str(a.n),
                             "-r", str(a.r), "--threads", str(a.threads), "--no-bandwidth", "--json"]))
        m = mj["models"][0]
        mine = {t["test"]: (t["median"], t["stdev"]) for t in m["tests"]}
        rows.append((label, m["file_bytes"], m["weight_bytes_per_token"], llama, mine))
        print(f"measured {label}", file=sys.stderr)

    pp, tg = f"pp{a.p}", f"tg{a.n}"
    print(f"{a.threads} threads; memory read bandwidth {bw / 1e9:.1f} GB/s (lowbit's probe, same run)\n")
    print(f"| model | size MiB | {pp} llama.cpp | {pp} lowbit | ratio | {tg} llama.cpp | {tg} lowbit | ratio "
          f"| bound t/s | llama.cpp % of bound | lowbit % of bound |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, size, wbytes, l, m in rows:
        bound = bw / wbytes
        f = lambda d, k: f"{d[k][0]:.1f} ± {d[k][1]:.1f}" if k in d else "–"
        r = lambda k: f"{m[k][0] / l[k][0]:.2f}" if k in m and k in l else "–"
        print(f"| {label} | {size / 2**20:.1f} | {f(l, pp)} | {f(m, pp)} | {r(pp)} | {f(l, tg)} | {f(m, tg)} | {r(tg)} "
              f"| {bound:.0f} | {100 * l[tg][0] / bound:.0f}% | {100 * m[tg][0] / bound:.0f}% |")


if __name__ == "__main__":
    main()
