//! Q5_K: 8 sub-blocks of 32, 5-bit codes (low nibbles in `qs`, fifth bits in `qh`), 6-bit scale
//! and min per sub-block, f16 `d`, `dmin`; value = d·sc·q − dmin·m.

use super::scales6;
use super::superblock::{no_reference, quantize_affine, rescale_f16_at, sub_code, super_plan};
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::blockwise::impl_block_format;
use crate::float::read_f16;
use crate::search::{deltas, IntLevels, Plan};
use crate::GgmlType;

pub struct Q5_K;

const GRID: IntLevels = IntLevels::new(0, 31);
const SC_GRID: IntLevels = IntLevels::new(0, 63);
const PLAN: Plan = Plan {
    anchors: &[],
    deltas: &deltas::AFFINE,
    abs_anchor: false,
};

/// ggml maps the largest sub-scale (and min) onto the top code.
const SC_PLAN: Plan = super_plan(&[63.0]);

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let (head, rest) = out.split_at_mut(4);
    let (d_out, dmin_out) = head.split_at_mut(2);
    let r = quantize_affine(
        x,
        imp,
        32,
        &GRID,
        &PLAN,
        &SC_GRID,
        &SC_PLAN,
        d_out,
        dmin_out,
        no_reference,
    );
    let (scales, rest) = rest.split_at_mut(12);
    let (qh, qs) = rest.split_at_mut(32);
    scales6::pack(&r.sc, &r.mc, scales);
    qh.fill(0);
    // Sub-block j: nibble (j%2) of qs[32·(j/2) + l], fifth bit at qh[l] bit j.
    for j in 0..8 {
        for l in 0..32 {
            let q = r.q[32 * j + l];
            if j % 2 == 0 {
                qs[32 * (j / 2) + l] = q & 0xF;
            } else {
                qs[32 * (j / 2) + l] |= (q & 0xF) << 4;
            }
            qh[l] |= (q >> 4) << j;
        }
    }
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b);
    let dmin = read_f16(&b[2..]);
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for j in 0..8 {
        let (sc, m) = scales6::get(scales, j);
        let (dl, ml) = (d * sc as f32, dmin * m as f32);
        let shift = 4 * (j % 2);
        for l in 0..32 {
            let q = ((qs[32 * (j / 2) + l] >> shift) & 0xF) | (((qh[l] >> j) & 1) << 4);
            y[32 * j + l] = dl * q as f32 - ml;
        }
    }
}

impl_block_format!(Q5_K, GgmlType::Q5_K, quantize_block, dequantize_block, grid);

impl BlockGrid for Q5_K {
    fn group(&self) -> usize {
        32
    }
    fn levels(&self) -> Levels {
        Levels::Int { lo: 0, hi: 31 }
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        scales6::params(b, out);
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        let (qh, qs) = (&b[16..48], &b[48..176]);
        for j in 0..8 {
            let shift = 4 * (j % 2);
            for l in 0..32 {
                codes[32 * j + l] =
                    ((qs[32 * (j / 2) + l] >> shift) & 0xF) | (((qh[l] >> j) & 1) << 4);
            }
        }
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        let (qh, qs) = b[16..176].split_at_mut(32);
        qh.fill(0);
        for j in 0..8 {
            for l in 0..32 {
                let q = codes[32 * j + l];
                if j % 2 == 0 {
                    qs[32 * (j / 2) + l] = q & 0xF;
                } else {
                    qs[32 * (j / 2) + l] |= (q & 0xF) << 4;
                }
                qh[l] |= (q >> 4) << j;
            }
        }
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        rescale_f16_at(b, 0, r);
    }
    fn set_params(&self, b: &mut [u8], j: usize, p: GroupParams) -> bool {
        scales6::set(b, j, p, sub_code);
        true
    }
}
