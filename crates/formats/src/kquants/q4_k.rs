//! Q4_K: 8 sub-blocks of 32, 4-bit codes, 6-bit scale and min per sub-block, f16 `d`, `dmin`;
//! value = d·sc·q − dmin·m.

use super::scales6;
use super::superblock::{quantize_affine, rescale_f16_at, sub_code, super_plan, Quantized};
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::blockwise::impl_block_format;
use crate::float::read_f16;
use crate::search::{deltas, IntLevels, Plan};
use crate::GgmlType;

pub struct Q4_K;

const GRID: IntLevels = IntLevels::new(0, 15);
/// Without importance, half the density (the super-level fit dominates the error there).
const PLAN_PLAIN: Plan = Plan {
    anchors: &[],
    deltas: &deltas::AFFINE_HALF,
    abs_anchor: false,
};
const SC_GRID: IntLevels = IntLevels::new(0, 63);
const PLAN: Plan = Plan {
    anchors: &[],
    deltas: &deltas::AFFINE,
    abs_anchor: false,
};

/// ggml maps the largest sub-scale (and min) onto the top code.
const SC_PLAN: Plan = super_plan(&[63.0]);

/// llama.cpp's plain choice as a finalist: data dequantized from a Q4_K file is only recovered
/// by the sub-scales its search finds.
fn reference(x: &[f32], imp: Option<&[f32]>) -> Option<Quantized> {
    match imp {
        None => Some(super::reference::q4_k_plain(x)),
        Some(_) => None,
    }
}

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let (head, rest) = out.split_at_mut(4);
    let (d_out, dmin_out) = head.split_at_mut(2);
    let r = quantize_affine(
        x,
        imp,
        32,
        &GRID,
        if imp.is_some() { &PLAN } else { &PLAN_PLAIN },
        &SC_GRID,
        &SC_PLAN,
        d_out,
        dmin_out,
        reference,
    );
    let (scales, qs) = rest.split_at_mut(12);
    scales6::pack(&r.sc, &r.mc, scales);
    // Chunk c of 64 elements: low nibbles hold elements 64c..64c+32, high nibbles the next 32.
    for c in 0..4 {
        for l in 0..32 {
            qs[32 * c + l] = r.q[64 * c + l] | (r.q[64 * c + 32 + l] << 4);
        }
    }
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b);
    let dmin = read_f16(&b[2..]);
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for j in 0..8 {
        let (sc, m) = scales6::get(scales, j);
        let (dl, ml) = (d * sc as f32, dmin * m as f32);
        let shift = 4 * (j % 2);
        for l in 0..32 {
            let q = (qs[32 * (j / 2) + l] >> shift) & 0xF;
            y[32 * j + l] = dl * q as f32 - ml;
        }
    }
}

impl_block_format!(Q4_K, GgmlType::Q4_K, quantize_block, dequantize_block, grid);

impl BlockGrid for Q4_K {
    fn group(&self) -> usize {
        32
    }
    fn levels(&self) -> Levels {
        Levels::Int { lo: 0, hi: 15 }
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        scales6::params(b, out);
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        let qs = &b[16..144];
        for c in 0..4 {
            for l in 0..32 {
                let q = qs[32 * c + l];
                codes[64 * c + l] = q & 0xF;
                codes[64 * c + 32 + l] = q >> 4;
            }
        }
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        let qs = &mut b[16..144];
        for c in 0..4 {
            for l in 0..32 {
                qs[32 * c + l] = (codes[64 * c + l] & 0xF) | (codes[64 * c + 32 + l] << 4);
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
