//! IQ4_XS: 8 sub-blocks of 32 with IQ4_NL's codebook, 6-bit signed sub-scales (low nibbles in
//! `scales_l`, top two bits in the u16 `scales_h`), f16 `d`; value = d·(ls−32)·kvalues[q].

use super::codebook::{grid, KVALUES};
use crate::blockwise::impl_block_format;
use crate::float::read_f16;
use crate::kquants::superblock::{no_reference, quantize_symmetric, super_plan};
use crate::search::{deltas, IntLevels, Plan};
use crate::blockwise::store_f16;
use crate::grid::{BlockGrid, GroupParams, Levels};
use crate::GgmlType;

pub struct IQ4_XS;

const SC_GRID: IntLevels = IntLevels::new(-32, 31);
const PLAN: Plan = Plan {
    anchors: &[-127.0, 113.0],
    deltas: &deltas::CODEBOOK,
    abs_anchor: false,
};
const SC_PLAN: Plan = super_plan(&[-32.0]);

#[inline(always)]
fn quantize_block(x: &[f32], imp: Option<&[f32]>, out: &mut [u8]) {
    let (d_out, rest) = out.split_at_mut(2);
    let r = quantize_symmetric(
        x,
        imp,
        32,
        &grid(),
        &PLAN,
        &SC_GRID,
        &SC_PLAN,
        d_out,
        no_reference,
    );
    let (sh, rest) = rest.split_at_mut(2);
    let (sl, qs) = rest.split_at_mut(4);
    let mut h = 0u16;
    sl.fill(0);
    for ib in 0..8 {
        let l = r.sc[ib];
        sl[ib / 2] |= (l & 0xF) << (4 * (ib % 2));
        h |= ((l >> 4) as u16 & 3) << (2 * ib);
        for j in 0..16 {
            qs[16 * ib + j] = r.q[32 * ib + j] | (r.q[32 * ib + 16 + j] << 4);
        }
    }
    sh.copy_from_slice(&h.to_le_bytes());
}

#[inline(always)]
fn dequantize_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b);
    let h = u16::from_le_bytes([b[2], b[3]]);
    let (sl, qs) = (&b[4..8], &b[8..136]);
    for ib in 0..8 {
        let ls =
            ((sl[ib / 2] >> (4 * (ib % 2))) & 0xF) as i32 | ((((h >> (2 * ib)) & 3) as i32) << 4);
        let dl = d * (ls - 32) as f32;
        for j in 0..16 {
            let q = qs[16 * ib + j];
            y[32 * ib + j] = dl * KVALUES[(q & 15) as usize] as f32;
            y[32 * ib + 16 + j] = dl * KVALUES[(q >> 4) as usize] as f32;
        }
    }
}

impl_block_format!(IQ4_XS, GgmlType::IQ4_XS, quantize_block, dequantize_block, grid);

impl BlockGrid for IQ4_XS {
    fn group(&self) -> usize {
        32
    }
    fn levels(&self) -> Levels {
        Levels::Iq4
    }
    fn params(&self, b: &[u8], out: &mut [GroupParams]) {
        let d = read_f16(b);
        let h = u16::from_le_bytes([b[2], b[3]]);
        let sl = &b[4..8];
        for (ib, p) in out.iter_mut().enumerate().take(8) {
            let ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 0xF) as i32
                | ((((h >> (2 * ib)) & 3) as i32) << 4);
            *p = GroupParams {
                scale: d * (ls - 32) as f32,
                ..Default::default()
            };
        }
    }
    fn read_codes(&self, b: &[u8], codes: &mut [u8]) {
        let qs = &b[8..136];
        for ib in 0..8 {
            for j in 0..16 {
                let q = qs[16 * ib + j];
                codes[32 * ib + j] = q & 15;
                codes[32 * ib + 16 + j] = q >> 4;
            }
        }
    }
    fn write_codes(&self, b: &mut [u8], codes: &[u8]) {
        let qs = &mut b[8..136];
        for ib in 0..8 {
            for j in 0..16 {
                qs[16 * ib + j] = (codes[32 * ib + j] & 15) | (codes[32 * ib + 16 + j] << 4);
            }
        }
    }
    fn rescale(&self, b: &mut [u8], r: f32) {
        let d = read_f16(b);
        store_f16(&mut b[0..2], d * r);
    }
}
