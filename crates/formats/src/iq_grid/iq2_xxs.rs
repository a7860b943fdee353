//! IQ2_XXS, 2.06 bpw: 66-byte blocks of 256.
//!
//! Layout: `d: f16`, then 8 groups of 32 elements, 8 bytes each. A group's first 4 bytes index
//! [`IQ2XXS_GRID`] (8 magnitudes each); its second 4 bytes, read as a little-endian u32, hold four
//! 7-bit sign indices into [`KSIGNS_IQ2XS`] (bits 0..28) and a 4-bit scale `s` (bits 28..32).
//! Element = `d * (0.5 + s) * 0.25 * magnitude * sign`.

use super::grids::{IQ2XXS_GRID, KSIGNS_IQ2XS};
use super::{put8_signed, u32_at};
use crate::float::read_f16;
use crate::GgmlType;

pub struct Iq2Xxs;

const BYTES: usize = 66;

#[inline(always)]
fn dequantize_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(&b[0..2]);
    for (g, out32) in b[2..BYTES].chunks_exact(8).zip(out.chunks_exact_mut(32)) {
        let aux = u32_at(g, 4);
        let db = d * (0.5 + (aux >> 28) as f32) * 0.25;
        for (l, out8) in out32.chunks_exact_mut(8).enumerate() {
            let signs = KSIGNS_IQ2XS[((aux >> (7 * l)) & 127) as usize];
            put8_signed(out8, db, IQ2XXS_GRID[g[l] as usize], signs);
        }
    }
}

read_only_format!(Iq2Xxs, GgmlType::IQ2_XXS, BYTES, dequantize_block);
