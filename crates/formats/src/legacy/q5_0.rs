//! Q5_0: 32 elements, f16 scale `d`, 5-bit codes (4 low bits in nibbles, fifth bits in a u32);
//! value = d·(code − 16).

use crate::grid::{BlockGrid, GroupParams, Levels};
use super::common::{scale_params, block_codes, rescale_f16, pack_high_bits, pack_nibbles, quantize_scaled, unpack5, QK};
use crate::blockwise::impl_block_format;
use crate::float::read_f16;
use crate::search::{deltas, IntLevels, Plan};
use crate::GgmlType;

pub struct Q5_0;

const GRID: IntLevels = IntLevels::new(-16, 15);
const PLAN: Plan = Plan {
    anchors: &[-16.0, 15.0],
    deltas: &deltas::NARROW,
    abs_anchor: false,
};

/// With an importance vector: a denser search (llama.cpp's imatrix path searches more too).
const PLAN_IMATRIX: Plan = Plan {
    anchors: &[-16.0, 15.0],
    deltas: &deltas::WIDE,
    abs_anchor: false,
};

/// Searched mappings of the extreme element without importance (llama.cpp's first).
const FUSED: [f32; 6] = [-16.0, -16.5, -15.5, -15.0, 15.0, 14.5];

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let mut codes = [0u8; QK];
    quantize_scaled(
        x,
        imp,
        &GRID,
        if imp.is_some() { &PLAN_IMATRIX } else { &PLAN },
        &FUSED,
        &mut out[0..2],
        &mut codes,
    );
    pack_high_bits(&codes, &mut out[2..6]);
    pack_nibbles(&codes, &mut out[6..22]);
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b);
    let q = unpack5(&b[2..6], &b[6..22]);
    for (o, &c) in y.iter_mut().zip(&q) {
        *o = (c as i32 - 16) as f32 * d;
    }
}

impl_block_format!(Q5_0, GgmlType::Q5_0, quantize_block, dequantize_block, grid);

impl BlockGrid for Q5_0 {
    fn group(&self) -> usize {
        QK
    }
    fn levels(&self) -> Levels {
        Levels::Int { lo: -16, hi: 15 }
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        scale_params(b, out);
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        codes[..QK].copy_from_slice(&unpack5(&b[2..6], &b[6..22]));
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        let c = block_codes(codes);
        pack_high_bits(&c, &mut b[2..6]);
        pack_nibbles(&c, &mut b[6..22]);
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        rescale_f16(b, r);
    }
}
