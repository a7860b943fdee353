//! The AVX2 path must produce exactly the portable path's bytes (the portable code is the
//! reference). Own test binary: the path switch is process-wide.

mod common;
use common::{Rng, TYPES};
use lowbit_formats::search::{avx2_available, force_portable};
use lowbit_formats::{block_format, GgmlType};

/// Rows of awkward data, 512 elements each (two super-blocks).
fn rows() -> Vec<Vec<f32>> {
    let mut r = Rng(0x1234_5678_9abc_def1);
    let n = 512;
    let mut out: Vec<Vec<f32>> = Vec::new();
    out.push((0..n).map(|_| 0.02 * r.heavy()).collect());
    out.push((0..n).map(|_| r.u() * 3.0 + 1.0).collect());
    out.push((0..n).map(|_| -r.u()).collect());
    // On a lattice (dequantized data), with exact ties of magnitude and sign.
    out.push(
        (0..n)
            .map(|i| 0.125 * ((i * 7 % 16) as f32 - 8.0))
            .collect(),
    );
    out.push(
        (0..n)
            .map(|i| if i % 2 == 0 { 3.0 } else { -3.0 })
            .collect(),
    );
    // Dequantized Q4_K-style data using only part of each sub-block's levels, where llama.cpp's
    // own choice (a finalist beside the search) tends to win.
    out.push(
        (0..n)
            .map(|i| {
                let j = (i / 32) as f32;
                let q = (i * 5 % 11) as f32;
                (0.001 * (30.0 + 3.0 * j)) * q - 0.002 * (7.0 * j % 64.0)
            })
            .collect(),
    );
    // Mostly zero, a few spikes; constant blocks; extremes of range.
    out.push(
        (0..n)
            .map(|i| if i % 37 == 0 { r.heavy() } else { 0.0 })
            .collect(),
    );
    out.push(vec![0.7; n]);
    out.push(vec![0.0; n]);
    out.push((0..n).map(|_| r.heavy() * 1e-41).collect());
    out.push((0..n).map(|_| r.heavy() * 1e30).collect());
    out.push((0..n).map(|_| r.heavy() * 1e-8).collect());
    let mut nan: Vec<f32> = (0..n).map(|_| r.heavy()).collect();
    nan[5] = f32::NAN;
    nan[300] = f32::INFINITY;
    out.push(nan);
    out
}

fn quantize(t: GgmlType, x: &[f32], imp: Option<&[f32]>) -> Vec<u8> {
    let f = block_format(t).expect("format");
    let mut q = vec![0u8; t.row_bytes(x.len() as u64).unwrap() as usize];
    f.quantize_row(x, imp, &mut q).unwrap();
    q
}

#[test]
fn vector_and_portable_paths_agree_bit_for_bit() {
    if !avx2_available() {
        eprintln!("no AVX2+FMA here: only the portable path exists");
        return;
    }
    let mut r = Rng(99);
    let imp: Vec<f32> = (0..512)
        .map(|i| {
            if i % 13 == 0 {
                0.0
            } else {
                r.u() * r.u() * 4.0
            }
        })
        .collect();
    for t in TYPES {
        for (k, x) in rows().iter().enumerate() {
            for importance in [None, Some(&imp[..])] {
                force_portable(false);
                let fast = quantize(t, x, importance);
                force_portable(true);
                let reference = quantize(t, x, importance);
                force_portable(false);
                assert_eq!(
                    fast,
                    reference,
                    "{t} row {k} importance {}",
                    importance.is_some()
                );
            }
        }
    }
}
