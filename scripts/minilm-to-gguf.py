#!/usr/bin/env python3
"""Benchmark helper: all-MiniLM-L6-v2's weight matrices as an F32 GGUF that llama-quantize accepts.

    scripts/minilm-to-gguf.py MODEL_DIR OUT.gguf

llama.cpp's loader needs an architecture it knows, so the BERT matrices are stored under llama-style
names (query→attn_q, key→attn_k, value→attn_v, attention.output.dense→attn_output,
intermediate.dense→ffn_up, output.dense→ffn_down, word_embeddings→token_embd) with matching
hyper-parameters. The file is only for comparing quantizers on real BERT weights; it is not a
runnable model. Needs numpy and gguf (the oracle venv has both).
"""
import json
import struct
import sys

import numpy as np
from gguf import GGUFWriter

ROLES = {
    "attention.self.query.weight": "attn_q",
    "attention.self.key.weight": "attn_k",
    "attention.self.value.weight": "attn_v",
    "attention.output.dense.weight": "attn_output",
    "intermediate.dense.weight": "ffn_up",
    "output.dense.weight": "ffn_down",
}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.float32).reshape(info["shape"])
    return out


def main():
    model_dir, out = sys.argv[1:3]
    cfg = json.load(open(f"{model_dir}/config.json"))
    t = read_safetensors(f"{model_dir}/model.safetensors")
    w = GGUFWriter(out, "llama")
    w.add_name("all-MiniLM-L6-v2 matrices")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_attention_heads"])
    w.add_layer_norm_rms_eps(cfg["layer_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_tensor("token_embd.weight", t["embeddings.word_embeddings.weight"])
    for name, x in t.items():
        if not name.startswith("encoder.layer."):
            continue
        layer, rest = name[len("encoder.layer."):].split(".", 1)
        if rest in ROLES:
            w.add_tensor(f"blk.{layer}.{ROLES[rest]}.weight", np.ascontiguousarray(x))
    w.add_tensor("output.weight", t["embeddings.word_embeddings.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
