//! Q8_K: one f32 scale per 256 elements, int8 codes and 16 int16 sums of 16 codes each (ggml's
//! activation format for k-quant dot products); value = d·q.

use crate::blockwise::impl_block_format;
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::search::{assign, deltas, fit, normaliser, weights, IntLevels, Offset, Plan};
use crate::GgmlType;

pub struct Q8_K;

/// ±127: ggml avoids −128 so its SIMD kernels can negate codes.
const GRID: IntLevels = IntLevels::new(-127, 127);
const PLAN: Plan = Plan {
    anchors: &[-127.0],
    deltas: &deltas::NONE,
    abs_anchor: false,
};

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let mut codes = [0u8; 256];
    let p = normaliser(x);
    let d = if p == 0.0 {
        0.0
    } else {
        let mut xn = [0f32; 256];
        let mut w = [0f32; 256];
        for (o, &v) in xn.iter_mut().zip(x) {
            *o = v * p;
        }
        weights(&xn, imp, &mut w);
        let s = fit(&xn, &w, &GRID, Offset::None, &PLAN).scale / p;
        if s.is_finite() {
            s
        } else {
            f32::MAX.copysign(s)
        }
    };
    assign(x, d, 0.0, &GRID, &mut codes);
    if p == 0.0 {
        codes = [127; 256];
    }
    out[..4].copy_from_slice(&d.to_le_bytes());
    Q8_K.write_codes(out, &codes);
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for (o, &q) in y.iter_mut().zip(&b[4..260]) {
        *o = d * (q as i8) as f32;
    }
}

impl_block_format!(Q8_K, GgmlType::Q8_K, quantize_block, dequantize_block, grid);

impl BlockGrid for Q8_K {
    fn group(&self) -> usize {
        256
    }
    fn levels(&self) -> Levels {
        Levels::Int { lo: -127, hi: 127 }
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        out[0] = GroupParams {
            scale: f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            ..Default::default()
        };
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        for (c, &q) in codes.iter_mut().zip(&b[4..260]) {
            *c = ((q as i8).max(-127) as i32 + 127) as u8;
        }
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        let (qs, bsums) = b[4..].split_at_mut(256);
        for (j, sum) in bsums[..32].chunks_exact_mut(2).enumerate() {
            let mut s = 0i16;
            for (k, &c) in codes[16 * j..16 * j + 16].iter().enumerate() {
                let q = c as i16 - 127;
                qs[16 * j + k] = q as i8 as u8;
                s += q;
            }
            sum.copy_from_slice(&s.to_le_bytes());
        }
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * r;
        b[..4].copy_from_slice(&d.to_le_bytes());
    }
}
