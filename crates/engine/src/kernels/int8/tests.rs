//! Every level against the scalar kernel bit for bit, the scalar kernel against the plain
//! definition, and activation rounding against its formula, on shapes that fill no panel, block
//! or column group exactly.

use super::*;

fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            if i % 97 == 5 { u * 9.0 } else { u }
        })
        .collect()
}

fn codes(n: usize, seed: u64) -> Vec<i8> {
    // The full range, both extremes included.
    noise(n, seed).iter().map(|v| ((v * 140.0).round().clamp(-128.0, 127.0)) as i8).collect()
}

fn matrix(rows: usize, cols: usize, seed: u64) -> Int8Matrix {
    let scales: Vec<f32> = (0..rows).map(|r| 0.01 + r as f32 * 1e-4).collect();
    Int8Matrix::new(rows, cols, &codes(rows * cols, seed), &scales).unwrap()
}

const SHAPES: [(usize, usize); 6] = [(1, 1), (15, 3), (17, 5), (70, 37), (129, 64), (64, 577)];

#[test]
fn every_level_matches_the_scalar_kernel_bit_for_bit() {
    for (i, &(rows, cols)) in SHAPES.iter().enumerate() {
        let w = matrix(rows, cols, i as u64);
        for n in [1, 2, 5, 6, 7, 13] {
            let x = noise(n * cols, 100 + i as u64);
            for range in [ActRange::DynamicToken, ActRange::Static { scale: 0.02, zero: -7 }] {
                let a = Int8Acts::quantize(&x, n, cols, range);
                let mut want = vec![0f32; n * rows];
                matmul_int8_at(Level::Scalar, &w, &a, &mut want);
                for level in Level::supported() {
                    let mut got = vec![0f32; n * rows];
                    matmul_int8_at(level, &w, &a, &mut got);
                    assert_eq!(got, want, "{} rows {rows} cols {cols} n {n}", level.name());
                }
            }
        }
    }
}

#[test]
fn the_scalar_kernel_computes_the_dequantized_product() {
    for (i, &(rows, cols)) in SHAPES.iter().enumerate() {
        let w = matrix(rows, cols, 7 + i as u64);
        let n = 9;
        let x = noise(n * cols, 3 + i as u64);
        for range in [ActRange::DynamicToken, ActRange::Static { scale: 0.015, zero: 20 }] {
            let a = Int8Acts::quantize(&x, n, cols, range);
            let xd = a.dequantize();
            let mut got = vec![0f32; n * rows];
            matmul_int8_at(Level::Scalar, &w, &a, &mut got);
            for t in 0..n {
                for r in 0..rows {
                    let want: f64 = (0..cols)
                        .map(|c| w.code(r, c) as f64 * w.scale(r) as f64 * xd[t * cols + c] as f64)
                        .sum();
                    let g = got[t * rows + r] as f64;
                    assert!((g - want).abs() <= 1e-5 * (1.0 + want.abs()), "r {r} t {t}: {g} vs {want}");
                }
            }
        }
    }
}

#[test]
fn activations_round_half_to_even_clamp_and_keep_zero_rows() {
    let x = [0.5f32, 1.5, -2.5, 300.0, -300.0, 0.0];
    let a = Int8Acts::quantize(&x, 1, 6, ActRange::Static { scale: 1.0, zero: 0 });
    assert_eq!(a.dequantize(), vec![0.0, 2.0, -2.0, 127.0, -128.0, 0.0]);
    let a = Int8Acts::quantize(&x, 1, 6, ActRange::Static { scale: 1.0, zero: 10 });
    assert_eq!(a.dequantize(), vec![0.0, 2.0, -2.0, 117.0, -138.0, 0.0]);
    // Dynamic: the scale puts the largest magnitude at 127.5 (in f32, just inside it).
    let a = Int8Acts::quantize(&[1.0, -2.0, 0.5], 1, 3, ActRange::DynamicToken);
    let s = 2.0f32 / 127.5;
    let want: Vec<f32> = [1.0f32, -2.0, 0.5].iter().map(|v| (v / s).round_ties_even().clamp(-128.0, 127.0) * s).collect();
    assert_eq!(a.dequantize(), want);
    let a = Int8Acts::quantize(&[0.0; 5], 1, 5, ActRange::DynamicToken);
    assert_eq!(a.dequantize(), vec![0.0; 5]);
    let w = matrix(3, 5, 1);
    let mut out = vec![1f32; 3];
    matmul_int8(&w, &a, &mut out);
    assert_eq!(out, vec![0.0; 3]);
}

#[test]
fn packing_keeps_every_code_and_refuses_bad_lengths() {
    let c = codes(70 * 37, 5);
    let w = Int8Matrix::new(70, 37, &c, &vec![1.0; 70]).unwrap();
    for r in 0..70 {
        for k in 0..37 {
            assert_eq!(w.code(r, k), c[r * 37 + k]);
        }
    }
    assert!(Int8Matrix::new(70, 37, &c[1..], &vec![1.0; 70]).is_none());
    assert!(Int8Matrix::new(70, 37, &c, &vec![1.0; 69]).is_none());
    assert!(Int8Matrix::new(1, MAX_COLS + 1, &vec![0; MAX_COLS + 1], &[1.0]).is_none(), "i32 sums could overflow");
}

#[test]
fn a_nan_activation_gives_nan_outputs_in_both_ranges() {
    let w = matrix(3, 5, 2);
    let x = [0.5, f32::NAN, 1.0, 0.0, -1.0, 0.5, 0.25, 1.0, 0.0, -1.0];
    for range in [ActRange::DynamicToken, ActRange::Static { scale: 0.01, zero: 3 }] {
        let a = Int8Acts::quantize(&x, 2, 5, range);
        let mut out = vec![0f32; 6];
        matmul_int8(&w, &a, &mut out);
        assert!(out[..3].iter().all(|v| v.is_nan()) && out[3..].iter().all(|v| v.is_finite()), "{range:?}: {out:?}");
    }
}

#[test]
fn a_long_prompt_splits_over_tokens_without_changing_a_bit() {
    // Few row blocks (a K/V-sized matrix) and many tokens: the tasks split the tokens.
    let (rows, cols, n) = (70, 40, 301);
    let w = matrix(rows, cols, 4);
    let a = Int8Acts::quantize(&noise(n * cols, 8), n, cols, ActRange::DynamicToken);
    let mut one = vec![0f32; n * rows];
    rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| matmul_int8(&w, &a, &mut one));
    let mut many = vec![0f32; n * rows];
    rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap().install(|| matmul_int8(&w, &a, &mut many));
    assert_eq!(one, many);
}

