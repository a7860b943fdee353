//! Q2_K: 16 sub-blocks of 16, 2-bit codes, 4-bit scale and min per sub-block (one byte each:
//! scale low, min high), f16 `d` and `dmin`; value = d·sc·q − dmin·m.

use super::superblock::{quantize_affine, rescale_f16_at, sub_code, super_plan, Quantized, QK_K};
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::blockwise::impl_block_format;
use crate::float::read_f16;
use crate::search::{deltas, IntLevels, Plan};
use crate::GgmlType;

pub struct Q2_K;

const GRID: IntLevels = IntLevels::new(0, 3);
const SC_GRID: IntLevels = IntLevels::new(0, 15);
const PLAN: Plan = Plan {
    anchors: &[],
    deltas: &deltas::AFFINE_2BIT,
    abs_anchor: false,
};

/// ggml maps the largest sub-scale (and min) onto the top code.
const SC_PLAN: Plan = super_plan(&[15.0]);

/// With an importance vector: a denser search (llama.cpp's imatrix path searches more too).
const PLAN_IMATRIX: Plan = Plan {
    anchors: &[],
    deltas: &deltas::AFFINE_2BIT_DENSE,
    abs_anchor: false,
};

/// llama.cpp's imatrix choice as a finalist (on some blocks its span sweep wins).
fn reference(x: &[f32], imp: Option<&[f32]>) -> Option<Quantized> {
    imp.map(|imp| super::reference::q2_k_importance(x, imp))
}

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let (body, tail) = out.split_at_mut(80);
    let (d_out, dmin_out) = tail.split_at_mut(2);
    let r = quantize_affine(
        x,
        imp,
        16,
        &GRID,
        if imp.is_some() { &PLAN_IMATRIX } else { &PLAN },
        &SC_GRID,
        &SC_PLAN,
        d_out,
        dmin_out,
        reference,
    );
    for j in 0..16 {
        body[j] = r.sc[j] | (r.mc[j] << 4);
    }
    // Element 128n + 32k + l sits in byte 32n + l at bits 2k.
    let qs = &mut body[16..80];
    for n in 0..2 {
        for l in 0..32 {
            let e = 128 * n + l;
            qs[32 * n + l] = r.q[e] | (r.q[e + 32] << 2) | (r.q[e + 64] << 4) | (r.q[e + 96] << 6);
        }
    }
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(&b[80..]);
    let dmin = read_f16(&b[82..]);
    let qs = &b[16..80];
    for e in 0..QK_K {
        let sc = b[e / 16];
        let dl = d * (sc & 0xF) as f32;
        let ml = dmin * (sc >> 4) as f32;
        let q = (qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
        y[e] = dl * q as f32 - ml;
    }
}

impl_block_format!(Q2_K, GgmlType::Q2_K, quantize_block, dequantize_block, grid);

/// Element 128n + 32k + l: byte 16 + 32n + l, bits 2k.
#[inline]
fn q2_place(e: usize) -> (usize, usize) {
    (16 + 32 * (e / 128) + e % 32, 2 * ((e / 32) % 4))
}

impl BlockGrid for Q2_K {
    fn group(&self) -> usize {
        16
    }
    fn levels(&self) -> Levels {
        Levels::Int { lo: 0, hi: 3 }
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        let (d, dmin) = (read_f16(&b[80..]), read_f16(&b[82..]));
        for (j, p) in out.iter_mut().enumerate().take(16) {
            let sc = b[j];
            *p = GroupParams {
                scale: d * (sc & 0xF) as f32,
                offset: -(dmin * (sc >> 4) as f32),
                zero: 0.0,
            };
        }
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        for (e, c) in codes.iter_mut().enumerate().take(QK_K) {
            let (byte, shift) = q2_place(e);
            *c = (b[byte] >> shift) & 3;
        }
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        b[16..80].fill(0);
        for (e, &c) in codes.iter().enumerate().take(QK_K) {
            let (byte, shift) = q2_place(e);
            b[byte] |= (c & 3) << shift;
        }
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        rescale_f16_at(b, 80, r);
    }
    fn set_params(&self, b: &mut [u8], j: usize, p: GroupParams) -> bool {
        let (d, dmin) = (read_f16(&b[80..]), read_f16(&b[82..]));
        b[j] = sub_code(p.scale, d, 15) | (sub_code(-p.offset, dmin, 15) << 4);
        true
    }
}
