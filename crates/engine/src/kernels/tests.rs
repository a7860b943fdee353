//! Every kernel against its scalar twin, the scalar twin against the reference (within the
//! bound activation rounding allows), and every dispatch path against the reference, for every
//! block type with a kernel, on shapes that are not multiples of the chunk / vector sizes.

use super::act::{ActBatch, ActKind};
use super::cpu::Level;
use super::*;
use lowbit_formats::GgmlType as T;

const TYPES: [GgmlType; 18] = [
    T::F32,
    T::F16,
    T::BF16,
    T::Q4_0,
    T::Q4_1,
    T::Q5_0,
    T::Q5_1,
    T::Q8_0,
    T::IQ4_NL,
    T::MXFP4,
    T::Q2_K,
    T::Q3_K,
    T::Q4_K,
    T::Q5_K,
    T::Q6_K,
    T::IQ4_XS,
    T::TQ1_0,
    T::TQ2_0,
];

/// Deterministic pseudo-random values in [-1, 1) with a few larger outliers.
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            if i % 97 == 5 {
                v * 4.0
            } else {
                v
            }
        })
        .collect()
}

fn quantized(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let fmt = block_format(ty).unwrap();
    let rb = ty.row_bytes(cols as u64).unwrap() as usize;
    let src = noise(rows * cols, seed);
    let mut data = vec![0u8; rows * rb];
    for (s, d) in src.chunks_exact(cols).zip(data.chunks_exact_mut(rb)) {
        fmt.quantize_row(s, None, d).unwrap();
    }
    data
}

fn dequantized(w: &QMatrix) -> Vec<f32> {
    let fmt = block_format(w.ty).unwrap();
    let mut all = vec![0f32; w.rows * w.cols];
    for (r, d) in all.chunks_exact_mut(w.cols).enumerate() {
        fmt.dequantize_row(w.row(r), d).unwrap();
    }
    all
}

/// Σ|w|·|x| per (token, row): the scale of the f32 rounding error of a dot product.
fn magnitudes(wf: &[f32], x: &[f32], rows: usize, cols: usize, n: usize) -> Vec<f32> {
    let mut m = vec![0f32; n * rows];
    for t in 0..n {
        for r in 0..rows {
            m[t * rows + r] = (0..cols)
                .map(|c| (wf[r * cols + c] * x[t * cols + c]).abs())
                .sum();
        }
    }
    m
}

const SHAPES: [(usize, usize); 3] = [(1, 256), (7, 512), (13, 768)];

#[test]
fn simd_kernels_match_their_scalar_twins() {
    for ty in TYPES {
        for (rows, cols) in SHAPES {
            let data = quantized(ty, rows, cols, 7);
            let w = QMatrix::new(ty, rows, cols, &data).unwrap();
            let wf = dequantized(&w);
            let x = noise(3 * cols, 11);
            let mag = magnitudes(&wf, &x, rows, cols, 3);
            let (kind, scalar) = kernel(ty, Level::Scalar).unwrap();
            let acts = ActBatch::new(kind, &x, cols, 3);
            for level in Level::supported() {
                let (k2, f) = kernel(ty, level).unwrap();
                assert_eq!(k2, kind);
                for t in 0..3 {
                    for r in 0..rows {
                        let (a, b) = (scalar(w.row(r), &acts.row(t)), f(w.row(r), &acts.row(t)));
                        let tol = 2e-6 * mag[t * rows + r] + 1e-6;
                        assert!(
                            (a - b).abs() <= tol,
                            "{ty:?} {} row {r} token {t}: scalar {a} vs {b}",
                            level.name()
                        );
                    }
                }
            }
        }
    }
}

/// Multi-row kernels on every run length of rows, starting off the first row, each row against
/// the scalar twin (32-block types on a width that is not a multiple of 256 too).
#[test]
fn multi_row_kernels_match_their_scalar_twins() {
    let mut covered = 0;
    for ty in TYPES {
        for (rows, cols) in [(9, 256), (11, 544), (6, 768)] {
            let Some(rb) = ty.row_bytes(cols as u64) else {
                continue;
            };
            let data = quantized(ty, rows, cols, 17);
            let w = QMatrix::new(ty, rows, cols, &data).unwrap();
            let wf = dequantized(&w);
            let x = noise(2 * cols, 19);
            let mag = magnitudes(&wf, &x, rows, cols, 2);
            let (kind, scalar) = kernel(ty, Level::Scalar).unwrap();
            let acts = ActBatch::new(kind, &x, cols, 2);
            for level in Level::supported() {
                let Some((k2, f)) = rows_kernel(ty, level) else {
                    continue;
                };
                assert_eq!(k2, kind);
                covered += 1;
                for t in 0..2 {
                    // Groups start at row 1 so the first row is not at offset 0.
                    for n in 1..rows {
                        let rb = rb as usize;
                        let mut got = vec![f32::NAN; n];
                        f(&data[rb..rb * (n + 1)], rb, &acts.row(t), &mut got);
                        for (i, &g) in got.iter().enumerate() {
                            let r = i + 1;
                            let want = scalar(w.row(r), &acts.row(t));
                            let tol = 2e-6 * mag[t * rows + r] + 1e-6;
                            assert!(
                                (want - g).abs() <= tol,
                                "{ty:?} {} {n} rows, row {r} token {t}: scalar {want} vs {g}",
                                level.name()
                            );
                        }
                    }
                }
            }
        }
    }
    if Level::supported().contains(&Level::Avx512) {
        assert!(covered > 0, "no multi-row kernel was exercised");
    }
}

#[test]
fn scalar_twins_match_the_reference_within_activation_rounding() {
    for ty in TYPES {
        for (rows, cols) in SHAPES {
            let data = quantized(ty, rows, cols, 3);
            let w = QMatrix::new(ty, rows, cols, &data).unwrap();
            let wf = dequantized(&w);
            let n = 3;
            let x = noise(n * cols, 5);
            let mag = magnitudes(&wf, &x, rows, cols, n);
            let mut want = vec![0f32; n * rows];
            reference::matmul(&w, &x, n, &mut want);
            let (kind, scalar) = kernel(ty, Level::Scalar).unwrap();
            let acts = ActBatch::new(kind, &x, cols, n);
            let bs = match kind {
                ActKind::F32 => 0,
                ActKind::Q8x32 => 32,
                ActKind::Q8x256 => 256,
            };
            for t in 0..n {
                let a = acts.row(t);
                for r in 0..rows {
                    // Activation rounding moves each x by at most half its block's step.
                    let bound: f32 = if bs == 0 {
                        0.0
                    } else {
                        (0..cols)
                            .map(|c| wf[r * cols + c].abs() * 0.5 * a.d[c / bs])
                            .sum()
                    };
                    let tol = bound * 1.001 + 1e-5 * mag[t * rows + r] + 1e-5;
                    let got = scalar(w.row(r), &a);
                    // Exactly: the product with the rounded activations, up to f32 rounding.
                    let exact: f64 = (0..cols)
                        .map(|c| {
                            let xc = if bs == 0 {
                                x[t * cols + c]
                            } else {
                                a.qs[c] as f32 * a.d[c / bs]
                            };
                            wf[r * cols + c] as f64 * xc as f64
                        })
                        .sum();
                    let slack = 2e-6 * (mag[t * rows + r] + bound) + 1e-6;
                    assert!(
                        (got as f64 - exact).abs() <= slack as f64,
                        "{ty:?} {rows}x{cols} row {r} token {t}: {got} vs exact {exact}"
                    );
                    let exp = want[t * rows + r];
                    assert!(
                        (got - exp).abs() <= tol,
                        "{ty:?} {rows}x{cols} row {r} token {t}: {got} vs reference {exp} (tol {tol})"
                    );
                }
            }
        }
    }
}

/// Every public path (row kernels with Q8 or f32 activations, the GEMM path) on odd shapes.
#[test]
fn dispatch_paths_match_the_reference() {
    for (ty, (rows, cols)) in TYPES
        .into_iter()
        .flat_map(|ty| [(ty, (13, 512)), (ty, (70, 576))])
    {
        if ty.row_bytes(cols as u64).is_none() {
            continue;
        }
        let data = quantized(ty, rows, cols, 9);
        let w = QMatrix::new(ty, rows, cols, &data).unwrap();
        let wf = dequantized(&w);
        for n in [1, 3, 17] {
            let x = noise(n * cols, 13 + n as u64);
            let mag = magnitudes(&wf, &x, rows, cols, n);
            let mut want = vec![0f32; n * rows];
            reference::matmul(&w, &x, n, &mut want);
            let variants = [
                (Activations::Q8, 16, 0.02),
                (Activations::Q8, usize::MAX, 0.02),
                (Activations::F32, 16, 1e-5),
                (Activations::F32, usize::MAX, 1e-5),
            ];
            for (activations, gemm_min_tokens, rel) in variants {
                let opts = MatmulOptions {
                    activations,
                    gemm_min_tokens,
                    level: None,
                };
                let mut got = vec![f32::NAN; n * rows];
                matmul_with(&opts, &w, &x, n, &mut got);
                for i in 0..n * rows {
                    let tol = rel * mag[i] + 1e-5;
                    assert!(
                        (got[i] - want[i]).abs() <= tol,
                        "{ty:?} n={n} {opts:?} [{i}]: {} vs {}",
                        got[i],
                        want[i]
                    );
                }
            }
        }
    }
}

/// Types without an integer kernel dequantize rows; exercised with a parallel pool too.
#[test]
fn threaded_results_equal_single_threaded() {
    let (rows, cols) = (37, 256);
    for ty in [T::Q4_0, T::Q6_K, T::F16] {
        let data = quantized(ty, rows, cols, 21);
        let w = QMatrix::new(ty, rows, cols, &data).unwrap();
        for n in [1, 17] {
            let x = noise(n * cols, 4);
            let mut one = vec![0f32; n * rows];
            let mut two = vec![0f32; n * rows];
            let pool = |t| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(t)
                    .build()
                    .unwrap()
            };
            pool(1).install(|| matmul(&w, &x, n, &mut one));
            pool(3).install(|| matmul(&w, &x, n, &mut two));
            assert_eq!(one, two, "{ty:?} n={n}");
        }
    }
}
