//! The two block shapes every legacy format shares (32 elements, one f16 scale, optionally an
//! f16 offset) and the nibble / fifth-bit packing they have in common.

use super::fused;
use crate::blockwise::store_f16;
use crate::search::{assign, fit, normaliser, weights, IntLevels, Offset, Plan};

pub const QK: usize = 32;

/// Fits `x ≈ d·level` on `grid`, stores `d` as f16 at `d_out[0..2]` and writes each element's
/// code (level − grid.lo) against the stored value. Without importance the fused quantizer
/// searches `fused_levels` (mappings of the extreme element; `plan.anchors[0]` is llama.cpp's).
#[inline(always)]
pub fn quantize_scaled(
    x: &[f32],
    importance: Option<&[f32]>,
    grid: &IntLevels,
    plan: &Plan,
    fused_levels: &[f32],
    d_out: &mut [u8],
    codes: &mut [u8; QK],
) -> f32 {
    if importance.is_none() {
        let anchor = plan.anchors[0];
        if let Some(d) =
            fused::quantize_scaled(x, grid, anchor, plan.abs_anchor, fused_levels, d_out, codes)
        {
            return d;
        }
    }
    let p = normaliser(x);
    if p == 0.0 {
        store_f16(d_out, 0.0);
        assign(x, 0.0, 0.0, grid, codes);
        return 0.0;
    }
    let mut xn = [0f32; QK];
    let mut w = [0f32; QK];
    for (n, &v) in xn.iter_mut().zip(x) {
        *n = v * p;
    }
    weights(&xn, importance, &mut w);
    let f = fit(&xn, &w, grid, Offset::None, plan);
    let mut d = store_f16(d_out, f.scale / p);
    assign(x, d, 0.0, grid, codes);
    canonical_sign(x, grid, d_out, &mut d, codes);
    d
}

/// When no code uses the grid's unpaired level (−8 of −8..7), ±d describe the same values; pick
/// ggml's convention — the largest-magnitude element gets a negative code — so requantizing is
/// idempotent and reproduces ggml's bytes.
#[inline(always)]
fn canonical_sign(
    x: &[f32],
    grid: &IntLevels,
    d_out: &mut [u8],
    d: &mut f32,
    codes: &mut [u8; QK],
) {
    if grid.lo != -grid.hi - 1.0 || codes.contains(&0) {
        return;
    }
    let (mut m, mut cm) = (0f32, 0u8);
    for (&v, &c) in x.iter().zip(codes.iter()) {
        if v.abs() > m {
            m = v.abs();
            cm = c;
        }
    }
    let zero = (-grid.lo) as u8;
    if cm > zero {
        for c in codes.iter_mut() {
            *c = 2 * zero - *c;
        }
        *d = store_f16(d_out, -*d);
    }
}

/// Fits `x ≈ d·level + m` with a free offset; stores `d` then `m` as f16 at `dm_out[0..4]`.
/// Without importance the fused quantizer searches `fused_deltas` (span onto `hi + δ`).
#[inline(always)]
pub fn quantize_affine(
    x: &[f32],
    importance: Option<&[f32]>,
    grid: &IntLevels,
    plan: &Plan,
    fused_deltas: &[f32],
    dm_out: &mut [u8],
    codes: &mut [u8; QK],
) {
    if importance.is_none()
        && fused::quantize_affine(x, grid, fused_deltas, dm_out, codes).is_some()
    {
        return;
    }
    let p = normaliser(x);
    let (d, m) = if p == 0.0 {
        (0.0, 0.0)
    } else {
        let mut xn = [0f32; QK];
        let mut w = [0f32; QK];
        for (n, &v) in xn.iter_mut().zip(x) {
            *n = v * p;
        }
        weights(&xn, importance, &mut w);
        let f = fit(&xn, &w, grid, Offset::Free, plan);
        (f.scale / p, f.offset / p)
    };
    let d = store_f16(&mut dm_out[0..2], d);
    let m = store_f16(&mut dm_out[2..4], m);
    assign(x, d, m, grid, codes);
}

/// Low nibbles hold elements 0..16, high nibbles 16..32.
#[inline(always)]
pub fn pack_nibbles(codes: &[u8; QK], qs: &mut [u8]) {
    for j in 0..QK / 2 {
        qs[j] = (codes[j] & 15) | ((codes[j + 16] & 15) << 4);
    }
}

/// Fifth bits: bit j of the little-endian u32 is element j's.
#[inline(always)]
pub fn pack_high_bits(codes: &[u8; QK], qh: &mut [u8]) {
    let mut h = 0u32;
    for (j, &c) in codes.iter().enumerate() {
        h |= (((c >> 4) & 1) as u32) << j;
    }
    qh[..4].copy_from_slice(&h.to_le_bytes());
}

/// The 5-bit codes of a Q5 block, element order.
#[inline]
pub fn unpack5(qh: &[u8], qs: &[u8]) -> [u8; QK] {
    let h = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let mut out = [0u8; QK];
    for j in 0..QK / 2 {
        out[j] = (qs[j] & 15) | ((((h >> j) & 1) as u8) << 4);
        out[j + 16] = (qs[j] >> 4) | ((((h >> (j + 16)) & 1) as u8) << 4);
    }
    out
}

/// Inverse of [`pack_nibbles`].
#[inline]
pub fn unpack_nibbles(qs: &[u8], codes: &mut [u8]) {
    for j in 0..QK / 2 {
        codes[j] = qs[j] & 15;
        codes[j + 16] = qs[j] >> 4;
    }
}

/// Multiplies the f16 at `b[0..2]` by `r` (clamped into f16 range, as stored scales are).
#[inline]
pub fn rescale_f16(b: &mut [u8], r: f32) {
    let d = crate::float::read_f16(b);
    store_f16(b, d * r);
}

/// Codes into a fixed-size array (the packers take whole blocks).
#[inline]
pub fn block_codes(codes: &[u8]) -> [u8; QK] {
    let mut c = [0u8; QK];
    c.copy_from_slice(&codes[..QK]);
    c
}

/// The group parameters of a block whose first two bytes are its f16 scale.
#[inline]
pub fn scale_params(b: &[u8], out: &mut [crate::grid::GroupParams]) {
    out[0] = crate::grid::GroupParams {
        scale: crate::float::read_f16(b),
        ..Default::default()
    };
}

/// The group parameters of a `_1` block: f16 scale then f16 offset.
#[inline]
pub fn affine_params(b: &[u8], out: &mut [crate::grid::GroupParams]) {
    out[0] = crate::grid::GroupParams {
        scale: crate::float::read_f16(b),
        offset: crate::float::read_f16(&b[2..]),
        zero: 0.0,
    };
}

/// Stores a `_1` block's scale and offset.
#[inline]
pub fn set_affine_params(b: &mut [u8], p: crate::grid::GroupParams) -> bool {
    store_f16(&mut b[0..2], p.scale);
    store_f16(&mut b[2..4], p.offset);
    true
}
