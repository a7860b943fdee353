//! Fixed-scale encoding against each type's own quantizer: the fit is the quantizer's, the codes
//! it writes are the nearest levels under the scales it stored, the grid's values are the
//! reader's values bit for bit, and any codes written through the grid read back unchanged.

mod common;

use common::Rng;
use lowbit_formats::grid::{affine_row, block_grid, fit_row, grid_of_blocks, AffineRow, GroupParams};
use lowbit_formats::{block_format, GgmlType};

/// Every type lowbit writes: the round-to-nearest types, the ternary ones and MXFP4.
fn grid_types() -> Vec<GgmlType> {
    let mut t = common::TYPES.to_vec();
    t.extend([GgmlType::TQ1_0, GgmlType::TQ2_0, GgmlType::MXFP4]);
    t
}

/// Writes `codes` through `grid` and checks every value the reader forms is the grid's.
fn encode_and_check(ty: GgmlType, grid: &lowbit_formats::grid::RowGrid, codes: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0u8; ty.row_bytes(N as u64).unwrap() as usize];
    grid.encode(codes, &mut bytes).unwrap();
    let back = dequantize(ty, &bytes);
    for i in 0..N {
        assert_eq!(back[i], grid.value(i, codes[i]), "{ty} element {i}");
    }
    bytes
}

const N: usize = 1024;

fn rows(seed: u64) -> Vec<Vec<f32>> {
    let mut r = Rng(seed);
    let heavy: Vec<f32> = (0..N).map(|_| r.heavy()).collect();
    let gauss: Vec<f32> = (0..N).map(|_| 0.02 * r.gauss()).collect();
    // A dequantized row: data already on some grid (the case requantizing must not damage).
    let q41 = block_format(GgmlType::Q4_1).unwrap();
    let mut b = vec![0u8; GgmlType::Q4_1.row_bytes(N as u64).unwrap() as usize];
    q41.quantize_row(&gauss, None, &mut b).unwrap();
    let mut on_grid = vec![0f32; N];
    q41.dequantize_row(&b, &mut on_grid).unwrap();
    vec![heavy, gauss, on_grid]
}

fn importance(seed: u64) -> Vec<f32> {
    let mut r = Rng(seed);
    (0..N).map(|_| r.u() * r.u() * 4.0).collect()
}

fn quantize(ty: GgmlType, x: &[f32], imp: Option<&[f32]>) -> Vec<u8> {
    let f = block_format(ty).unwrap();
    let mut b = vec![0u8; ty.row_bytes(x.len() as u64).unwrap() as usize];
    f.quantize_row(x, imp, &mut b).unwrap();
    b
}

fn dequantize(ty: GgmlType, b: &[u8]) -> Vec<f32> {
    let mut y = vec![0f32; N];
    block_format(ty).unwrap().dequantize_row(b, &mut y).unwrap();
    y
}

#[test]
fn every_writable_block_type_has_a_grid_and_float_types_have_none() {
    for ty in grid_types() {
        assert!(block_grid(ty).is_some(), "{ty}");
    }
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::IQ2_XXS] {
        assert!(block_grid(ty).is_none(), "{ty}");
        assert!(fit_row(ty, &[0.0; 256], None).is_err());
    }
}

#[test]
fn nearest_codes_under_the_fitted_scales_reproduce_the_quantizer_bit_for_bit() {
    for ty in grid_types() {
        for (k, x) in rows(7).iter().enumerate() {
            for imp in [None, Some(importance(11 + k as u64))] {
                let imp = imp.as_deref();
                let want = quantize(ty, x, imp);
                let grid = fit_row(ty, x, imp).unwrap();
                let codes = grid.nearest_codes(x);
                assert_eq!(grid.fitted_codes().unwrap(), codes, "{ty} row {k}: codes");
                let mut got = vec![0u8; want.len()];
                grid.encode(&codes, &mut got).unwrap();
                assert_eq!(got, want, "{ty} row {k}: bytes");
            }
        }
    }
}

#[test]
fn grid_values_are_the_readers_values_for_any_codes() {
    for ty in grid_types() {
        let x = &rows(3)[0];
        let grid = fit_row(ty, x, None).unwrap();
        let n_codes = grid.levels.n_codes() as u32;
        let mut r = Rng(99);
        let codes: Vec<u8> = (0..N)
            .map(|_| ((r.u() * n_codes as f32) as u32).min(n_codes - 1) as u8)
            .collect();
        let bytes = encode_and_check(ty, &grid, &codes);
        // Reading the written blocks gives the same grid and the same codes.
        let again = grid_of_blocks(ty, &bytes).unwrap();
        assert_eq!(again.params, grid.params, "{ty}");
        assert_eq!(again.fitted_codes().unwrap(), codes, "{ty}");
    }
}

#[test]
fn out_of_range_codes_and_wrong_lengths_are_errors() {
    let x = &rows(5)[0];
    let grid = fit_row(GgmlType::Q4_0, x, None).unwrap();
    let mut bytes = vec![0u8; GgmlType::Q4_0.row_bytes(N as u64).unwrap() as usize];
    assert!(grid.encode(&vec![16u8; N], &mut bytes).is_err());
    assert!(grid.encode(&vec![0u8; N - 1], &mut bytes).is_err());
    assert!(fit_row(GgmlType::Q4_K, &x[..100], None).is_err());
}

#[test]
fn rescaling_a_block_shrinks_its_grid_and_stays_readable() {
    for ty in grid_types() {
        let x = &rows(13)[0];
        let mut grid = fit_row(ty, x, None).unwrap();
        let before = grid.params.clone();
        grid.rescale_block(0, 0.5);
        let per = grid.block_elems() / grid.group;
        for j in 0..per {
            let (a, b) = (before[j].scale.abs(), grid.params[j].scale.abs());
            assert!(b <= a * 0.51 + 1e-12 || b < a, "{ty} group {j}: {a} -> {b}");
        }
        assert_eq!(grid.params[per..], before[per..], "{ty}: other blocks untouched");
        encode_and_check(ty, &grid, &grid.nearest_codes(x));
    }
}

#[test]
fn group_parameters_can_be_set_on_the_types_with_a_free_offset() {
    for ty in grid_types() {
        let x = &rows(17)[0];
        let mut grid = fit_row(ty, x, None).unwrap();
        let want = GroupParams {
            scale: grid.params[1].scale * 0.8,
            offset: grid.params[1].offset * 0.5,
            zero: 0.0,
        };
        let free = matches!(
            ty,
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q2_K | GgmlType::Q4_K | GgmlType::Q5_K
        );
        assert_eq!(grid.set_group(1, want), free, "{ty}");
        if !free {
            continue;
        }
        let got = grid.params[1];
        // Within the resolution of the stored codes (6-bit sub-scales against the super-scale).
        let tol = |v: f32| 0.05 * v.abs() + 0.05 * grid.params[0].scale.abs().max(1e-6);
        assert!((got.scale - want.scale).abs() <= tol(want.scale), "{ty}: {got:?} vs {want:?}");
        encode_and_check(ty, &grid, &grid.nearest_codes(x));
    }
}

#[test]
fn affine_rows_match_the_affine_quantizer_and_clip_only_when_it_pays() {
    let x = &rows(21)[0];
    for bits in [2u8, 3, 4, 8] {
        for symmetric in [false, true] {
            for group in [Some(32), Some(128), None] {
                let layout = AffineRow {
                    bits,
                    symmetric,
                    group,
                };
                let grid = affine_row(x, &layout, None).unwrap();
                let g = layout.group_len(N);
                assert_eq!(grid.params.len(), N / g);
                let codes = grid.nearest_codes(x);
                let err: f64 = (0..N)
                    .map(|i| (x[i] - grid.value(i, codes[i])) as f64)
                    .map(|e| e * e)
                    .sum();
                // Against plain min/max ranges (shrink factor 1 is the search's first candidate).
                let scheme = lowbit_formats::affine::AffineScheme::new(
                    bits,
                    symmetric,
                    match group {
                        Some(g) => lowbit_formats::affine::Granularity::PerGroup(g),
                        None => lowbit_formats::affine::Granularity::PerRow,
                    },
                );
                let q = lowbit_formats::affine::quantize(x, 1, N, &scheme, None).unwrap();
                let mut y = vec![0f32; N];
                q.dequantize(&mut y).unwrap();
                let minmax: f64 = x.iter().zip(&y).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
                // f16 scales cost a little at 8 bits, where the step is fine.
                assert!(err <= minmax * 1.01, "{bits} {symmetric} {group:?}: {err} vs {minmax}");
                for p in &grid.params {
                    assert_eq!(p.scale, lowbit_formats::float::round_f16(p.scale), "f16 scales");
                    assert_eq!(p.zero, p.zero.round());
                }
            }
        }
    }
    assert!(affine_row(&x[..100], &AffineRow { bits: 4, symmetric: false, group: Some(64) }, None).is_err());
    assert!(affine_row(x, &AffineRow { bits: 9, symmetric: false, group: Some(64) }, None).is_err());
}

#[test]
fn affine_layout_names_round_trip() {
    for s in ["int4-g128", "int3-g64-sym", "int8-ch", "int2-g32"] {
        let l = AffineRow::parse(s).unwrap();
        assert_eq!(l.name(), s);
    }
    assert_eq!(AffineRow::parse("int4-g128-asym").unwrap().name(), "int4-g128");
    for bad in ["int9-g128", "int4-g0", "int4", "int4-x", "uint4-g128", "int4-g128-foo"] {
        assert!(AffineRow::parse(bad).is_none(), "{bad}");
    }
    let l = AffineRow::parse("int4-g128").unwrap();
    assert!((l.bits_per_weight(4096) - (4.0 + 20.0 / 128.0)).abs() < 1e-12);
}
