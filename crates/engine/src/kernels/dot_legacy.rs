//! Integer dot products of 32-element weight blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL,
//! MXFP4) with 32-element Q8 activation blocks. Written as plain loops over fixed-size arrays so
//! the same source vectorises well when compiled for AVX2 / AVX-512 (see `twins`); this is also
//! the portable path.

use super::act::ActRow;
use lowbit_formats::iq4::KVALUES;
use lowbit_formats::mxfp4::{e8m0_to_f32_half, E2M1_DOUBLED};

#[inline(always)]
pub(crate) fn f16_at(b: &[u8], off: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([b[off], b[off + 1]])).to_f32()
}

/// Σ (lo nibble − bias)·x[j] + (hi nibble − bias)·x[j+16] over a 16-byte nibble array.
#[inline(always)]
fn nibble_dot(qs: &[u8; 16], x: &[i8; 32], bias: i32) -> i32 {
    let mut s = 0i32;
    for j in 0..16 {
        s += ((qs[j] & 15) as i32 - bias) * x[j] as i32;
        s += ((qs[j] >> 4) as i32 - bias) * x[j + 16] as i32;
    }
    s
}

/// Like `nibble_dot` with each nibble mapped through a 16-entry codebook.
#[inline(always)]
fn table_dot(qs: &[u8; 16], x: &[i8; 32], table: &[i8; 16]) -> i32 {
    let mut s = 0i32;
    for j in 0..16 {
        s += table[(qs[j] & 15) as usize] as i32 * x[j] as i32;
        s += table[(qs[j] >> 4) as usize] as i32 * x[j + 16] as i32;
    }
    s
}

/// 5-bit quants: nibble plus one high bit from `qh` (bit j for element j).
#[inline(always)]
fn five_bit_dot(qs: &[u8; 16], qh: u32, x: &[i8; 32], bias: i32) -> i32 {
    let mut s = 0i32;
    for j in 0..16 {
        let lo = (qs[j] & 15) as i32 | ((((qh >> j) & 1) as i32) << 4);
        let hi = (qs[j] >> 4) as i32 | ((((qh >> (j + 16)) & 1) as i32) << 4);
        s += (lo - bias) * x[j] as i32 + (hi - bias) * x[j + 16] as i32;
    }
    s
}

#[inline(always)]
fn blocks<'a, const B: usize>(
    w: &'a [u8],
    a: &'a ActRow<'a>,
) -> impl Iterator<Item = (&'a [u8], &'a [i8; 32], f32, f32)> + 'a {
    w.chunks_exact(B)
        .zip(a.qs.chunks_exact(32))
        .zip(a.d.iter().zip(a.sums))
        .map(|((b, q), (&d, &s))| (b, q.try_into().unwrap(), d, s))
}

#[inline(always)]
pub fn q4_0(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, _) in blocks::<18>(w, a) {
        acc += f16_at(b, 0) * dx * nibble_dot(b[2..18].try_into().unwrap(), x, 8) as f32;
    }
    acc
}

#[inline(always)]
pub fn q4_1(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, sx) in blocks::<20>(w, a) {
        let s = nibble_dot(b[4..20].try_into().unwrap(), x, 0);
        acc += f16_at(b, 0) * dx * s as f32 + f16_at(b, 2) * sx;
    }
    acc
}

#[inline(always)]
pub fn q5_0(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, _) in blocks::<22>(w, a) {
        let qh = u32::from_le_bytes(b[2..6].try_into().unwrap());
        let s = five_bit_dot(b[6..22].try_into().unwrap(), qh, x, 16);
        acc += f16_at(b, 0) * dx * s as f32;
    }
    acc
}

#[inline(always)]
pub fn q5_1(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, sx) in blocks::<24>(w, a) {
        let qh = u32::from_le_bytes(b[4..8].try_into().unwrap());
        let s = five_bit_dot(b[8..24].try_into().unwrap(), qh, x, 0);
        acc += f16_at(b, 0) * dx * s as f32 + f16_at(b, 2) * sx;
    }
    acc
}

#[inline(always)]
pub fn q8_0(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, _) in blocks::<34>(w, a) {
        let q: &[u8; 32] = b[2..34].try_into().unwrap();
        let mut s = 0i32;
        for j in 0..32 {
            s += q[j] as i8 as i32 * x[j] as i32;
        }
        acc += f16_at(b, 0) * dx * s as f32;
    }
    acc
}

#[inline(always)]
pub fn iq4_nl(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, _) in blocks::<18>(w, a) {
        let s = table_dot(b[2..18].try_into().unwrap(), x, &KVALUES);
        acc += f16_at(b, 0) * dx * s as f32;
    }
    acc
}

#[inline(always)]
pub fn mxfp4(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, _) in blocks::<17>(w, a) {
        let s = table_dot(b[1..17].try_into().unwrap(), x, &E2M1_DOUBLED);
        acc += e8m0_to_f32_half(b[0]) * dx * s as f32;
    }
    acc
}
