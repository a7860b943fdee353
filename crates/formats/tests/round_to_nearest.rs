//! Behaviour every round-to-nearest block format must have, checked per type on synthetic data.

mod common;
use common::{Rng, TYPES};
use lowbit_formats::{block_format, BlockFormat, FormatError, GgmlType};

/// Relative RMSE ceilings on Gaussian data (a few times looser than what the search achieves,
/// far tighter than a broken layout would give).
fn max_rel_rmse(t: GgmlType) -> f32 {
    match t {
        GgmlType::Q2_K => 0.45,
        GgmlType::Q3_K => 0.25,
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q4_K | GgmlType::IQ4_NL | GgmlType::IQ4_XS => {
            0.13
        }
        GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q5_K => 0.065,
        GgmlType::Q6_K => 0.035,
        _ => 0.01,
    }
}

fn fmt(t: GgmlType) -> &'static dyn BlockFormat {
    block_format(t).unwrap_or_else(|| panic!("{t} has no format"))
}

fn quant(t: GgmlType, x: &[f32], imp: Option<&[f32]>) -> Vec<u8> {
    let mut q = vec![0u8; t.row_bytes(x.len() as u64).unwrap() as usize];
    fmt(t).quantize_row(x, imp, &mut q).unwrap();
    q
}

fn dequant(t: GgmlType, q: &[u8], n: usize) -> Vec<f32> {
    let mut y = vec![0f32; n];
    fmt(t).dequantize_row(q, &mut y).unwrap();
    y
}

fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng(seed);
    (0..n).map(|_| r.gauss() * 0.05).collect()
}

#[test]
fn random_data_round_trips_within_bounds() {
    let x = gaussian(4096, 1);
    let rms = (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    for t in TYPES {
        let y = dequant(t, &quant(t, &x, None), x.len());
        let e = (x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            / x.len() as f32)
            .sqrt();
        assert!(e / rms < max_rel_rmse(t), "{t}: relative rmse {}", e / rms);
    }
}

/// Quantizing what a quantizer produced must give back the same values, and for the formats
/// whose representation is unique, the same bytes.
#[test]
fn on_grid_data_is_reproduced() {
    for t in TYPES {
        let (be, bb) = (t.block_elems(), t.block_bytes());
        let (mut blocks, mut same_vals, mut same_bytes) = (0, 0, 0);
        for seed in 0..4 {
            let x = gaussian(1024, 10 + seed);
            let q1 = quant(t, &x, None);
            let y1 = dequant(t, &q1, x.len());
            let q2 = quant(t, &y1, None);
            let y2 = dequant(t, &q2, x.len());
            for (i, (b1, b2)) in q1.chunks(bb).zip(q2.chunks(bb)).enumerate() {
                blocks += 1;
                same_bytes += (b1 == b2) as usize;
                same_vals += (y1[i * be..][..be] == y2[i * be..][..be]) as usize;
                // ±0 alike
            }
        }
        // Affine k-quants: a sub-block whose codes do not touch 0 can come back with its min
        // shifted by one step (see the report); everything else must be exact.
        let affine_k = matches!(t, GgmlType::Q2_K | GgmlType::Q4_K | GgmlType::Q5_K);
        if affine_k {
            assert!(
                same_vals * 100 >= blocks * 90,
                "{t}: {same_vals}/{blocks} blocks same values"
            );
        } else {
            assert_eq!(same_vals, blocks, "{t}: requantized values differ");
        }
        // Sign ties (no code on the unpaired grid level, extreme magnitude on both signs) make the
        // bytes of the symmetric types ambiguous; Q8_K keeps an unrounded f32 scale.
        let unique = matches!(
            t,
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q8_0 | GgmlType::Q8_1 | GgmlType::IQ4_NL
        );
        if unique {
            assert_eq!(same_bytes, blocks, "{t}: requantized bytes differ");
        }
    }
}

/// Synthesised ggml-convention blocks (codes and scale chosen directly) are recovered byte for byte.
#[test]
fn synthesised_q8_0_and_q4_0_blocks_are_recovered() {
    let mut r = Rng(5);
    for _ in 0..200 {
        // Q8_0: positive scale, one code at ±127.
        let mut b = vec![0u8; 34];
        let d = half::f16::from_f32(0.001 + r.u() * 0.01);
        b[..2].copy_from_slice(&d.to_bits().to_le_bytes());
        for j in 0..32 {
            b[2 + j] = ((r.u() * 254.0) as i32 - 127) as i8 as u8;
        }
        b[2 + (r.u() * 32.0) as usize] = if r.u() < 0.5 { 127 } else { (-127i8) as u8 };
        let y = dequant(GgmlType::Q8_0, &b, 32);
        assert_eq!(quant(GgmlType::Q8_0, &y, None), b);
        // Q4_0: the extreme element on code 0 (level −8), the sign carried by d.
        let mut b = vec![0u8; 18];
        let d = half::f16::from_f32(
            (0.001 + r.u() * 0.01) * if r.u() < 0.5 { -1.0 } else { 1.0 },
        );
        b[..2].copy_from_slice(&d.to_bits().to_le_bytes());
        for j in 0..16 {
            b[2 + j] = ((r.u() * 15.0) as u8 + 1) | (((r.u() * 15.0) as u8 + 1) << 4);
        }
        b[2 + (r.u() * 16.0) as usize] &= 0xF0;
        let y = dequant(GgmlType::Q4_0, &b, 32);
        assert_eq!(quant(GgmlType::Q4_0, &y, None), b);
    }
}

#[test]
fn importance_moves_the_result_toward_the_weighted_objective() {
    let x = gaussian(8192, 3);
    let mut r = Rng(4);
    // Strongly skewed importance, as real imatrices are.
    let imp: Vec<f32> = (0..x.len())
        .map(|_| (8.0 * r.u()).exp2() - 0.9)
        .collect();
    for t in TYPES {
        let err = |q: &[u8]| -> f64 {
            let y = dequant(t, q, x.len());
            x.iter()
                .zip(&y)
                .zip(&imp)
                .map(|((a, b), w)| (*w * (a - b) * (a - b)) as f64)
                .sum()
        };
        let with = err(&quant(t, &x, Some(&imp)));
        let without = err(&quant(t, &x, None));
        assert!(
            with <= without,
            "{t}: weighted error {with} with importance > {without} without"
        );
    }
}

#[test]
fn bad_lengths_are_errors() {
    for t in TYPES {
        let be = t.block_elems();
        let x = vec![0.5f32; be + 1];
        let mut q = vec![0u8; 2 * t.block_bytes()];
        assert!(
            matches!(
                fmt(t).quantize_row(&x, None, &mut q),
                Err(FormatError::PartialBlock { .. })
            ),
            "{t}"
        );
        let x = vec![0.5f32; be];
        assert!(
            matches!(
                fmt(t).quantize_row(&x, None, &mut q),
                Err(FormatError::ByteLength { .. })
            ),
            "{t}"
        );
        let imp = vec![1f32; be - 1];
        let mut q1 = vec![0u8; t.block_bytes()];
        assert!(
            matches!(
                fmt(t).quantize_row(&x, Some(&imp), &mut q1),
                Err(FormatError::ImportanceLength { .. })
            ),
            "{t}"
        );
        let mut y = vec![0f32; be];
        assert!(fmt(t).dequantize_row(&q, &mut y).is_err(), "{t}");
    }
}

#[test]
fn zero_and_constant_blocks() {
    for t in TYPES {
        let n = t.block_elems() * 2;
        let y = dequant(t, &quant(t, &vec![0f32; n], None), n);
        assert!(y.iter().all(|&v| v == 0.0), "{t}: zero block not zero");
        for c in [0.75f32, -0.3] {
            let y = dequant(t, &quant(t, &vec![c; n], None), n);
            let tol = if matches!(t, GgmlType::Q8_K) {
                1e-6
            } else {
                2e-3
            };
            assert!(
                y.iter().all(|&v| (v - c).abs() <= tol * c.abs() * 8.0),
                "{t}: constant {c} -> {:?}",
                &y[..4]
            );
        }
    }
}

#[test]
fn extreme_inputs_give_finite_outputs() {
    for t in TYPES {
        let n = t.block_elems() * 4;
        let mut x: Vec<f32> = gaussian(n, 9);
        x[0] = 1e30;
        x[1] = -3e38;
        for v in &mut x[n / 4..n / 2] {
            *v *= 1e-40; // denormals
        }
        for v in &mut x[n / 2..3 * n / 4] {
            *v = 1e-45;
        }
        let imp: Vec<f32> = (0..n)
            .map(|i| if i % 3 == 0 { 0.0 } else { 1e30 })
            .collect();
        for importance in [None, Some(&imp[..])] {
            let y = dequant(t, &quant(t, &x, importance), n);
            assert!(y.iter().all(|v| v.is_finite()), "{t}: non-finite output");
        }
    }
}
