//! Q8_1: 32 elements, f16 scale `d`, f16 `s = d·Σcode` (precomputed for dot products against
//! offset formats), int8 codes; value = d·code. 36 bytes as ggml lays it out today.

use super::q8_0::quantize_codes;
use crate::blockwise::{impl_block_format, store_f16};
use crate::float::read_f16;
use crate::GgmlType;

pub struct Q8_1;

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let (head, qs) = out.split_at_mut(4);
    let (d, sum) = quantize_codes(x, imp, &mut head[0..2], qs);
    // s from the stored d, so it is exactly what a reader summing d·code would expect.
    store_f16(&mut head[2..4], d * sum as f32);
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b);
    for (o, &q) in y.iter_mut().zip(&b[4..36]) {
        *o = (q as i8) as f32 * d;
    }
}

impl_block_format!(Q8_1, GgmlType::Q8_1, quantize_block, dequantize_block);
