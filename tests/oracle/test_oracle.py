"""gguf-py, llama.cpp's reference Python reader, is the independent judge of lowbit's files."""
import json

import numpy as np
import pytest
from gguf import GGUFReader, GGUFWriter, GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize

from conftest import model_or_skip

# Every type lowbit quantizes to that gguf-py can also read. Q8_1 and Q8_K are activation formats
# (gguf-py's size table for Q8_1 is stale: 40 bytes instead of ggml's 36), so they are tested in Rust.
WRITABLE = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K",
            "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4"]
# Types for which gguf-py has a quantizer (its port of ggml's reference code).
PY_QUANTIZERS = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "TQ1_0", "TQ2_0", "MXFP4"]

ROWS, COLS = 8, 512


def tensor_name(t):
    return f"blk.0.{t.lower()}.weight"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory, lowbit):
    """An F32 GGUF written by gguf-py, quantized by lowbit to every type, then dequantized."""
    d = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(7)
    src = d / "src.gguf"
    w = GGUFWriter(str(src), "llama")
    w.add_block_count(1)
    w.add_string("test.string", "héllo ✓")
    w.add_array("test.strings", ["a", "", "ccc"])
    w.add_array("test.ints", [1, -2, 3])
    w.add_float64("test.f64", 2.5)
    w.add_bool("test.bool", True)
    data = {}
    for t in WRITABLE:
        x = (rng.standard_normal((ROWS, COLS)) * rng.uniform(0.01, 2.0, (ROWS, 1))).astype(np.float32)
        x[0, :7] = [0.0, 1e-8, -3e4, 3e4, 1e-30, -0.0, 5.0]
        data[t] = x
        w.add_tensor(tensor_name(t), x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    out = d / "q.gguf"
    args = ["quantize", src, out, "--type", "F32", "--pure"]
    for t in WRITABLE:
        args += ["--tensor-type", f"^{tensor_name(t)}$={t}".replace(".", r"\.")]
    lowbit(*args)
    deq = d / "deq.gguf"
    lowbit("dequantize", out, deq, "--type", "F32")
    return src, out, deq, data


def tensors(path):
    return {t.name: t for t in GGUFReader(str(path)).tensors}


def test_gguf_py_reads_every_type_lowbit_writes(synthetic):
    _, out, deq, data = synthetic
    q = tensors(out)
    f = tensors(deq)
    for t in WRITABLE:
        name = tensor_name(t)
        assert q[name].tensor_type == Q[t], name
        ours = np.asarray(f[name].data, dtype=np.float32).reshape(ROWS, COLS)
        theirs = dequantize(np.asarray(q[name].data), Q[t]).reshape(ROWS, COLS).astype(np.float32)
        assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32)), f"{t}: lowbit and gguf-py dequantize differently"


def test_lowbit_error_is_no_worse_than_reference_quantizers(synthetic):
    _, out, deq, data = synthetic
    f = tensors(deq)
    for t in PY_QUANTIZERS:
        x = data[t]
        ours = np.asarray(f[tensor_name(t)].data, dtype=np.float32).reshape(ROWS, COLS)
        ref = dequantize(quantize(x, Q[t]), Q[t]).reshape(ROWS, COLS)
        e_ours = float(np.mean((ours - x) ** 2))
        e_ref = float(np.mean((ref - x) ** 2))
        assert e_ours <= e_ref * 1.0001, f"{t}: lowbit MSE {e_ours:.4g} > reference {e_ref:.4g}"


def test_lowbit_reads_gguf_py_metadata(synthetic, lowbit):
    src, *_ = synthetic
    info = json.loads(lowbit("inspect", src, "--json").stdout)
    assert info["architecture"] == "llama"
    assert info["hyperparameters"]["block_count"] == 1
    assert len(info["tensors"]) == len(WRITABLE)
    assert info["types"]["F32"]["tensors"] == len(WRITABLE)


def test_smollm2_dequantizes_exactly_and_requantizes_losslessly(tmp_path, lowbit, models):
    orig = model_or_skip(models, "SmolLM2-135M-Instruct.Q4_1.gguf")
    f32 = tmp_path / "f32.gguf"
    lowbit("dequantize", orig, f32)
    o = tensors(orig)
    f = tensors(f32)
    for name, t in o.items():
        ours = np.asarray(f[name].data, dtype=np.float32).reshape(-1)
        theirs = dequantize(np.asarray(t.data), t.tensor_type).reshape(-1).astype(np.float32)
        assert np.array_equal(ours.view(np.uint32), theirs.view(np.uint32)), name
    back = tmp_path / "q4_1.gguf"
    lowbit("quantize", f32, back, "--type", "Q4_1")
    b = tensors(back)
    for name, t in o.items():
        assert b[name].tensor_type == t.tensor_type, name
        assert np.array_equal(np.asarray(b[name].data).view(np.uint8), np.asarray(t.data).view(np.uint8)), \
            f"{name}: Q4_1 -> F32 -> Q4_1 changed the bytes"
