//! Ternary block formats (BitNet b1.58, TriLMs): every weight is one of {-d, 0, +d} with one f16
//! scale `d` per 256-element block. TQ1_0 packs five trits per byte (1.6875 bpw), TQ2_0 spends
//! two bits per trit (2.0625 bpw) for cheaper unpacking; both share the same quantizer.

mod tq1_0;
mod tq2_0;

pub use tq1_0::Tq1_0;
pub use tq2_0::Tq2_0;

use crate::block::BlockFormat;
use crate::float::write_f16;
use crate::GgmlType;

/// Elements per ternary block (ggml's QK_K).
const QK: usize = 256;

/// The formats of this family.
pub fn lookup(ty: GgmlType) -> Option<&'static dyn BlockFormat> {
    match ty {
        GgmlType::TQ1_0 => Some(&Tq1_0),
        GgmlType::TQ2_0 => Some(&Tq2_0),
        _ => None,
    }
}

/// Chooses the block scale and the trits (stored as 0, 1, 2 for -1, 0, +1) of one block, writes
/// the scale as f16 into `d_out` and returns the codes.
///
/// ggml uses `d = amax`, which is exact for already-ternary weights but wastes most of the
/// grid on anything else. For a fixed set S of elements mapped to ±1 the weighted squared error is
/// minimised by `d = Σ_S w|x| / Σ_S w`, leaving `Σ w x² − (Σ_S w|x|)² / Σ_S w`; for a fixed `d` the
/// best S is "|x| > d/2", i.e. a top-k set by magnitude. So scanning every k over the elements
/// sorted by |x| finds the exact optimum (which includes ggml's choice when the input is
/// ternary), at the cost of one 256-element sort per block.
fn quantize_block(x: &[f32], importance: Option<&[f32]>, d_out: &mut [u8]) -> [u8; QK] {
    debug_assert_eq!(x.len(), QK);
    let unit_weights = match importance {
        Some(w) => {
            let s: f32 = w.iter().sum();
            !(s > 0.0 && s.is_finite())
        }
        None => true,
    };
    let weight = |i: usize| -> f32 {
        match importance {
            Some(w) if !unit_weights => w[i].max(0.0),
            _ => 1.0,
        }
    };

    let mut order = [(0f32, 0f32); QK];
    for (i, slot) in order.iter_mut().enumerate() {
        *slot = (x[i].abs(), weight(i));
    }
    order.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));

    let (mut s_wa, mut s_w) = (0f64, 0f64);
    let (mut best_gain, mut best_d) = (0f64, 0f64);
    for &(a, w) in &order {
        if a == 0.0 {
            break;
        }
        s_wa += w as f64 * a as f64;
        s_w += w as f64;
        if s_w > 0.0 {
            let gain = s_wa * s_wa / s_w;
            if gain > best_gain {
                best_gain = gain;
                best_d = s_wa / s_w;
            }
        }
    }
    // Keep the scale finite in f16: an infinite d would decode zeros as NaN.
    let d = write_f16(d_out, (best_d as f32).min(65504.0));

    let mut codes = [1u8; QK];
    if d > 0.0 && d.is_finite() {
        let half = 0.5 * d;
        for (c, &v) in codes.iter_mut().zip(x) {
            if v > half {
                *c = 2;
            } else if v < -half {
                *c = 0;
            }
        }
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_format;
    use crate::test_util::*;

    #[test]
    fn lookup_finds_both_types() {
        assert_eq!(
            block_format(GgmlType::TQ1_0).map(|f| f.ty()),
            Some(GgmlType::TQ1_0)
        );
        assert_eq!(
            block_format(GgmlType::TQ2_0).map(|f| f.ty()),
            Some(GgmlType::TQ2_0)
        );
    }

    #[test]
    fn ternary_input_is_reproduced_exactly() {
        let mut rng = Lcg(7);
        let d = 0.0371f32;
        let d16 = half::f16::from_f32(d).to_f32();
        let x: Vec<f32> = (0..512)
            .map(|_| ((rng.next_u32() % 3) as f32 - 1.0) * d16)
            .collect();
        for ty in [GgmlType::TQ1_0, GgmlType::TQ2_0] {
            let f = block_format(ty).unwrap();
            let mut q = vec![0u8; ty.row_bytes(512).unwrap() as usize];
            f.quantize_row(&x, None, &mut q).unwrap();
            let mut y = vec![0f32; 512];
            f.dequantize_row(&q, &mut y).unwrap();
            assert_eq!(x, y, "{ty}");
        }
    }

    #[test]
    fn optimal_scale_beats_amax_scale() {
        let mut rng = Lcg(11);
        let x: Vec<f32> = (0..QK).map(|_| rng.weight()).collect();
        let mut d = [0u8; 2];
        let codes = quantize_block(&x, None, &mut d);
        let d = crate::float::read_f16(&d);
        let ours: Vec<f32> = codes.iter().map(|&c| (c as f32 - 1.0) * d).collect();
        let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
        let amax = half::f16::from_f32(amax).to_f32();
        let theirs: Vec<f32> = x.iter().map(|v| (v / amax).round() * amax).collect();
        assert!(sse(&x, &ours) < 0.8 * sse(&x, &theirs));
    }

    #[test]
    fn importance_shifts_the_scale_towards_weighted_elements() {
        // Half the block is large, half small: with weight only on the small ones the scale must
        // fit them instead.
        let x: Vec<f32> = (0..QK)
            .map(|i| if i % 2 == 0 { 1.0 } else { 0.01 })
            .collect();
        let w: Vec<f32> = (0..QK)
            .map(|i| if i % 2 == 0 { 0.0 } else { 1.0 })
            .collect();
        let mut d = [0u8; 2];
        quantize_block(&x, Some(&w), &mut d);
        assert!((crate::float::read_f16(&d) - 0.01).abs() < 1e-4);
        quantize_block(&x, None, &mut d);
        assert!(crate::float::read_f16(&d) > 0.4);
    }

    #[test]
    fn zero_and_degenerate_inputs_do_not_panic() {
        let mut d = [0u8; 2];
        let codes = quantize_block(&[0.0; QK], None, &mut d);
        assert!(codes.iter().all(|&c| c == 1));
        assert_eq!(crate::float::read_f16(&d), 0.0);
        let codes = quantize_block(&[1e30; QK], Some(&[0.0; QK]), &mut d);
        assert_eq!(crate::float::read_f16(&d), 65504.0);
        assert!(codes.iter().all(|&c| c == 2));
        let mut x = [0.5f32; QK];
        x[3] = f32::NAN;
        quantize_block(&x, None, &mut d);
    }
}
