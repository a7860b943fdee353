//! Q5_1: 32 elements, f16 scale `d` and offset `m`, 5-bit codes; value = d·code + m.

use crate::grid::{BlockGrid, GroupParams, Levels};
use super::common::{affine_params, set_affine_params, block_codes, rescale_f16, pack_high_bits, pack_nibbles, quantize_affine, unpack5, QK};
use crate::blockwise::impl_block_format;
use crate::float::read_f16;
use crate::search::{deltas, IntLevels, Plan};
use crate::GgmlType;

pub struct Q5_1;

const GRID: IntLevels = IntLevels::new(0, 31);
const PLAN: Plan = Plan {
    anchors: &[],
    deltas: &deltas::AFFINE_FUSED,
    abs_anchor: false,
};

/// With an importance vector: a denser search (llama.cpp's imatrix path searches more too).
const PLAN_IMATRIX: Plan = Plan {
    anchors: &[],
    deltas: &deltas::AFFINE_DENSE,
    abs_anchor: false,
};

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let mut codes = [0u8; QK];
    quantize_affine(
        x,
        imp,
        &GRID,
        if imp.is_some() { &PLAN_IMATRIX } else { &PLAN },
        &deltas::AFFINE_FUSED,
        &mut out[0..4],
        &mut codes,
    );
    pack_high_bits(&codes, &mut out[4..8]);
    pack_nibbles(&codes, &mut out[8..24]);
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b);
    let m = read_f16(&b[2..]);
    let q = unpack5(&b[4..8], &b[8..24]);
    for (o, &c) in y.iter_mut().zip(&q) {
        *o = d * c as f32 + m;
    }
}

impl_block_format!(Q5_1, GgmlType::Q5_1, quantize_block, dequantize_block, grid);

impl BlockGrid for Q5_1 {
    fn group(&self) -> usize {
        QK
    }
    fn levels(&self) -> Levels {
        Levels::Int { lo: 0, hi: 31 }
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        affine_params(b, out);
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        codes[..QK].copy_from_slice(&unpack5(&b[4..8], &b[8..24]));
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        let c = block_codes(codes);
        pack_high_bits(&c, &mut b[4..8]);
        pack_nibbles(&c, &mut b[8..24]);
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        rescale_f16(b, r);
    }
    fn set_params(&self, b: &mut [u8], _j: usize, p: GroupParams) -> bool {
        set_affine_params(b, p)
    }
}
