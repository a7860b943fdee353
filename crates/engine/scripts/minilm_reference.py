#!/usr/bin/env python3
"""Reference sentence embeddings for all-MiniLM-L6-v2, independent of lowbit's Rust code.

sentence-transformers needs torch, which this project does not install, and the packaged model
wheel only offers that path. So this script re-implements the same pipeline in NumPy (float64):
HF `tokenizers` for tokenization (truncated to sentence_bert_config's max_seq_length), BERT
embeddings + LayerNorm, post-LN encoder layers with a padding attention mask (the batch is padded
on purpose, so masking is exercised), exact-erf GELU, mean pooling over the attention mask and
L2 normalisation (modules.json: Transformer, Pooling(mean), Normalize).

Usage (a venv with `tokenizers` and `numpy`):
  python3 -m venv /tmp/venv-bert && /tmp/venv-bert/bin/pip install tokenizers numpy
  /tmp/venv-bert/bin/python crates/engine/scripts/minilm_reference.py \
      /root/.cache/lowbit/models/all-MiniLM-L6-v2 crates/engine/tests/fixtures/minilm

Reads OUT/sentences.txt (one sentence per line), writes OUT/embeddings.f32 (n x 384 little-endian
float32, row per sentence) and OUT/token_ids.json (the ids `tokenizers` produced, with [CLS]/[SEP]).
"""
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


def load_safetensors(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    base = 8 + n
    dtypes = {"F32": np.float32, "F16": np.float16, "BF16": None}
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] not in ("F32", "F16"):
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[base + a : base + b], dtype=dtypes[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).astype(np.float64)
    return out


def layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def main(model_dir, out_dir):
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    cfg = json.loads((model_dir / "config.json").read_text())
    max_len = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
    sentences = [l for l in (out_dir / "sentences.txt").read_text(encoding="utf-8").split("\n") if l.strip()]

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_len)
    ids = [tok.encode(s).ids for s in sentences]

    W = load_safetensors(model_dir / "model.safetensors")
    H, nh, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    d = H // nh
    B, T = len(ids), max(len(i) for i in ids)
    mask = np.zeros((B, T))
    tokens = np.zeros((B, T), dtype=np.int64)  # pad id 0
    for b, seq in enumerate(ids):
        tokens[b, : len(seq)] = seq
        mask[b, : len(seq)] = 1.0

    x = W["embeddings.word_embeddings.weight"][tokens]
    x = x + W["embeddings.position_embeddings.weight"][np.arange(T)][None]
    x = x + W["embeddings.token_type_embeddings.weight"][0][None, None]
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - mask)[:, None, None, :] * -1e30  # keys at pad positions get no weight

    def lin(name, v):
        return v @ W[name + ".weight"].T + W[name + ".bias"]

    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        heads = lambda v: v.reshape(B, T, nh, d).transpose(0, 2, 1, 3)
        q = heads(lin(p + "attention.self.query", x))
        k = heads(lin(p + "attention.self.key", x))
        v = heads(lin(p + "attention.self.value", x))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s = s / s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B, T, H)
        x = layer_norm(x + lin(p + "attention.output.dense", ctx), W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
        f = lin(p + "output.dense", gelu(lin(p + "intermediate.dense", x)))
        x = layer_norm(x + f, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)

    pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    emb = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    (out_dir / "embeddings.f32").write_bytes(emb.astype("<f4").tobytes())
    (out_dir / "token_ids.json").write_text(json.dumps(ids) + "\n")
    print(f"{B} sentences, up to {T} tokens, {H}-dim embeddings written to {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
