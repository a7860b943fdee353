//! Q8_1: 32 elements, f16 scale `d`, f16 `s = d·Σcode` (precomputed for dot products against
//! offset formats), int8 codes; value = d·code. 36 bytes as ggml lays it out today.

use super::common::{scale_params, rescale_f16, QK};
use super::q8_0::{quantize_codes, read_int8_codes, write_int8_codes};
use crate::grid::{BlockGrid, GroupParams, Levels};
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

impl_block_format!(Q8_1, GgmlType::Q8_1, quantize_block, dequantize_block, grid);

impl BlockGrid for Q8_1 {
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
        read_int8_codes(&b[4..36], codes);
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        let sum = write_int8_codes(&mut b[4..36], codes);
        let d = read_f16(b);
        store_f16(&mut b[2..4], d * sum as f32);
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        rescale_f16(b, r);
        // s = d·Σcode follows d.
        let mut codes = [0u8; QK];
        read_int8_codes(&b[4..36], &mut codes);
        self.write_codes(b, &codes);
    }
}
