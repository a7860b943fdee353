//! Q4_0: 32 elements, f16 scale `d`, 4-bit codes; value = d·(code − 8).

use super::common::{scale_params, block_codes, pack_nibbles, quantize_scaled, rescale_f16, unpack_nibbles, QK};
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::blockwise::impl_block_format;
use crate::float::read_f16;
use crate::search::{deltas, IntLevels, Plan};
use crate::GgmlType;

pub struct Q4_0;

const GRID: IntLevels = IntLevels::new(-8, 7);
/// Both ends of the asymmetric grid: the extreme element may sit better on +7 than on −8.
const PLAN: Plan = Plan {
    anchors: &[-8.0, 7.0],
    deltas: &deltas::NARROW,
    abs_anchor: false,
};

/// With an importance vector: a denser search (llama.cpp's imatrix path searches more too).
const PLAN_IMATRIX: Plan = Plan {
    anchors: &[-8.0, 7.0],
    deltas: &deltas::WIDE,
    abs_anchor: false,
};

/// Searched mappings of the extreme element without importance (llama.cpp's first).
const FUSED: [f32; 6] = [-8.0, -8.5, -7.5, -7.0, 7.0, 6.5];

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
    pack_nibbles(&codes, &mut out[2..18]);
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b);
    for j in 0..QK / 2 {
        let q = b[2 + j];
        y[j] = ((q & 15) as i32 - 8) as f32 * d;
        y[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
    }
}

impl_block_format!(Q4_0, GgmlType::Q4_0, quantize_block, dequantize_block, grid);

impl BlockGrid for Q4_0 {
    fn group(&self) -> usize {
        QK
    }
    fn levels(&self) -> Levels {
        Levels::Int { lo: -8, hi: 7 }
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        scale_params(b, out);
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        unpack_nibbles(&b[2..18], codes);
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        pack_nibbles(&block_codes(codes), &mut b[2..18]);
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        rescale_f16(b, r);
    }
}
