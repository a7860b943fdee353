//! IQ1_S, 1.56 bpw: 50-byte blocks of 256.
//!
//! Layout: `d: f16`, `qs: [u8; 32]` (low 8 bits of one [`IQ1S_GRID`] index per 8 elements),
//! `qh: [u16; 8]`, one per 32 elements: bits 0..12 are the four 3-bit high index bits, bits
//! 12..15 a scale `s`, bit 15 the sign of the shift `delta`.
//! Element = `d * (2s + 1) * (grid value + delta)`, grid values in {-1, 0, 1}.

use super::grids::{IQ1S_GRID, IQ1_DELTA};
use super::{put8_shifted, u16_at};
use crate::float::read_f16;
use crate::GgmlType;

pub struct Iq1S;

const BYTES: usize = 50;

#[inline(always)]
fn dequantize_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(&b[0..2]);
    let (qs, qh) = b[2..BYTES].split_at(32);
    for ((q, ib), out32) in qs.chunks_exact(4).zip(0..8).zip(out.chunks_exact_mut(32)) {
        let h = u16_at(qh, 2 * ib) as usize;
        let dl = d * (2 * ((h >> 12) & 7) + 1) as f32;
        let delta = if h & 0x8000 != 0 {
            -IQ1_DELTA
        } else {
            IQ1_DELTA
        };
        for (l, out8) in out32.chunks_exact_mut(8).enumerate() {
            let idx = q[l] as usize | ((h >> (3 * l)) & 7) << 8;
            put8_shifted(out8, dl, IQ1S_GRID[idx], delta);
        }
    }
}

read_only_format!(Iq1S, GgmlType::IQ1_S, BYTES, dequantize_block);
