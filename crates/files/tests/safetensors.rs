//! safetensors: round trips through lowbit's writer, cross-checks against the `safetensors`
//! crate, float conversions and malformed headers.

use lowbit_files::{Dtype, FileError, SafeTensorSpec, SafetensorsFile, SafetensorsWriter};

fn write(
    path: &std::path::Path,
    meta: Vec<(&str, &str)>,
    tensors: &[(&str, Dtype, Vec<u64>, Vec<u8>)],
) {
    let specs = tensors
        .iter()
        .map(|(n, d, s, _)| SafeTensorSpec::new(*n, *d, s))
        .collect();
    let meta = meta
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut w = SafetensorsWriter::create(path, meta, specs).unwrap();
    for (n, _, _, data) in tensors {
        w.write_tensor(n, data).unwrap();
    }
    w.finish().unwrap();
}

fn sample() -> Vec<(&'static str, Dtype, Vec<u64>, Vec<u8>)> {
    let f32s: Vec<u8> = [1.5f32, -2.0, 0.0, 3.25, 1e-8, -7.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let f16s: Vec<u8> = [0x3c00u16, 0xc000, 0x7bff, 0x0001]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let bf16s: Vec<u8> = [0x3f80u16, 0xc040, 0x0000, 0x8000]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let f64s: Vec<u8> = [0.1f64, -1e10]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let i64s: Vec<u8> = [-1i64, 5].iter().flat_map(|x| x.to_le_bytes()).collect();
    vec![
        ("model.w", Dtype::F32, vec![2, 3], f32s),
        ("h", Dtype::F16, vec![4], f16s),
        ("b", Dtype::BF16, vec![2, 2], bf16s),
        ("d", Dtype::F64, vec![2], f64s),
        ("ids", Dtype::I64, vec![1, 2], i64s),
        ("empty", Dtype::F32, vec![0, 4], vec![]),
        ("u8", Dtype::U8, vec![3], vec![1, 2, 3]),
    ]
}

#[test]
fn round_trip_and_conversions() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    write(&p, vec![("format", "pt"), ("note", "ü")], &sample());
    let f = SafetensorsFile::open(&p).unwrap();
    assert_eq!(f.get_metadata("format"), Some("pt"));
    assert_eq!(f.get_metadata("note"), Some("ü"));
    let names: Vec<&str> = f.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["model.w", "h", "b", "d", "ids", "empty", "u8"],
        "data order = declared order"
    );
    for (n, d, s, data) in sample() {
        let t = f.require_tensor(n).unwrap();
        assert_eq!((t.dtype, &t.shape), (d, &s));
        assert_eq!(f.tensor_data(t), data.as_slice());
    }
    let get = |n| f.to_f32(f.tensor(n).unwrap()).unwrap();
    assert_eq!(get("model.w"), [1.5, -2.0, 0.0, 3.25, 1e-8, -7.0]);
    assert_eq!(get("h"), [1.0, -2.0, 65504.0, 2f32.powi(-24)]);
    assert_eq!(get("b"), [1.0, -3.0, 0.0, -0.0]);
    assert_eq!(get("d"), [0.1f64 as f32, -1e10f64 as f32]);
    assert_eq!(get("empty"), Vec::<f32>::new());
    let e = f.to_f32(f.tensor("ids").unwrap()).unwrap_err().to_string();
    assert!(e.contains("'ids'") && e.contains("I64"), "{e}");
    assert!(matches!(
        f.require_tensor("nope"),
        Err(FileError::MissingTensor { .. })
    ));
    let mut small = [0f32; 3];
    assert!(f
        .read_f32_into(f.tensor("model.w").unwrap(), &mut small)
        .is_err());
}

#[test]
fn the_reference_crate_agrees_both_ways() {
    use safetensors::tensor::{Dtype as D, TensorView};
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.safetensors");
    write(&ours, vec![("k", "v")], &sample());
    let bytes = std::fs::read(&ours).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (n, _, s, data) in sample() {
        let v = st.tensor(n).unwrap();
        assert_eq!(
            v.shape(),
            s.iter().map(|&x| x as usize).collect::<Vec<_>>().as_slice()
        );
        assert_eq!(v.data(), data.as_slice());
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(
        meta.metadata()
            .as_ref()
            .unwrap()
            .get("k")
            .map(String::as_str),
        Some("v")
    );

    let a: Vec<u8> = (0..24).collect();
    let b: Vec<u8> = (100..104).collect();
    let views = vec![
        ("z.a", TensorView::new(D::F32, vec![2, 3], &a).unwrap()),
        ("a.b", TensorView::new(D::BF16, vec![2], &b).unwrap()),
    ];
    let theirs = dir.path().join("theirs.safetensors");
    safetensors::serialize_to_file(views, None, &theirs).unwrap();
    let f = SafetensorsFile::open(&theirs).unwrap();
    assert_eq!(f.tensor_data(f.tensor("z.a").unwrap()), a.as_slice());
    assert_eq!(f.tensor_data(f.tensor("a.b").unwrap()), b.as_slice());
    assert_eq!(f.tensor("a.b").unwrap().dtype, Dtype::BF16);
}

fn raw(header: &str, data_len: usize) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.resize(v.len() + data_len, 0);
    v
}

#[test]
fn malformed_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.safetensors");
    let err = |bytes: &[u8]| {
        std::fs::write(&p, bytes).unwrap();
        let e = SafetensorsFile::open(&p).unwrap_err();
        assert!(e.to_string().contains("bad.safetensors"), "{e}");
        e.to_string()
    };
    let t = |name: &str, dtype: &str, shape: &str, a: u64, b: u64| {
        format!(r#""{name}":{{"dtype":"{dtype}","shape":{shape},"data_offsets":[{a},{b}]}}"#)
    };
    let ok = format!(
        "{{{},{}}}",
        t("x", "F32", "[2]", 0, 8),
        t("y", "F16", "[2]", 8, 12)
    );
    std::fs::write(&p, raw(&ok, 12)).unwrap();
    SafetensorsFile::open(&p).unwrap();

    let full = raw(&ok, 12);
    for n in 0..full.len() {
        err(&full[..n]);
    }
    let mut huge = full.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(err(&huge).contains("header length"));
    assert!(err(&raw("[1,2]", 0)).contains("JSON object"));
    assert!(err(&raw("{\"x\":", 0)).contains("JSON"));
    let dup = format!(
        "{{{},{}}}",
        t("x", "F32", "[1]", 0, 4),
        t("x", "F32", "[1]", 4, 8)
    );
    assert!(err(&raw(&dup, 8)).contains("'x' appears twice"));
    assert!(err(&raw(&format!("{{{}}}", t("x", "F4", "[2]", 0, 1)), 1))
        .contains("unsupported dtype 'F4'"));
    assert!(err(&raw(&format!("{{{}}}", t("x", "F32", "[2]", 0, 8)), 4)).contains("outside"));
    assert!(err(&raw(&format!("{{{}}}", t("x", "F32", "[2]", 8, 0)), 8)).contains("outside"));
    assert!(err(&raw(&format!("{{{}}}", t("x", "F32", "[3]", 0, 8)), 12)).contains("needs 12"));
    let big = format!("{{{}}}", t("x", "F64", "[4294967296,4294967296]", 0, 8));
    assert!(err(&raw(&big, 8)).contains("overflows"));
    let overlap = format!(
        "{{{},{}}}",
        t("x", "F32", "[2]", 0, 8),
        t("y", "F32", "[1]", 4, 8)
    );
    assert!(err(&raw(&overlap, 8)).contains("overlaps"));
    let extra = r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"junk":1}}"#;
    assert!(err(&raw(extra, 4)).contains("'x'"));
    let meta = r#"{"__metadata__":{"a":1}}"#;
    assert!(err(&raw(meta, 0)).contains("not a string"));
    assert!(err(&raw(&format!("{{{}}}", t("x", "F32", "[-1]", 0, 4)), 4)).contains("'x'"));
}
