//! Helpers for running the `lowbit` binary in tests.
#![allow(dead_code)]

use lowbit_files::gguf::{GgufWriter, TensorSpec, Value};
use lowbit_formats::GgmlType;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn lowbit(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lowbit"));
    for a in args {
        c.arg(a);
    }
    c.output().expect("lowbit runs")
}

/// Runs lowbit and returns stdout, failing the test with stderr when it exits non-zero.
pub fn ok(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let out = lowbit(args);
    assert!(
        out.status.success(),
        "lowbit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts lowbit failed cleanly (exit 1, an `error:` line, no panic) and returns stderr.
pub fn fails(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let out = lowbit(args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a clean failure, got {:?}: {err}",
        out.status
    );
    assert!(err.starts_with("error: "), "no error message: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    err
}

/// Deterministic pseudo-random values with a few outliers, like real weights.
pub fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
            if i % 97 == 0 {
                u * 8.0
            } else {
                u * 0.2
            }
        })
        .collect()
}

/// A tiny llama-shaped F32 GGUF: 2 layers, 256-wide rows (and one 96-wide tensor to force a fallback).
pub fn tiny_model(dir: &Path) -> PathBuf {
    let path = dir.join("tiny-f32.gguf");
    let shapes: Vec<(String, Vec<u64>)> = vec![
        ("token_embd.weight".into(), vec![256, 64]),
        ("output_norm.weight".into(), vec![256]),
        ("output.weight".into(), vec![256, 64]),
        ("blk.0.attn_norm.weight".into(), vec![256]),
        ("blk.0.attn_q.weight".into(), vec![256, 256]),
        ("blk.0.attn_v.weight".into(), vec![256, 64]),
        ("blk.0.ffn_down.weight".into(), vec![512, 256]),
        ("blk.1.attn_q.weight".into(), vec![256, 256]),
        ("blk.1.attn_v.weight".into(), vec![256, 64]),
        ("blk.1.ffn_down.weight".into(), vec![96, 256]),
    ];
    let metadata = vec![
        (
            "general.architecture".to_string(),
            Value::String("llama".into()),
        ),
        ("general.name".to_string(), Value::String("tiny".into())),
        ("llama.block_count".to_string(), Value::U32(2)),
        ("llama.attention.head_count".to_string(), Value::U32(4)),
        ("llama.attention.head_count_kv".to_string(), Value::U32(1)),
    ];
    let specs = shapes
        .iter()
        .map(|(n, d)| TensorSpec::new(n.clone(), d, GgmlType::F32))
        .collect();
    let mut w = GgufWriter::create(&path, metadata, specs).unwrap();
    for (i, (n, d)) in shapes.iter().enumerate() {
        let v = weights(d.iter().product::<u64>() as usize, i as u64);
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.write_tensor(n, &bytes).unwrap();
    }
    w.finish().unwrap();
    path
}

#[path = "../../../../tests/support/real_data.rs"]
mod real_data;
#[allow(unused_imports)]
pub use real_data::{models_dir, present, real_model, wikitext};
