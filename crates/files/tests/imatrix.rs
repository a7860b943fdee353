//! Importance matrices in both llama.cpp forms.

use lowbit_files::{FileError, GgufWriter, Imatrix, ImatrixFormat, TensorSpec, Value};
use lowbit_formats::GgmlType;

/// Legacy `.dat` bytes: entries of (name, ncall, values), then an optional trailer.
fn legacy(entries: &[(&str, i32, &[f32])], trailer: Option<(i32, &str)>) -> Vec<u8> {
    let mut v = (entries.len() as i32).to_le_bytes().to_vec();
    for (name, ncall, vals) in entries {
        v.extend_from_slice(&(name.len() as i32).to_le_bytes());
        v.extend_from_slice(name.as_bytes());
        v.extend_from_slice(&ncall.to_le_bytes());
        v.extend_from_slice(&(vals.len() as i32).to_le_bytes());
        for x in *vals {
            v.extend_from_slice(&x.to_le_bytes());
        }
    }
    if let Some((chunks, ds)) = trailer {
        v.extend_from_slice(&chunks.to_le_bytes());
        v.extend_from_slice(&(ds.len() as i32).to_le_bytes());
        v.extend_from_slice(ds.as_bytes());
    }
    v
}

fn load(dir: &tempfile::TempDir, bytes: &[u8]) -> Result<Imatrix, FileError> {
    let p = dir.path().join("imatrix.dat");
    std::fs::write(&p, bytes).unwrap();
    Imatrix::load(&p)
}

#[test]
fn legacy_values_are_divided_by_ncall() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = legacy(
        &[
            ("blk.0.ffn_up.weight", 10, &[10.0, 25.0, 0.5]),
            ("blk.0.attn_q.weight", 0, &[3.0, 4.0]),
        ],
        Some((7, "wiki.train.raw")),
    );
    let im = load(&dir, &bytes).unwrap();
    assert_eq!(im.format(), ImatrixFormat::Legacy);
    assert_eq!(im.get("blk.0.ffn_up.weight").unwrap(), [1.0, 2.5, 0.05]);
    assert_eq!(
        im.get("blk.0.attn_q.weight").unwrap(),
        [3.0, 4.0],
        "ncall 0 keeps values, as llama.cpp"
    );
    assert_eq!(im.get("nope"), None);
    assert_eq!(im.dataset(), Some("wiki.train.raw"));
    assert_eq!(im.chunk_count(), Some(7));
    assert_eq!(
        im.entries()[0].name,
        "blk.0.attn_q.weight",
        "sorted by name"
    );

    let im = load(&dir, &legacy(&[("t", 2, &[1.0])], None)).unwrap();
    assert_eq!((im.dataset(), im.chunk_count()), (None, None));
}

#[test]
fn legacy_truncation_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let full = legacy(&[("a", 1, &[1.0, 2.0]), ("b", 1, &[3.0])], Some((4, "ds")));
    let entries_end = full.len() - 4 - 4 - 2;
    for n in 0..full.len() {
        let r = load(&dir, &full[..n]);
        // The trailer is optional: the entries alone, or entries plus chunk count, are valid.
        assert_eq!(
            r.is_ok(),
            n == entries_end || n == entries_end + 4,
            "prefix {n}: {r:?}"
        );
    }
    let msg = |b: &[u8]| load(&dir, b).unwrap_err().to_string();
    let mut b = full.clone();
    b[..4].copy_from_slice(&i32::MAX.to_le_bytes());
    assert!(msg(&b).contains("entry count"));
    b[..4].copy_from_slice(&0i32.to_le_bytes());
    assert!(msg(&b).contains("entry count at offset 0 is 0"));
    let mut b = full.clone();
    b[4..8].copy_from_slice(&(-5i32).to_le_bytes());
    assert!(msg(&b).contains("length of name of entry 0"));
    let mut b = full.clone();
    b[4..8].copy_from_slice(&(1i32 << 30).to_le_bytes());
    assert!(msg(&b).contains("length of name of entry 0"));
    let mut b = full.clone();
    b[13..17].copy_from_slice(&(1i32 << 29).to_le_bytes());
    assert!(msg(&b).contains("value count of 'a'"), "{}", msg(&b));
    b[13..17].copy_from_slice(&0i32.to_le_bytes());
    assert!(msg(&b).contains("value count of 'a'"));
    let mut b = full.clone();
    b.push(0);
    assert!(msg(&b).contains("unexpected bytes"));
    let dup = legacy(&[("a", 1, &[1.0]), ("a", 1, &[1.0])], None);
    assert!(msg(&dup).contains("'a' appears twice"));
    assert!(msg(&[]).contains("entry count"));
}

#[test]
fn gguf_round_trip_dense_and_moe() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("imatrix.gguf");
    let mut im = Imatrix::new();
    im.insert(
        "blk.0.attn_q.weight",
        4,
        vec![4.0, 8.0, 0.0, 2.0],
        vec![4.0],
    )
    .unwrap();
    let moe_sums: Vec<f32> = (0..6).map(|i| i as f32).collect();
    im.insert(
        "blk.0.ffn_up_exps.weight",
        2,
        moe_sums.clone(),
        vec![2.0, 0.0, 1.0],
    )
    .unwrap();
    im.set_datasets(vec!["calib.txt".into()]);
    im.set_chunks(12, 512);
    im.save_gguf(&p).unwrap();

    let back = Imatrix::load(&p).unwrap();
    assert_eq!(back, im);
    assert_eq!(back.format(), ImatrixFormat::Gguf);
    assert_eq!(
        back.get("blk.0.attn_q.weight").unwrap(),
        [1.0, 2.0, 0.0, 0.5]
    );
    let e = back.entry("blk.0.ffn_up_exps.weight").unwrap();
    assert_eq!((e.row_len, e.n_experts), (2, 3));
    assert_eq!(e.expert(0).unwrap(), [0.0, 0.5]);
    assert_eq!(
        e.expert(1).unwrap(),
        [1.0, 1.0],
        "zero count gives weight 1, as llama.cpp"
    );
    assert_eq!(e.expert(2).unwrap(), [4.0, 5.0]);
    assert_eq!(e.expert(3), None);
    assert_eq!(back.datasets(), ["calib.txt"]);
    assert_eq!(
        (back.chunk_count(), back.chunk_size()),
        (Some(12), Some(512))
    );

    // The file follows llama-imatrix's layout exactly.
    let f = lowbit_files::GgufFile::open(&p).unwrap();
    assert_eq!(f.get_str("general.type").unwrap(), "imatrix");
    let t = f
        .require_tensor("blk.0.ffn_up_exps.weight.in_sum2")
        .unwrap();
    assert_eq!((t.dims.as_slice(), t.ty), (&[2u64, 3][..], GgmlType::F32));
    assert_eq!(
        f.require_tensor("blk.0.ffn_up_exps.weight.counts")
            .unwrap()
            .dims,
        [1, 3]
    );

    // Legacy → GGUF conversion keeps importance.
    let legacy_path = dir.path().join("old.dat");
    std::fs::write(&legacy_path, super_legacy()).unwrap();
    let old = Imatrix::load(&legacy_path).unwrap();
    old.save_gguf(dir.path().join("conv.gguf")).unwrap();
    let conv = Imatrix::load(dir.path().join("conv.gguf")).unwrap();
    assert_eq!(conv.get("t"), old.get("t"));
}

fn super_legacy() -> Vec<u8> {
    legacy(&[("t", 4, &[2.0, 6.0])], Some((1, "d")))
}

#[test]
fn insert_rejects_bad_shapes() {
    let mut im = Imatrix::new();
    assert!(matches!(
        im.insert("t", 3, vec![1.0; 5], vec![1.0]),
        Err(FileError::InvalidData(_))
    ));
    assert!(im.insert("t", 0, vec![], vec![1.0]).is_err());
    assert!(im.insert("t", 1, vec![1.0], vec![]).is_err());
    assert!(im.insert("t", 1, vec![1.0], vec![f32::NAN]).is_err());
    assert!(im.insert("t", 1, vec![1.0], vec![-1.0]).is_err());
    let dir = tempfile::tempdir().unwrap();
    assert!(im.save_gguf(dir.path().join("empty.gguf")).is_err());
}

#[test]
fn malformed_gguf_imatrices() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.gguf");
    let write = |specs: Vec<(&str, Vec<u64>, GgmlType, Vec<f32>)>| {
        let meta = vec![("imatrix.chunk_count".to_string(), Value::U32(1))];
        let ts = specs
            .iter()
            .map(|(n, d, t, _)| TensorSpec::new(*n, d, *t))
            .collect();
        let mut w = GgufWriter::create(&p, meta, ts).unwrap();
        for (n, _, t, v) in &specs {
            let b: Vec<u8> = if *t == GgmlType::F32 {
                v.iter().flat_map(|x| x.to_le_bytes()).collect()
            } else {
                v.iter().flat_map(|x| half_bits(*x)).collect()
            };
            w.write_tensor(n, &b).unwrap();
        }
        w.finish().unwrap();
        Imatrix::load(&p).unwrap_err().to_string()
    };
    let f32t = GgmlType::F32;
    assert!(write(vec![("a.in_sum2", vec![2, 1], f32t, vec![1.0, 2.0])]).contains("only one of"));
    assert!(write(vec![("x", vec![1], f32t, vec![1.0])]).contains("no imatrix entries"));
    let e = write(vec![
        ("a.in_sum2", vec![2, 2], f32t, vec![1.0; 4]),
        ("a.counts", vec![1, 3], f32t, vec![1.0; 3]),
    ]);
    assert!(e.contains("does not match 3 counts"), "{e}");
    let e = write(vec![
        ("a.in_sum2", vec![2], f32t, vec![1.0; 2]),
        ("a.counts", vec![1], f32t, vec![-2.0]),
    ]);
    assert!(e.contains("invalid token count"), "{e}");
    let e = write(vec![
        ("a.in_sum2", vec![2], GgmlType::F16, vec![1.0; 2]),
        ("a.counts", vec![1], f32t, vec![1.0]),
    ]);
    assert!(e.contains("'a.in_sum2' is F16"), "{e}");
    // 1-D sums with a single count are accepted (one expert).
    let meta = vec![];
    let mut w = GgufWriter::create(
        &p,
        meta,
        vec![
            TensorSpec::new("a.in_sum2", &[2], f32t),
            TensorSpec::new("a.counts", &[1], f32t),
        ],
    )
    .unwrap();
    w.write_tensor(
        "a.in_sum2",
        &[2.0f32, 4.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    w.write_tensor("a.counts", &2.0f32.to_le_bytes()).unwrap();
    w.finish().unwrap();
    let im = Imatrix::load(&p).unwrap();
    assert_eq!(im.get("a").unwrap(), [1.0, 2.0]);
    assert_eq!((im.chunk_count(), im.dataset()), (None, None));
}

fn half_bits(x: f32) -> [u8; 2] {
    lowbit_formats::float::f32_to_f16_bits(x).to_le_bytes()
}
