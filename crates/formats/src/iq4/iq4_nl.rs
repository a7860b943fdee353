//! IQ4_NL: 32 elements, f16 scale, 4-bit indices into the non-linear codebook; value =
//! d·kvalues[q]. Nibble layout as Q4_0.

use super::codebook::{grid, KVALUES};
use crate::blockwise::{impl_block_format, store_f16};
use crate::float::read_f16;
use crate::search::{assign, deltas, fit, normaliser, weights, Offset, Plan};
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::GgmlType;

pub struct IQ4_NL;

/// The extreme element on either end of the (asymmetric) codebook; ggml uses only −127.
const PLAN: Plan = Plan {
    anchors: &[-127.0, 113.0],
    deltas: &deltas::CODEBOOK,
    abs_anchor: false,
};

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let g = grid();
    let mut codes = [0u8; 32];
    let p = normaliser(x);
    let d = if p == 0.0 {
        0.0
    } else {
        let mut xn = [0f32; 32];
        let mut w = [0f32; 32];
        for (o, &v) in xn.iter_mut().zip(x) {
            *o = v * p;
        }
        weights(&xn, imp, &mut w);
        fit(&xn, &w, &g, Offset::None, &PLAN).scale / p
    };
    let d = store_f16(&mut out[0..2], d);
    assign(x, d, 0.0, &g, &mut codes);
    for j in 0..16 {
        out[2 + j] = codes[j] | (codes[j + 16] << 4);
    }
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b);
    for j in 0..16 {
        let q = b[2 + j];
        y[j] = d * KVALUES[(q & 15) as usize] as f32;
        y[j + 16] = d * KVALUES[(q >> 4) as usize] as f32;
    }
}

impl_block_format!(IQ4_NL, GgmlType::IQ4_NL, quantize_block, dequantize_block, grid);

impl BlockGrid for IQ4_NL {
    fn group(&self) -> usize {
        32
    }
    fn levels(&self) -> Levels {
        Levels::Iq4
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        out[0] = GroupParams {
            scale: read_f16(b),
            ..Default::default()
        };
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        for j in 0..16 {
            codes[j] = b[2 + j] & 15;
            codes[j + 16] = b[2 + j] >> 4;
        }
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        for j in 0..16 {
            b[2 + j] = (codes[j] & 15) | (codes[j + 16] << 4);
        }
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        let d = read_f16(b);
        store_f16(&mut b[0..2], d * r);
    }
}
