"""Runs llm-compressor on an HF folder: the reference the checkpoint report compares lowbit with.

    python scripts/llmc-quantize.py SRC OUT SCHEME [--calib TEXT --windows N]

SCHEME: w4a16-g64[-asym] (round to nearest), gptq-w4a16-g64 (gptq-group-…: GPTQ with act-order,
"weight"), w8a8 (static per-tensor activations, calibrated), w8a8-dynamic. Calibration windows: the first N windows of 512 tokens of TEXT, as lowbit
cuts them. Prints the seconds oneshot took.
"""
import argparse
import time

import torch
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.quantization import GPTQModifier, QuantizationModifier
from transformers import AutoModelForCausalLM, AutoTokenizer

p = argparse.ArgumentParser()
p.add_argument("src")
p.add_argument("out")
p.add_argument("scheme")
p.add_argument("--calib")
p.add_argument("--windows", type=int, default=64)
a = p.parse_args()

tok = AutoTokenizer.from_pretrained(a.src)
model = AutoModelForCausalLM.from_pretrained(a.src, dtype=torch.float32)
name = a.scheme.removeprefix("gptq-").removeprefix("group-")
if name.startswith("w4a16"):
    g = int(name.split("-g")[1].split("-")[0])
    order = {"actorder": "weight"} if "group-" in a.scheme else {}
    weights = QuantizationArgs(num_bits=4, type="int", symmetric="asym" not in name, strategy="group", group_size=g, **order)
    acts = None
else:
    weights = QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="channel")
    dynamic = name.endswith("dynamic")
    acts = QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="token" if dynamic else "tensor", dynamic=dynamic)
groups = {"group_0": QuantizationScheme(targets=["Linear"], weights=weights, input_activations=acts)}
modifier = GPTQModifier if a.scheme.startswith("gptq-") else QuantizationModifier
kwargs = {}
if a.calib:
    ids = tok(open(a.calib).read())["input_ids"]
    wins = [ids[i * 512:(i + 1) * 512] for i in range(a.windows)]
    kwargs = dict(dataset=Dataset.from_dict({"input_ids": wins, "attention_mask": [[1] * 512] * len(wins)}),
                  num_calibration_samples=len(wins), max_seq_length=512)
t = time.time()
oneshot(model=model, recipe=modifier(config_groups=groups, ignore=["lm_head"]), **kwargs)
print(f"seconds {time.time() - t:.1f}")
model.save_pretrained(a.out, save_compressed=True)
tok.save_pretrained(a.out)
