#!/usr/bin/env python3
"""Writes golden vectors for the lattice IQ types: random-but-valid blocks and gguf-py's
dequantization of them, for crates/formats/tests/iq_grid.rs.

Blocks are random bytes except the f16 super-scale, which is set to a random finite value
(sign and magnitude over 1e-7..10, so f16 subnormals are covered too). Files per type:
`<type>.blocks` (raw blocks) and `<type>.f32` (little-endian f32, 256 per block).

Usage: python3 crates/formats/scripts/gen_iq_fixtures.py [--blocks N] [--seed S] [--out DIR]
(defaults: 4 blocks, seed 1, crates/formats/tests/fixtures/iq_grid). Larger --blocks into a
scratch --out is how the implementation was checked on many blocks.
"""

import argparse
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES

TYPES = [T.IQ1_S, T.IQ1_M, T.IQ2_XXS, T.IQ2_XS, T.IQ2_S, T.IQ3_XXS, T.IQ3_S]


def random_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    mag = 10.0 ** rng.uniform(-7, 1, n)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    d = (sign * mag).astype(np.float16)
    assert np.all(np.isfinite(d))
    return d


def random_blocks(rng: np.random.Generator, ty: T, n: int) -> np.ndarray:
    _, type_size = GGML_QUANT_SIZES[ty]
    blocks = rng.integers(0, 256, size=(n, type_size), dtype=np.uint8)
    d = random_scales(rng, n).view(np.uint16)
    if ty == T.IQ1_M:
        # The f16 scale lives in the top nibbles of the four trailing u16 scale words.
        words = blocks[:, -8:].copy().view(np.uint16)
        for k in range(4):
            nib = (d >> (4 * k)) & 0xF
            words[:, k] = (words[:, k] & 0x0FFF) | (nib << 12)
        blocks[:, -8:] = words.view(np.uint8)
    else:
        blocks[:, 0:2] = d.reshape(n, 1).view(np.uint8)
    return blocks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "iq_grid")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for ty in TYPES:
        blocks = random_blocks(rng, ty, args.blocks)
        values = quants.dequantize(blocks, ty).astype("<f4", copy=False)
        assert values.shape == (args.blocks, 256)
        name = ty.name.lower()
        (args.out / f"{name}.blocks").write_bytes(blocks.tobytes())
        (args.out / f"{name}.f32").write_bytes(values.tobytes())
    print(f"wrote {len(TYPES)} types x {args.blocks} blocks to {args.out}")


if __name__ == "__main__":
    main()
