//! Q4_K / Q5_K pack eight 6-bit scales and eight 6-bit mins into 12 bytes: sub-blocks 0–3 use
//! the low 6 bits of bytes 0–3 (scales) and 4–7 (mins); sub-blocks 4–7 keep their low nibbles in
//! bytes 8–11 and their top two bits in the spare high bits of bytes 0–7.

pub fn pack(sc: &[u8; 16], m: &[u8; 16], out: &mut [u8]) {
    out[..12].fill(0);
    for j in 0..8 {
        let (ls, lm) = (sc[j] & 63, m[j] & 63);
        if j < 4 {
            out[j] = ls;
            out[j + 4] = lm;
        } else {
            out[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            out[j - 4] |= (ls >> 4) << 6;
            out[j] |= (lm >> 4) << 6;
        }
    }
}

/// (scale, min) codes of sub-block `j`.
#[inline]
pub fn get(q: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The group parameters of a Q4_K/Q5_K block (`d`, `dmin` at bytes 0..4, scales at 4..16):
/// `value = d·sc·q − dmin·m`, exactly the products the readers form.
pub fn params(b: &[u8], out: &mut [crate::grid::GroupParams]) {
    let d = crate::float::read_f16(b);
    let dmin = crate::float::read_f16(&b[2..]);
    for (j, p) in out.iter_mut().enumerate().take(8) {
        let (sc, m) = get(&b[4..16], j);
        *p = crate::grid::GroupParams {
            scale: d * sc as f32,
            offset: -(dmin * m as f32),
            zero: 0.0,
        };
    }
}

/// Sets sub-block `j`'s scale and min codes nearest `p` against the kept `d`, `dmin`.
pub fn set(b: &mut [u8], j: usize, p: crate::grid::GroupParams, code: fn(f32, f32, u8) -> u8) {
    let d = crate::float::read_f16(b);
    let dmin = crate::float::read_f16(&b[2..]);
    let mut sc = [0u8; 16];
    let mut m = [0u8; 16];
    for k in 0..8 {
        (sc[k], m[k]) = get(&b[4..16], k);
    }
    sc[j] = code(p.scale, d, 63);
    m[j] = code(-p.offset, dmin, 63);
    pack(&sc, &m, &mut b[4..16]);
}
