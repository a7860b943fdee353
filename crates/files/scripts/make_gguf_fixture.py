#!/usr/bin/env python3
"""Writes tests/fixtures/gguf_py_v3.gguf with gguf-py's GGUFWriter (the independent oracle).

Run from crates/files: python3 scripts/make_gguf_fixture.py
The Rust test tests/gguf_compat.rs asserts every value below exactly; keep the two in sync.
Tensor bytes follow the pattern byte[i] = (i * 7 + seed) % 251 so the test can regenerate them.
"""
import numpy as np
import gguf

OUT = "tests/fixtures/gguf_py_v3.gguf"


def pattern(n, seed):
    return np.array([(i * 7 + seed) % 251 for i in range(n)], dtype=np.uint8)


w = gguf.GGUFWriter(OUT, arch="testarch")
w.add_custom_alignment(64)
w.add_uint8("t.u8", 200)
w.add_int8("t.i8", -100)
w.add_uint16("t.u16", 60000)
w.add_int16("t.i16", -30000)
w.add_uint32("t.u32", 4000000000)
w.add_int32("t.i32", -2000000000)
w.add_float32("t.f32", 1.5)
w.add_uint64("t.u64", 2**63 + 5)
w.add_int64("t.i64", -(2**62))
w.add_float64("t.f64", -2.25)
w.add_bool("t.bool", True)
w.add_string("t.str", "héllo ✓")
w.add_array("t.arr_str", ["a", "", "ßü", "last"])
w.add_array("t.arr_i32", [1, -2, 3])
w.add_array("t.arr_f32", [0.5, -1.0])
w.add_key_value("t.arr_u8", [1, 2, 255], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT8)
w.add_array("t.arr_bool", [True, False, True])
w.add_array("t.nested", [[1, 2], [3]])
w.add_array("t.nested_str", [["x", "y"], ["z"]])
# gguf-py refuses empty arrays; the Rust round-trip tests cover them.

f32 = np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5
w.add_tensor("f32", f32)
w.add_tensor("f16", np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16))
w.add_tensor("i8", np.array([-128, -1, 0, 1, 127], dtype=np.int8))
w.add_tensor("i32", np.array([-5, 0, 2**31 - 1], dtype=np.int32))
w.add_tensor("q8_0", pattern(68, 1).reshape(2, 34), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
w.add_tensor("q4_k", pattern(144, 2).reshape(1, 144), raw_dtype=gguf.GGMLQuantizationType.Q4_K)
w.add_tensor("blk.0.3d", pattern(3 * 2 * 18, 3).reshape(3, 2, 18), raw_dtype=gguf.GGMLQuantizationType.Q4_0)

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
