"""Reads lowbit's `--save-logits` file (layout in crates/engine/src/eval/logits_file.rs)."""
import numpy as np


def read(path):
    b = open(path, "rb").read()
    assert b[:8] == b"LOWBITLP", "not a lowbit log-probability file"
    version, n_ctx, n_vocab, n_chunk, dtype, scored, _, _ = np.frombuffer(b, "<u4", 8, 8)
    assert version == 1
    off = 40
    tokens = np.frombuffer(b, "<u4", int(n_chunk * n_ctx), off).reshape(int(n_chunk), int(n_ctx))
    off += tokens.nbytes
    dt = "<f2" if dtype == 1 else "<f4"
    lp = np.frombuffer(b, dt, int(n_chunk * scored * n_vocab), off).astype(np.float32)
    return tokens, lp.reshape(int(n_chunk), int(scored), int(n_vocab))
