#!/usr/bin/env python3
"""Golden vectors for lowbit-formats from gguf-py (an independent implementation of ggml's
formats). Writes tests/fixtures/ggufpy_golden.txt; run from crates/formats. Rust tests read only
the fixture, never Python.

Lines:
  dequant TYPE HEXBYTES FNV64   -- FNV-1a 64 of gguf-py's dequantized f32 (LE bytes)
  quantize TYPE SEED N SSE      -- gguf-py's quantize->dequantize squared error (float64 sum) on
                                   N values from the LCG below; lowbit must not do worse
"""
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize, dequantize

M64 = (1 << 64) - 1


class Lcg:
    def __init__(self, seed):
        self.s = seed

    def next_u32(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & M64
        return self.s >> 32

    def uniform(self):
        return np.float32(self.next_u32() >> 8) / np.float32(1 << 23) - np.float32(1.0)

    def weight(self):
        u = self.uniform()
        return u * u * u + np.float32(0.25) * self.uniform()


def fnv64(b):
    h = 0xCBF29CE484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) & M64
    return h


BLOCK = {T.TQ1_0: (256, 54), T.TQ2_0: (256, 66), T.MXFP4: (32, 17)}
lines = []
for ty, (be, bb) in BLOCK.items():
    nblk = 6
    rng = Lcg(1000 + int(ty))
    raw = bytearray(rng.next_u32() & 0xFF for _ in range(nblk * bb))
    for i in range(nblk):
        blk = memoryview(raw)[i * bb:(i + 1) * bb]
        if ty == T.MXFP4:
            blk[0] = [0, 1, 2, 254, 255, 127][i]
        else:  # a sane f16 scale so outputs are finite
            blk[bb - 2:bb] = np.float16([0.5, -0.03125, 1.5e-5, 3.0, 1000.0, 0.1][i]).tobytes()
    out = dequantize(np.frombuffer(bytes(raw), dtype=np.uint8).reshape(1, -1), ty).astype(np.float32)
    lines.append(f"dequant {ty.name} {bytes(raw).hex()} {fnv64(out.tobytes()):016x}")
    for seed, n in [(1, 256 * 64), (2, 256 * 64)]:
        rng = Lcg(seed)
        x = np.array([rng.weight() for _ in range(n)], dtype=np.float32).reshape(-1, 256)
        y = dequantize(quantize(x, ty), ty)
        sse = float(np.sum((x.astype(np.float64) - y.astype(np.float64)) ** 2))
        lines.append(f"quantize {ty.name} {seed} {n} {sse!r}")

with open("tests/fixtures/ggufpy_golden.txt", "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(l[:100] for l in lines))
