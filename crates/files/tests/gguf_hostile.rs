//! Malformed and hostile GGUF input: every case must be a clear, typed error, never a panic or a
//! huge allocation.

mod common;

use common::{f32_tensor, gguf_str, kv, RawGguf, RawTensor};
use lowbit_files::{FileError, GgufFile, GgufWriter, TensorProblem, TensorSpec, Value};
use lowbit_formats::GgmlType;

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn open(&self, bytes: &[u8]) -> Result<GgufFile, FileError> {
        let p = self.dir.path().join("x.gguf");
        std::fs::write(&p, bytes).unwrap();
        GgufFile::open(&p)
    }

    fn err(&self, bytes: &[u8]) -> FileError {
        match self.open(bytes) {
            Ok(_) => panic!("expected an error"),
            Err(e) => {
                assert!(
                    e.to_string().contains("x.gguf"),
                    "message must name the file: {e}"
                );
                e
            }
        }
    }
}

fn problem(e: FileError) -> (String, TensorProblem) {
    match e {
        FileError::Tensor {
            tensor, problem, ..
        } => (tensor, problem),
        e => panic!("expected a tensor error, got {e}"),
    }
}

fn with_kv(key: &str, type_id: u32, value: &[u8]) -> Vec<u8> {
    let mut g = RawGguf::small();
    g.kvs.push(kv(key, type_id, value));
    g.bytes()
}

fn array(elem_type: u32, count: u64, items: &[u8]) -> Vec<u8> {
    let mut v = elem_type.to_le_bytes().to_vec();
    v.extend_from_slice(&count.to_le_bytes());
    v.extend_from_slice(items);
    v
}

#[test]
fn the_baseline_is_valid() {
    let s = Scratch::new();
    let f = s.open(&RawGguf::small().bytes()).unwrap();
    assert_eq!(f.tensors().len(), 2);
    assert_eq!(
        f.tensor_data(f.require_tensor("b").unwrap()),
        &(32..64u8).collect::<Vec<_>>()[..]
    );
}

#[test]
fn every_truncation_is_an_error() {
    let s = Scratch::new();
    let full = RawGguf::small().bytes();
    for n in 0..full.len() {
        s.err(&full[..n]);
    }

    // A writer-made file with every value type; truncations inside the final padding are legal.
    let meta = vec![
        ("s".to_string(), Value::from("abc")),
        ("a".to_string(), Value::from(vec!["x", "yz"])),
        (
            "n".to_string(),
            Value::Array(lowbit_files::Array::Array(vec![lowbit_files::Array::I16(
                vec![1, 2],
            )])),
        ),
        ("b".to_string(), Value::from(vec![true])),
        ("f".to_string(), Value::F64(1.0)),
    ];
    let p = s.dir.path().join("w.gguf");
    let mut w = GgufWriter::create(
        &p,
        meta,
        vec![TensorSpec::new("q", &[32, 2], GgmlType::Q8_0)],
    )
    .unwrap();
    w.write_tensor("q", &[7; 68]).unwrap();
    w.finish().unwrap();
    let full = std::fs::read(&p).unwrap();
    let end = {
        let f = GgufFile::open(&p).unwrap();
        let t = &f.tensors()[0];
        (f.data_offset() + t.offset + t.size) as usize
    };
    for n in 0..end {
        s.err(&full[..n]);
    }
    s.open(&full[..end]).unwrap();
}

#[test]
fn truncation_reports_offset_and_field() {
    let s = Scratch::new();
    let full = RawGguf::small().bytes();
    let msg = s.err(&full[..10]).to_string();
    assert!(
        msg.contains("tensor count") && msg.contains("offset 8"),
        "{msg}"
    );
    let e = s.err(&full[..full.len() - 1]);
    assert!(matches!(problem(e).1, TensorProblem::OutOfFile { .. }));
}

#[test]
fn bad_magic_and_versions() {
    let s = Scratch::new();
    let mut g = RawGguf::small();
    g.magic = *b"GGML";
    assert!(matches!(s.err(&g.bytes()), FileError::BadMagic { found, .. } if &found == b"GGML"));

    for (version, needle) in [
        (1u32, "v1"),
        (0, "not a GGUF version"),
        (3u32.swap_bytes(), "big-endian"),
        (4, "newer"),
    ] {
        let mut g = RawGguf::small();
        g.version = version;
        let e = s.err(&g.bytes());
        assert!(matches!(e, FileError::UnsupportedVersion { version: v, .. } if v == version));
        assert!(e.to_string().contains(needle), "{e}");
    }
    let mut g = RawGguf::small();
    g.version = 2;
    s.open(&g.bytes()).unwrap();
}

#[test]
fn huge_counts_fail_before_allocating() {
    let s = Scratch::new();
    for (nt, nk) in [
        (Some(1u64 << 60), None),
        (None, Some(u64::MAX)),
        (Some(1 << 40), Some(1 << 40)),
    ] {
        let mut g = RawGguf::small();
        g.n_tensors = nt;
        g.n_kv = nk;
        let e = s.err(&g.bytes());
        assert!(matches!(e, FileError::CountTooLarge { .. }), "{e}");
    }
    // Small lies pass the count check and are caught by running out of (or mis-parsing) bytes.
    for (nt, nk) in [(Some(3u64), None), (None, Some(2u64))] {
        let mut g = RawGguf::small();
        g.n_tensors = nt;
        g.n_kv = nk;
        s.err(&g.bytes());
    }
}

#[test]
fn huge_string_lengths() {
    let s = Scratch::new();
    let mut g = RawGguf::small();
    let mut k = kv("general.architecture", 8, &[]);
    k.extend_from_slice(&(1u64 << 62).to_le_bytes());
    g.kvs = vec![k];
    let e = s.err(&g.bytes());
    assert!(
        matches!(e, FileError::CountTooLarge { count, .. } if count == 1 << 62),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("value of key 'general.architecture'"),
        "{e}"
    );

    let mut g = RawGguf::small();
    let mut key = u64::MAX.to_le_bytes().to_vec();
    key.extend_from_slice(b"abc");
    g.kvs = vec![key];
    assert!(matches!(s.err(&g.bytes()), FileError::CountTooLarge { .. }));

    let mut g = RawGguf::small();
    g.tensors[1].name = vec![];
    let mut b = g.bytes();
    // Patch tensor "b"'s (now empty) name length to something enormous.
    let pos = b
        .windows(9)
        .position(|w| w == [0, 0, 0, 0, 0, 0, 0, 0, 1])
        .unwrap();
    b[pos..pos + 8].copy_from_slice(&(1u64 << 50).to_le_bytes());
    assert!(matches!(s.err(&b), FileError::CountTooLarge { .. }));
}

#[test]
fn bad_value_types_and_values() {
    let s = Scratch::new();
    let e = s.err(&with_kv("k", 13, &[0; 8]));
    assert!(
        matches!(e, FileError::BadValueType { type_id: 13, ref key, .. } if key == "k"),
        "{e}"
    );
    let e = s.err(&with_kv("k", 9, &array(99, 1, &[0; 8])));
    assert!(
        matches!(e, FileError::BadValueType { type_id: 99, .. }),
        "{e}"
    );
    let e = s.err(&with_kv("k", 7, &[2]));
    assert!(e.to_string().contains("bool byte 2"), "{e}");
    let e = s.err(&with_kv("k", 9, &array(7, 2, &[1, 5])));
    assert!(e.to_string().contains("bool byte 5"), "{e}");
    let e = s.err(&with_kv("k", 8, &gguf_str(&[0xff, 0xfe])));
    assert!(e.to_string().contains("not valid UTF-8"), "{e}");
    let mut g = RawGguf::small();
    g.kvs.push(kv("general.architecture", 4, &[0; 4]));
    assert!(
        matches!(s.err(&g.bytes()), FileError::DuplicateKey { ref key, .. } if key == "general.architecture")
    );
}

#[test]
fn arrays_larger_than_the_file() {
    let s = Scratch::new();
    for (elem, count) in [
        (0u32, 1u64 << 40),
        (6, 1 << 61),
        (12, u64::MAX),
        (8, 1 << 40),
        (9, 1 << 59),
    ] {
        let e = s.err(&with_kv("arr", 9, &array(elem, count, &[0; 16])));
        assert!(
            matches!(e, FileError::CountTooLarge { count: c, .. } if c == count),
            "{e}"
        );
        assert!(e.to_string().contains("array length of key 'arr'"), "{e}");
    }
    // Declared count fits the file only because tensor data follows: the strings then run out.
    let e = s.err(&with_kv("arr", 9, &array(8, 4, &gguf_str(b"ok"))));
    assert!(e.to_string().contains("of array 'arr'"), "{e}");
}

#[test]
fn deep_nesting_is_refused() {
    let s = Scratch::new();
    let mut v = Vec::new();
    for _ in 0..10_000 {
        v.extend_from_slice(&array(9, 1, &[]));
    }
    v.extend_from_slice(&array(0, 0, &[]));
    let e = s.err(&with_kv("deep", 9, &v));
    assert!(e.to_string().contains("nested deeper"), "{e}");
}

#[test]
fn alignment_key_is_checked() {
    let s = Scratch::new();
    for a in [0u32, 3, 48] {
        let e = s.err(&with_kv("general.alignment", 4, &a.to_le_bytes()));
        assert!(
            matches!(e, FileError::BadAlignment { value, .. } if value == a as u64),
            "{e}"
        );
    }
    let e = s.err(&with_kv("general.alignment", 10, &32u64.to_le_bytes()));
    assert!(
        matches!(e, FileError::WrongType { found: "u64", .. }),
        "{e}"
    );
    // A valid larger alignment moves the data section; offsets 0 and 32 are then misaligned.
    let mut g = RawGguf::small();
    g.kvs.push(kv("general.alignment", 4, &64u32.to_le_bytes()));
    g.alignment = 64;
    assert_eq!(
        problem(s.err(&g.bytes())).1,
        TensorProblem::Misaligned {
            offset: 32,
            alignment: 64
        }
    );
    g.tensors[1].offset = 64;
    g.data.resize(128, 0);
    assert_eq!(s.open(&g.bytes()).unwrap().alignment(), 64);
}

fn tensor_case(f: impl FnOnce(&mut RawGguf)) -> (String, TensorProblem) {
    let s = Scratch::new();
    let mut g = RawGguf::small();
    f(&mut g);
    problem(s.err(&g.bytes()))
}

#[test]
fn bad_tensor_infos() {
    assert_eq!(
        tensor_case(|g| g.tensors[0].type_id = 4),
        ("a".into(), TensorProblem::UnknownType(4))
    );
    assert_eq!(
        tensor_case(|g| g.tensors[0].type_id = 1000).1,
        TensorProblem::UnknownType(1000)
    );
    assert_eq!(
        tensor_case(|g| g.tensors[1].dims = vec![1; 5]),
        ("b".into(), TensorProblem::NDims(5))
    );
    assert_eq!(
        tensor_case(|g| g.tensors[1].dims = vec![]).1,
        TensorProblem::NDims(0)
    );
    assert_eq!(
        tensor_case(|g| g.tensors[0].dims = vec![8, 0]).1,
        TensorProblem::ZeroDim { index: 1 }
    );
    assert_eq!(
        tensor_case(|g| g.tensors[0].dims = vec![0]).1,
        TensorProblem::ZeroDim { index: 0 }
    );
    assert_eq!(
        tensor_case(|g| g.tensors[0].dims = vec![1 << 32, 1 << 32]).1,
        TensorProblem::SizeOverflow
    );
    assert_eq!(
        tensor_case(|g| g.tensors[0].dims = vec![u64::MAX]).1,
        TensorProblem::SizeOverflow
    );
    assert_eq!(
        tensor_case(|g| {
            g.tensors[0].type_id = GgmlType::Q4_K.id();
            g.tensors[0].dims = vec![100];
        })
        .1,
        TensorProblem::PartialBlock {
            ne0: 100,
            ty: "Q4_K",
            block: 256
        }
    );
    assert_eq!(
        tensor_case(|g| g.tensors[1].offset = 16).1,
        TensorProblem::Misaligned {
            offset: 16,
            alignment: 32
        }
    );
    assert_eq!(
        tensor_case(|g| g.tensors[1].offset = 1 << 40).1,
        TensorProblem::OutOfFile {
            start: 1 << 40,
            end: (1 << 40) + 32,
            len: 64
        }
    );
    assert!(matches!(
        tensor_case(|g| g.tensors[1].offset = u64::MAX - 31).1,
        TensorProblem::OutOfFile { .. }
    ));
    assert!(matches!(
        tensor_case(|g| g.tensors[0].dims = vec![9]).1,
        TensorProblem::Overlap { .. }
    ));
    assert_eq!(
        tensor_case(|g| g.tensors[1].offset = 0).1,
        TensorProblem::Overlap { other: "a".into() }
    );
    assert_eq!(
        tensor_case(|g| g.tensors[1].name = b"a".to_vec()),
        ("a".into(), TensorProblem::Duplicate)
    );
    assert!(matches!(
        tensor_case(|g| g.tensors.push(RawTensor {
            name: b"c".to_vec(),
            dims: vec![4],
            type_id: 0,
            offset: 64
        }))
        .1,
        TensorProblem::OutOfFile { .. }
    ));
    let s = Scratch::new();
    let mut g = RawGguf::small();
    g.tensors.push(f32_tensor("c", 8, 64));
    g.data.resize(96, 0);
    assert_eq!(s.open(&g.bytes()).unwrap().tensors().len(), 3);
}

#[test]
fn tensor_error_messages_are_specific() {
    let s = Scratch::new();
    let mut g = RawGguf::small();
    g.tensors[1].offset = 16;
    let msg = s.err(&g.bytes()).to_string();
    assert!(
        msg.contains("tensor 'b'") && msg.contains("offset 16") && msg.contains("alignment 32"),
        "{msg}"
    );
}

/// Crude mutation fuzzing of the header: whatever the byte, opening returns (never panics).
#[test]
fn header_byte_mutations_never_panic() {
    let s = Scratch::new();
    let base = RawGguf::small().bytes();
    let header_len = base.len() - 64;
    for i in 0..header_len {
        for v in [0x00u8, 0x01, 0x7f, 0x80, 0xff] {
            let mut b = base.clone();
            b[i] = v;
            let _ = s.open(&b);
        }
    }
}
