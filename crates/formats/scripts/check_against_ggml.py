#!/usr/bin/env python3
"""Ad-hoc checks of lowbit-formats against gguf-py and llama.cpp (not run by cargo test).

  check_against_ggml.py dequant            # random blocks: lowbit dequant == gguf-py, bit for bit
  check_against_ggml.py lossless           # real GGUF tensors: dequant -> lowbit quant == same bytes
  check_against_ggml.py quality [imatrix]  # RMSE of lowbit vs llama.cpp's quantizer on real tensors

Needs the `oracle` example built: CARGO_TARGET_DIR=/work/target-shared cargo build -p lowbit-formats
--release --example oracle. llama.cpp's libggml-base.so is used for `quality` when present.
"""
import ctypes, os, subprocess, sys, tempfile
import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

ORACLE = os.environ.get("ORACLE", "/work/target-shared/release/examples/oracle")
LIBGGML = os.environ.get("LIBGGML", "/root/llama/build/bin/libggml-base.so")
MODELS = "/root/.cache/lowbit/models"
TMP = tempfile.mkdtemp(prefix="lowbit_")
# ggml's real Q8_1 block is 36 bytes; gguf-py's table still says 40.
BLOCK = {t: gguf.GGML_QUANT_SIZES[t] for t in T}
BLOCK[T.Q8_1] = (32, 36)
TYPES_ALL = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
         "Q8_K", "IQ4_NL", "IQ4_XS"]
TYPES = [t for t in TYPES_ALL if t in os.environ.get("TYPES", ",".join(TYPES_ALL)).split(",")]


def oracle(*args):
    subprocess.run([ORACLE, *map(str, args)], check=True)


def lowbit_dequant(name, raw):
    i, o = f"{TMP}/dq.bin", f"{TMP}/dq.f32"
    raw.tofile(i)
    oracle("dequant", name, i, o)
    return np.fromfile(o, dtype=np.float32)


def lowbit_quant(name, x, imp=None):
    x = np.ascontiguousarray(x, dtype=np.float32)
    i, o = f"{TMP}/q.f32", f"{TMP}/q.bin"
    x.tofile(i)
    args = ["quant", name, x.shape[-1], i, o]
    if imp is not None:
        np.ascontiguousarray(imp, dtype=np.float32).tofile(f"{TMP}/imp.f32")
        args.append(f"{TMP}/imp.f32")
    oracle(*args)
    return np.fromfile(o, dtype=np.uint8)


def ref_dequant(name, raw):
    t = T[name]
    be, bb = BLOCK[t]
    if t == T.Q8_1:
        b = raw.reshape(-1, bb)
        d = b[:, :2].copy().view(np.float16).astype(np.float32)
        return (b[:, 4:].view(np.int8).astype(np.float32) * d).ravel()
    if t == T.Q8_K:
        b = raw.reshape(-1, bb)
        d = b[:, :4].copy().view(np.float32)
        return (d * b[:, 4:260].view(np.int8).astype(np.float32)).ravel()
    return gguf.quants.dequantize(raw.reshape(-1, bb), t).ravel()


def random_blocks(name, n, rng):
    be, bb = BLOCK[T[name]]
    raw = rng.integers(0, 256, size=(n, bb), dtype=np.uint8)
    # Keep f16/f32 scale fields finite (random bits are fine elsewhere).
    for off in {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q8_1": [0, 2],
                "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
                "IQ4_NL": [0], "IQ4_XS": [0]}.get(name, []):
        raw[:, off:off + 2] = rng.normal(0, 0.01, size=n).astype(np.float16).view(np.uint8).reshape(n, 2)
    if name == "Q8_K":
        raw[:, 0:4] = rng.normal(0, 0.01, size=n).astype(np.float32).view(np.uint8).reshape(n, 4)
    return raw.ravel()


def cmd_dequant():
    rng = np.random.default_rng(1)
    for name in TYPES:
        raw = random_blocks(name, 4096, rng)
        a, b = lowbit_dequant(name, raw), ref_dequant(name, raw)
        same = np.array_equal(a.view(np.uint32), b.astype(np.float32).view(np.uint32))
        print(f"{name:7s} dequant bit-exact: {same}")


def tensors(path, types):
    r = gguf.GGUFReader(path)
    for t in r.tensors:
        if t.tensor_type.name in types:
            yield t


def cmd_lossless():
    files = [f"{MODELS}/SmolLM2-135M-Instruct.Q4_1.gguf", f"{MODELS}/gemma-3-270m-q4_k_m.gguf"]
    for path in files:
        if not os.path.exists(path):
            continue
        stats = {}
        for t in tensors(path, {"Q4_1", "Q8_0", "Q4_K", "Q5_0", "Q6_K"}):
            name = t.tensor_type.name
            be, bb = BLOCK[t.tensor_type]
            raw = np.asarray(t.data).reshape(-1).view(np.uint8)
            x = ref_dequant(name, raw)
            n_per_row = int(t.shape[0])
            x = x.reshape(-1, n_per_row)
            q = lowbit_quant(name, x)
            blocks_a, blocks_b = raw.reshape(-1, bb), q.reshape(-1, bb)
            eq = np.all(blocks_a == blocks_b, axis=1)
            s = stats.setdefault(name, [0, 0, 0, 0])
            s[0] += 1; s[1] += bool(eq.all()); s[2] += int(eq.sum()); s[3] += eq.size
            if not eq.all() and s[0] - s[1] <= 2:
                bad = np.nonzero(~eq)[0][0]
                print(f"  {t.name} {name}: first differing block {bad}:\n   orig {blocks_a[bad][:24]}\n   ours {blocks_b[bad][:24]}")
        for name, (n, ok, beq, bt) in stats.items():
            print(f"{os.path.basename(path)} {name}: {ok}/{n} tensors identical, {beq}/{bt} blocks identical")


def ggml_quant(name, x, imp=None):
    lib = ctypes.CDLL(LIBGGML)
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    t = T[name]
    be, bb = BLOCK[t]
    x = np.ascontiguousarray(x, dtype=np.float32)
    nrows, n = x.shape
    out = np.zeros(nrows * n // be * bb, dtype=np.uint8)
    impp = None
    if imp is not None:
        imp = np.ascontiguousarray(imp, dtype=np.float32)
        impp = imp.ctypes.data
    lib.ggml_quantize_chunk(int(t), x.ctypes.data, out.ctypes.data, 0, nrows, n, impp)
    return out


def cmd_quality(use_imatrix):
    rng = np.random.default_rng(7)
    path = f"{MODELS}/SmolLM2-135M-Instruct.Q4_1.gguf"
    xs = []
    for t in list(tensors(path, {"Q4_1"}))[:6]:
        raw = np.asarray(t.data).reshape(-1).view(np.uint8)
        x = ref_dequant("Q4_1", raw).reshape(-1, int(t.shape[0]))[:256]
        # Break the Q4_1 lattice so the comparison is not about recovering it.
        xs.append(x + rng.normal(0, x.std() * 0.05, size=x.shape).astype(np.float32))
    xs.append(rng.standard_t(5, size=(256, 2048)).astype(np.float32) * 0.02)
    print(f"{'type':7s} {'rmse lowbit':>12s} {'rmse ggml':>12s} {'wrmse lowbit':>13s} {'wrmse ggml':>12s}")
    for name in TYPES:
        if name in ("Q8_1", "Q8_K"):
            continue
        acc = np.zeros(4)
        for x in xs:
            n = x.shape[1]
            if n % BLOCK[T[name]][0]:
                continue
            imp = (rng.gamma(0.5, 1.0, size=n).astype(np.float32) + 1e-3) if use_imatrix else None
            w = imp[None, :] if use_imatrix else x * x
            for k, q in enumerate([lowbit_quant(name, x, imp), ggml_quant(name, x, imp)]):
                y = ref_dequant(name, q).reshape(x.shape)
                acc[k] += np.sum((y - x) ** 2)
                acc[2 + k] += np.sum(w * (y - x) ** 2)
        tot = sum(x.size for x in xs if x.shape[1] % BLOCK[T[name]][0] == 0)
        r = np.sqrt(acc / tot)
        flag = "" if (r[0] <= r[1] * 1.0001 and r[2] <= r[3] * 1.0001) else "   <-- worse"
        print(f"{name:7s} {r[0]:12.6g} {r[1]:12.6g} {r[2]:13.6g} {r[3]:12.6g}{flag}")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "dequant"
    if cmd == "dequant":
        cmd_dequant()
    elif cmd == "lossless":
        cmd_lossless()
    elif cmd == "quality":
        cmd_quality(len(sys.argv) > 2 and sys.argv[2] == "imatrix")
