//! Q3_K: 16 sub-blocks of 16, 3-bit signed codes (2 low bits in `qs`, the high bit in `hmask`),
//! 6-bit signed sub-scales packed in 12 bytes, f16 `d`; value = d·(sc−32)·(q−4).

use super::superblock::{no_reference, quantize_symmetric, rescale_f16_at, super_plan, QK_K};
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::blockwise::impl_block_format;
use crate::float::read_f16;
use crate::search::{deltas, IntLevels, Plan};
use crate::GgmlType;

pub struct Q3_K;

const GRID: IntLevels = IntLevels::new(-4, 3);
const SC_GRID: IntLevels = IntLevels::new(-32, 31);
/// Both ends of the 3-bit grid: with only 8 levels the choice matters.
const PLAN: Plan = Plan {
    anchors: &[-4.0, 3.0],
    deltas: &deltas::WIDE,
    abs_anchor: false,
};
const SC_PLAN: Plan = super_plan(&[-32.0]);

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let (body, d_out) = out.split_at_mut(108);
    let r = quantize_symmetric(
        x,
        imp,
        16,
        &GRID,
        &PLAN,
        &SC_GRID,
        &SC_PLAN,
        d_out,
        no_reference,
    );
    let (hmask, rest) = body.split_at_mut(32);
    let (qs, scales) = rest.split_at_mut(64);
    hmask.fill(0);
    qs.fill(0);
    scales.fill(0);
    for e in 0..QK_K {
        let q = r.q[e];
        // Element e: low bits in byte 32·(e/128) + e%32 at bits 2·((e/32)%4); high bit in
        // hmask[e%32] at bit e/32.
        qs[32 * (e / 128) + e % 32] |= (q & 3) << (2 * ((e / 32) % 4));
        hmask[e % 32] |= ((q >> 2) & 1) << (e / 32);
    }
    for j in 0..16 {
        let l = r.sc[j];
        if j < 8 {
            scales[j] |= l & 0xF;
        } else {
            scales[j - 8] |= (l & 0xF) << 4;
        }
        scales[8 + j % 4] |= (l >> 4) << (2 * (j / 4));
    }
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(&b[108..]);
    let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
    let mut dl = [0f32; 16];
    for (j, o) in dl.iter_mut().enumerate() {
        let low = if j < 8 {
            scales[j] & 0xF
        } else {
            scales[j - 8] >> 4
        };
        let sc = low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
        *o = d * (sc as i32 - 32) as f32;
    }
    for e in 0..QK_K {
        let low = (qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
        let high = (hmask[e % 32] >> (e / 32)) & 1;
        let q = low as i32 - if high == 1 { 0 } else { 4 };
        y[e] = dl[e / 16] * q as f32;
    }
}

impl_block_format!(Q3_K, GgmlType::Q3_K, quantize_block, dequantize_block, grid);

impl BlockGrid for Q3_K {
    fn group(&self) -> usize {
        16
    }
    fn levels(&self) -> Levels {
        Levels::Int { lo: -4, hi: 3 }
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        let d = read_f16(&b[108..]);
        let scales = &b[96..108];
        for (j, p) in out.iter_mut().enumerate().take(16) {
            let low = if j < 8 {
                scales[j] & 0xF
            } else {
                scales[j - 8] >> 4
            };
            let sc = low | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4);
            *p = GroupParams {
                scale: d * (sc as i32 - 32) as f32,
                ..Default::default()
            };
        }
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        let (hmask, qs) = (&b[0..32], &b[32..96]);
        for (e, c) in codes.iter_mut().enumerate().take(QK_K) {
            let low = (qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
            let high = (hmask[e % 32] >> (e / 32)) & 1;
            *c = low | (high << 2);
        }
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        let (hmask, rest) = b.split_at_mut(32);
        let qs = &mut rest[..64];
        hmask.fill(0);
        qs.fill(0);
        for (e, &q) in codes.iter().enumerate().take(QK_K) {
            qs[32 * (e / 128) + e % 32] |= (q & 3) << (2 * ((e / 32) % 4));
            hmask[e % 32] |= ((q >> 2) & 1) << (e / 32);
        }
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        rescale_f16_at(b, 108, r);
    }
}
