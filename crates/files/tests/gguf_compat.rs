//! lowbit reads a file written by gguf-py's GGUFWriter exactly (fixture made by
//! scripts/make_gguf_fixture.py; the values below mirror that script).

use lowbit_files::{GgufFile, GgufWriter, TensorSpec, Value};
use lowbit_formats::GgmlType;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/gguf_py_v3.gguf"
);

fn pattern(n: usize, seed: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

fn le<T: Copy, const N: usize>(v: &[T], f: fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

#[test]
fn reads_gguf_py_output_exactly() {
    let f = GgufFile::open(FIXTURE).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.architecture().unwrap(), "testarch");

    let keys: Vec<&str> = f.metadata().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "general.architecture",
            "general.alignment",
            "t.u8",
            "t.i8",
            "t.u16",
            "t.i16",
            "t.u32",
            "t.i32",
            "t.f32",
            "t.u64",
            "t.i64",
            "t.f64",
            "t.bool",
            "t.str",
            "t.arr_str",
            "t.arr_i32",
            "t.arr_f32",
            "t.arr_u8",
            "t.arr_bool",
            "t.nested",
            "t.nested_str",
        ],
        "metadata must keep file order"
    );
    let g = |k: &str| f.get(k).unwrap();
    assert_eq!(g("t.u8"), &Value::U8(200));
    assert_eq!(g("t.i8"), &Value::I8(-100));
    assert_eq!(g("t.u16"), &Value::U16(60000));
    assert_eq!(g("t.i16"), &Value::I16(-30000));
    assert_eq!(g("t.u32"), &Value::U32(4_000_000_000));
    assert_eq!(g("t.i32"), &Value::I32(-2_000_000_000));
    assert_eq!(g("t.f32"), &Value::F32(1.5));
    assert_eq!(g("t.u64"), &Value::U64((1 << 63) + 5));
    assert_eq!(g("t.i64"), &Value::I64(-(1 << 62)));
    assert_eq!(g("t.f64"), &Value::F64(-2.25));
    assert_eq!(g("t.bool"), &Value::Bool(true));
    assert_eq!(f.get_str("t.str").unwrap(), "héllo ✓");
    let strs: Vec<&str> = f.get_str_array("t.arr_str").unwrap().iter().collect();
    assert_eq!(strs, ["a", "", "ßü", "last"]);
    assert_eq!(f.get_i32_array("t.arr_i32").unwrap(), [1, -2, 3]);
    assert_eq!(f.get_f32_array("t.arr_f32").unwrap(), [0.5, -1.0]);
    assert_eq!(g("t.arr_u8").as_u8_array().unwrap(), [1, 2, 255]);
    assert_eq!(
        g("t.arr_bool").as_bool_array().unwrap(),
        [true, false, true]
    );
    let nested = f.get_array("t.nested").unwrap().as_arrays().unwrap();
    assert_eq!(nested.len(), 2);
    assert_eq!(
        Value::Array(nested[0].clone()).as_i32_array().unwrap(),
        [1, 2]
    );
    assert_eq!(Value::Array(nested[1].clone()).as_i32_array().unwrap(), [3]);
    let nested_str = f.get_array("t.nested_str").unwrap().as_arrays().unwrap();
    assert_eq!(
        nested_str[0].as_strs().unwrap().iter().collect::<Vec<_>>(),
        ["x", "y"]
    );
    assert_eq!(
        nested_str[1].as_strs().unwrap().iter().collect::<Vec<_>>(),
        ["z"]
    );

    let expect: Vec<(&str, Vec<u64>, GgmlType, Vec<u8>)> = vec![
        (
            "f32",
            vec![3, 2],
            GgmlType::F32,
            le(&[-2.5f32, -1.5, -0.5, 0.5, 1.5, 2.5], f32::to_le_bytes),
        ),
        (
            "f16",
            vec![4],
            GgmlType::F16,
            le(&[0x3c00u16, 0xc000, 0x3800, 0x7bff], u16::to_le_bytes),
        ),
        ("i8", vec![5], GgmlType::I8, vec![0x80, 0xff, 0, 1, 0x7f]),
        (
            "i32",
            vec![3],
            GgmlType::I32,
            le(&[-5i32, 0, i32::MAX], i32::to_le_bytes),
        ),
        ("q8_0", vec![32, 2], GgmlType::Q8_0, pattern(68, 1)),
        ("q4_k", vec![256, 1], GgmlType::Q4_K, pattern(144, 2)),
        ("blk.0.3d", vec![32, 2, 3], GgmlType::Q4_0, pattern(108, 3)),
    ];
    assert_eq!(f.tensors().len(), expect.len());
    for (t, (name, dims, ty, data)) in f.tensors().iter().zip(&expect) {
        assert_eq!((t.name.as_str(), &t.dims, t.ty), (*name, dims, *ty));
        assert_eq!(t.offset % 64, 0);
        assert_eq!(f.tensor_data(t), data.as_slice(), "{name}");
        assert_eq!(f.require_tensor(name).unwrap(), t);
    }
    assert_eq!(f.data_offset(), 1088);
}

/// Re-writing what we read must reproduce gguf-py's bytes: same header encoding, same padding.
#[test]
fn rewrite_is_byte_identical_to_gguf_py() {
    let f = GgufFile::open(FIXTURE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("copy.gguf");
    let specs = f
        .tensors()
        .iter()
        .map(|t| TensorSpec::new(&t.name, &t.dims, t.ty))
        .collect();
    let mut w = GgufWriter::create(&out, f.metadata().to_vec(), specs).unwrap();
    for t in f.tensors() {
        w.write_tensor(&t.name, f.tensor_data(t)).unwrap();
    }
    w.finish().unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(FIXTURE).unwrap()
    );
}
