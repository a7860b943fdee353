//! GGUF write → read round trips.

use lowbit_files::gguf::tensor_bytes;
use lowbit_files::{
    Array, FileError, GgufFile, GgufWriter, StrArray, TensorProblem, TensorSpec, Value,
};
use lowbit_formats::GgmlType;

fn all_values() -> Vec<(String, Value)> {
    let strs: StrArray = ["", "x", "ünïcödé", "tab\there"].into_iter().collect();
    let big: StrArray = (0..1000).map(|i| format!("tok{i}")).collect();
    vec![
        ("u8".into(), Value::U8(255)),
        ("i8".into(), Value::I8(-128)),
        ("u16".into(), Value::U16(65535)),
        ("i16".into(), Value::I16(-32768)),
        ("u32".into(), Value::U32(u32::MAX)),
        ("i32".into(), Value::I32(i32::MIN)),
        ("f32".into(), Value::F32(f32::from_bits(0x7f7f_ffff))),
        ("f32.nan".into(), Value::F32(f32::from_bits(0x7fc0_0001))),
        ("bool.f".into(), Value::Bool(false)),
        ("bool.t".into(), Value::Bool(true)),
        ("str".into(), Value::from("ok ✓")),
        ("str.empty".into(), Value::from("")),
        ("u64".into(), Value::U64(u64::MAX)),
        ("i64".into(), Value::I64(i64::MIN)),
        ("f64".into(), Value::F64(-1e300)),
        ("a.u8".into(), Value::from(vec![0u8, 255])),
        ("a.i8".into(), Value::from(vec![-1i8, 1])),
        ("a.u16".into(), Value::from(vec![1u16, 65535])),
        ("a.i16".into(), Value::from(vec![-1i16])),
        ("a.u32".into(), Value::from(vec![7u32; 3])),
        ("a.i32".into(), Value::from(vec![-7i32, 0, 7])),
        ("a.f32".into(), Value::from(vec![0.25f32, -0.0])),
        ("a.bool".into(), Value::from(vec![true, false])),
        ("a.str".into(), Value::from(strs.clone())),
        ("a.str.big".into(), Value::from(big)),
        ("a.u64".into(), Value::from(vec![u64::MAX])),
        ("a.i64".into(), Value::from(vec![i64::MIN, 0])),
        ("a.f64".into(), Value::from(vec![1.0f64 / 3.0])),
        ("a.empty".into(), Value::from(Vec::<f32>::new())),
        ("a.empty.str".into(), Value::from(StrArray::new())),
        (
            "a.nested".into(),
            Value::Array(Array::Array(vec![
                Array::I32(vec![1, 2]),
                Array::String(strs),
                Array::Array(vec![Array::F64(vec![2.0]), Array::Array(vec![])]),
                Array::U8(vec![]),
            ])),
        ),
    ]
}

/// Deterministic bytes for a tensor (content is irrelevant to the container).
fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn write(path: &std::path::Path, meta: Vec<(String, Value)>, specs: &[TensorSpec]) -> Vec<Vec<u8>> {
    let mut w = GgufWriter::create(path, meta, specs.to_vec()).unwrap();
    let mut datas = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let d = payload(tensor_bytes(&s.dims, s.ty).unwrap() as usize, i as u8);
        w.write_tensor(&s.name, &d).unwrap();
        datas.push(d);
    }
    w.finish().unwrap();
    datas
}

fn bits_eq(a: &[(String, Value)], b: &[(String, Value)]) {
    // Debug formatting distinguishes -0.0 and prints NaN; compare bit patterns of floats too.
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    for ((_, x), (_, y)) in a.iter().zip(b) {
        if let (Value::F32(x), Value::F32(y)) = (x, y) {
            assert_eq!(x.to_bits(), y.to_bits());
        }
    }
}

#[test]
fn every_value_type_round_trips_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    let meta = all_values();
    write(&p, meta.clone(), &[]);
    let f = GgufFile::open(&p).unwrap();
    assert_eq!(f.version(), 3);
    bits_eq(f.metadata(), &meta);
    assert_eq!(
        f.get_str_array("a.str.big").unwrap().get(999),
        Some("tok999")
    );
    assert_eq!(
        f.get_u32("u8").unwrap(),
        255,
        "get_u32 widens smaller integers"
    );
    assert_eq!(f.get_u64("u64").unwrap(), u64::MAX);
    assert!(matches!(f.get_u32("u64"), Err(FileError::WrongType { .. })));
    assert!(matches!(f.get_u32("i8"), Err(FileError::WrongType { .. })));
    assert!(matches!(
        f.get_str("u8"),
        Err(FileError::WrongType { found: "u8", .. })
    ));
    assert!(matches!(
        f.get_f32("nope"),
        Err(FileError::MissingKey { .. })
    ));
    assert_eq!(f.get_f32("f64").unwrap(), -1e300f64 as f32);
    let err = f.get_f32_array("a.str").unwrap_err().to_string();
    assert!(
        err.contains("'a.str' is array of string, expected array of f32"),
        "{err}"
    );
}

#[test]
fn tensors_round_trip_for_all_types_and_alignments() {
    let types: Vec<GgmlType> = GgmlType::all().collect();
    for align in [1u32, 2, 8, 32, 64, 4096] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.gguf");
        let mut specs = Vec::new();
        for (i, &ty) in types.iter().enumerate() {
            let be = ty.block_elems() as u64;
            let dims: Vec<u64> = match i % 4 {
                0 => vec![be],
                1 => vec![be * 2, 3],
                2 => vec![be, 2, 2],
                _ => vec![be, 1, 3, 2],
            };
            specs.push(TensorSpec::new(format!("blk.{i}.{}", ty.name()), &dims, ty));
        }
        let meta = vec![
            ("general.architecture".to_string(), Value::from("test")),
            ("general.alignment".to_string(), Value::U32(align)),
        ];
        let datas = write(&p, meta, &specs);
        let f = GgufFile::open(&p).unwrap();
        assert_eq!(f.alignment(), align as u64);
        assert_eq!(f.tensors().len(), specs.len());
        for ((t, s), d) in f.tensors().iter().zip(&specs).zip(&datas) {
            assert_eq!((&t.name, &t.dims, t.ty), (&s.name, &s.dims, s.ty));
            assert_eq!(t.offset % align as u64, 0);
            assert_eq!(f.tensor_data(t), d.as_slice(), "{} align {align}", t.name);
            assert_eq!((f.data_offset() + t.offset) % align as u64, 0);
        }
        assert_eq!(
            f.total_tensor_bytes(),
            datas.iter().map(|d| d.len() as u64).sum::<u64>()
        );
        assert_eq!(f.tensor("blk.1.F16").unwrap().n_rows(), 3);
    }
}

#[test]
fn writer_rejects_bad_plans_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.gguf");
    let spec = |n: &str, d: &[u64], t| TensorSpec::new(n, d, t);
    let err = |meta: Vec<(String, Value)>, specs: Vec<TensorSpec>| {
        GgufWriter::create(&p, meta, specs).err().unwrap()
    };

    let align = |v: Value| vec![("general.alignment".to_string(), v)];
    assert!(matches!(
        err(align(Value::U32(48)), vec![]),
        FileError::BadAlignment { value: 48, .. }
    ));
    assert!(matches!(
        err(align(Value::U32(0)), vec![]),
        FileError::BadAlignment { value: 0, .. }
    ));
    assert!(matches!(
        err(align(Value::U64(32)), vec![]),
        FileError::WrongType { .. }
    ));
    let dup = vec![
        ("k".to_string(), Value::U8(1)),
        ("k".to_string(), Value::U8(2)),
    ];
    assert!(matches!(err(dup, vec![]), FileError::DuplicateKey { .. }));
    let problem = |e: FileError| match e {
        FileError::Tensor { problem, .. } => problem,
        e => panic!("unexpected {e}"),
    };
    let two = vec![
        spec("a", &[4], GgmlType::F32),
        spec("a", &[4], GgmlType::F32),
    ];
    assert_eq!(problem(err(vec![], two)), TensorProblem::Duplicate);
    let long = "x".repeat(64);
    assert_eq!(
        problem(err(vec![], vec![spec(&long, &[4], GgmlType::F32)])),
        TensorProblem::NameTooLong { len: 64 }
    );
    assert!(matches!(
        problem(err(vec![], vec![spec("q", &[576], GgmlType::Q4_K)])),
        TensorProblem::PartialBlock { .. }
    ));
    assert_eq!(
        problem(err(vec![], vec![spec("z", &[4, 0], GgmlType::F32)])),
        TensorProblem::ZeroDim { index: 1 }
    );
    assert!(!p.exists(), "failed create must leave nothing");

    let mut w = GgufWriter::create(
        &p,
        vec![],
        vec![
            spec("a", &[4], GgmlType::F32),
            spec("b", &[2], GgmlType::F16),
        ],
    )
    .unwrap();
    assert_eq!(w.next_tensor(), Some("a"));
    assert!(matches!(
        problem(w.write_tensor("b", &[0; 4]).unwrap_err()),
        TensorProblem::OutOfOrder { .. }
    ));
    assert_eq!(
        problem(w.write_tensor("a", &[0; 15]).unwrap_err()),
        TensorProblem::DataLength {
            expected: 16,
            got: 15
        }
    );
    w.write_tensor("a", &[1; 16]).unwrap();
    let msg = w.finish().unwrap_err().to_string();
    assert!(msg.contains("'b'") && msg.contains("w.gguf"), "{msg}");
    assert!(!p.exists(), "unfinished writer must leave nothing");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temp files left"
    );
}

#[test]
fn dropping_an_unfinished_writer_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("keep.gguf");
    std::fs::write(&p, b"old").unwrap();
    let mut w =
        GgufWriter::create(&p, vec![], vec![TensorSpec::new("a", &[4], GgmlType::F32)]).unwrap();
    w.write_tensor("a", &[0; 16]).unwrap();
    drop(w);
    assert_eq!(std::fs::read(&p).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn planned_size_is_the_size_of_the_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    let specs = vec![
        TensorSpec::new("a", &[576, 3], GgmlType::Q4_0),
        TensorSpec::new("b", &[7], GgmlType::F32),
        TensorSpec::new("c", &[256, 2], GgmlType::Q6_K),
    ];
    let meta = all_values();
    let planned = lowbit_files::gguf::planned_size(&meta, specs.clone()).unwrap();
    write(&p, meta, &specs);
    assert_eq!(planned, std::fs::metadata(&p).unwrap().len());
}
