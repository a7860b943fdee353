//! Q6_K: 16 sub-blocks of 16, 6-bit signed codes (low nibbles in `ql`, top two bits in `qh`),
//! int8 sub-scales, f16 `d`; value = d·sc·(q−32).

use super::superblock::{quantize_symmetric, rescale_f16_at, super_plan, Quantized, QK_K};
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::blockwise::impl_block_format;
use crate::float::read_f16;
use crate::search::{deltas, IntLevels, Plan};
use crate::GgmlType;

pub struct Q6_K;

const GRID: IntLevels = IntLevels::new(-32, 31);
/// Without importance, half the density.
const PLAN_PLAIN: Plan = Plan {
    anchors: &[-32.0],
    deltas: &deltas::WIDE_HALF,
    abs_anchor: false,
};
const SC_GRID: IntLevels = IntLevels::new(-128, 127);
const PLAN: Plan = Plan {
    anchors: &[-32.0],
    deltas: &deltas::WIDE,
    abs_anchor: false,
};
const SC_PLAN: Plan = super_plan(&[-128.0]);

/// Element e of a 128-chunk n: (ql byte, shift) for its low nibble and qh bit offset.
#[inline]
fn place(e: usize) -> (usize, u32, usize, u32) {
    let (n, r) = (e / 128, e % 128);
    let (k, l) = (r / 32, r % 32);
    (
        64 * n + l + 32 * (k % 2),
        4 * (k as u32 / 2),
        32 * n + l,
        2 * k as u32,
    )
}

/// llama.cpp's imatrix choice as a finalist (on some blocks its fit wins).
fn reference(x: &[f32], imp: Option<&[f32]>) -> Option<Quantized> {
    imp.map(|imp| super::reference::q6_k_importance(x, imp))
}

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let (body, d_out) = out.split_at_mut(208);
    let r = quantize_symmetric(
        x,
        imp,
        16,
        &GRID,
        if imp.is_some() { &PLAN } else { &PLAN_PLAIN },
        &SC_GRID,
        &SC_PLAN,
        d_out,
        reference,
    );
    let (ql, rest) = body.split_at_mut(128);
    let (qh, scales) = rest.split_at_mut(64);
    ql.fill(0);
    qh.fill(0);
    for e in 0..QK_K {
        let q = r.q[e];
        let (lb, ls, hb, hs) = place(e);
        ql[lb] |= (q & 0xF) << ls;
        qh[hb] |= (q >> 4) << hs;
    }
    for j in 0..16 {
        scales[j] = (r.sc[j] as i32 - 128) as i8 as u8;
    }
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(&b[208..]);
    let (ql, qh, scales) = (&b[0..128], &b[128..192], &b[192..208]);
    // The layout of `place`, walked in its natural order (32 elements of each quarter at once)
    // so the loop vectorises: the pipeline dequantizes every row it writes.
    for n in 0..2 {
        let (ql, qh, y) = (
            &ql[64 * n..64 * n + 64],
            &qh[32 * n..32 * n + 32],
            &mut y[128 * n..],
        );
        for l in 0..32 {
            let (a, c, h) = (ql[l], ql[l + 32], qh[l]);
            let q = [
                (a & 0xF) | ((h & 3) << 4),
                (c & 0xF) | (((h >> 2) & 3) << 4),
                (a >> 4) | (((h >> 4) & 3) << 4),
                (c >> 4) | (((h >> 6) & 3) << 4),
            ];
            for (k, &q) in q.iter().enumerate() {
                let sc = scales[8 * n + 2 * k + l / 16] as i8;
                y[32 * k + l] = d * sc as f32 * (q as i32 - 32) as f32;
            }
        }
    }
}

impl_block_format!(Q6_K, GgmlType::Q6_K, quantize_block, dequantize_block, grid);

impl BlockGrid for Q6_K {
    fn group(&self) -> usize {
        16
    }
    fn levels(&self) -> Levels {
        Levels::Int { lo: -32, hi: 31 }
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        let d = read_f16(&b[208..]);
        for (j, p) in out.iter_mut().enumerate().take(16) {
            *p = GroupParams {
                scale: d * (b[192 + j] as i8) as f32,
                ..Default::default()
            };
        }
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        for (e, c) in codes.iter_mut().enumerate().take(QK_K) {
            let (lb, ls, hb, hs) = place(e);
            *c = ((b[lb] >> ls) & 0xF) | (((b[128 + hb] >> hs) & 3) << 4);
        }
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        let (ql, rest) = b.split_at_mut(128);
        let qh = &mut rest[..64];
        ql.fill(0);
        qh.fill(0);
        for (e, &q) in codes.iter().enumerate().take(QK_K) {
            let (lb, ls, hb, hs) = place(e);
            ql[lb] |= (q & 0xF) << ls;
            qh[hb] |= (q >> 4) << hs;
        }
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        rescale_f16_at(b, 208, r);
    }
}
