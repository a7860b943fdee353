//! Q8_0: 32 elements, f16 scale `d`, int8 codes; value = d·code.

use super::common::{scale_params, quantize_scaled, rescale_f16, QK};
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::blockwise::impl_block_format;
use crate::float::read_f16;
use crate::search::{deltas, IntLevels, Plan};
use crate::GgmlType;

pub struct Q8_0;

/// ±127 like ggml: −128 is never produced, which keeps the grid symmetric.
pub(super) const GRID: IntLevels = IntLevels::new(-127, 127);
/// At 8 bits perturbing the anchor buys nothing measurable; the refit alone helps. Positive
/// scale as ggml writes it, so requantizing reproduces the same bytes.
pub(super) const PLAN: Plan = Plan {
    anchors: &[127.0],
    deltas: &deltas::NONE,
    abs_anchor: true,
};

/// The refit of llama.cpp's mapping (the only one searched without importance).
const FUSED: [f32; 1] = [127.0];

/// Codes as stored int8 bytes.
#[inline(always)]
pub(super) fn quantize_codes(
    x: &[f32],
    imp: Option<&[f32]>,
    d_out: &mut [u8],
    qs: &mut [u8],
) -> (f32, i32) {
    let mut codes = [0u8; QK];
    let d = quantize_scaled(x, imp, &GRID, &PLAN, &FUSED, d_out, &mut codes);
    let mut sum = 0i32;
    for (o, &c) in qs.iter_mut().zip(&codes) {
        let v = c as i32 - 127;
        sum += v;
        *o = v as i8 as u8;
    }
    (d, sum)
}

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let (d_out, qs) = out.split_at_mut(2);
    quantize_codes(x, imp, d_out, qs);
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b);
    for (o, &q) in y.iter_mut().zip(&b[2..34]) {
        *o = (q as i8) as f32 * d;
    }
}

impl_block_format!(Q8_0, GgmlType::Q8_0, quantize_block, dequantize_block, grid);

/// Stored int8 ↔ code (level + 127); a foreign −128 reads as −127, the nearest level lowbit writes.
#[inline]
pub(super) fn read_int8_codes(qs: &[u8], codes: &mut [u8]) {
    for (c, &q) in codes.iter_mut().zip(qs) {
        *c = ((q as i8).max(-127) as i32 + 127) as u8;
    }
}

/// Writes codes as int8; returns their sum (Q8_1 stores it).
#[inline]
pub(super) fn write_int8_codes(qs: &mut [u8], codes: &[u8]) -> i32 {
    let mut sum = 0;
    for (q, &c) in qs.iter_mut().zip(codes) {
        let v = c as i32 - 127;
        sum += v;
        *q = v as i8 as u8;
    }
    sum
}

impl BlockGrid for Q8_0 {
    fn group(&self) -> usize {
        QK
    }
    fn levels(&self) -> Levels {
        Levels::Int { lo: -127, hi: 127 }
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        scale_params(b, out);
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        read_int8_codes(&b[2..34], codes);
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        write_int8_codes(&mut b[2..34], codes);
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        rescale_f16(b, r);
    }
}
