//! Integer dot products of 256-element super-blocks (Q2_K..Q6_K, IQ4_XS, TQ1_0, TQ2_0) with Q8
//! super-blocks. Sub-block scales are small integers, so each super-block's sum is formed in i32
//! and scaled once; constant offsets (the −32 of Q6_K, the −4 of Q3_K, the −1 of the ternary
//! types, the mins of Q2/4/5_K) are applied through the activations' per-16 sums instead of per
//! element. Plain loops over fixed-size arrays, vectorised by the compiler in the SIMD twins.

use super::act::ActRow;
use super::dot_legacy::f16_at;
use lowbit_formats::iq4::KVALUES;

#[inline(always)]
fn superblocks<'a, const B: usize>(
    w: &'a [u8],
    a: &'a ActRow<'a>,
) -> impl Iterator<Item = (&'a [u8], &'a [i8; 256], f32, &'a [i16; 16])> + 'a {
    w.chunks_exact(B)
        .zip(a.qs.chunks_exact(256))
        .zip(a.d.iter().zip(a.bsums.chunks_exact(16)))
        .map(|((b, q), (&d, s))| (b, q.try_into().unwrap(), d, s.try_into().unwrap()))
}

/// Σ u[l]·x[l] over 16 elements, `u` given by a closure over l.
#[inline(always)]
fn dot16(x: &[i8], f: impl Fn(usize) -> i32) -> i32 {
    let mut s = 0;
    for l in 0..16 {
        s += f(l) * x[l] as i32;
    }
    s
}

/// (scale, min) codes of sub-block `j` from the 12-byte packed 6-bit scales of Q4_K / Q5_K.
#[inline(always)]
fn scale_min_k4(q: &[u8], j: usize) -> (i32, i32) {
    if j < 4 {
        ((q[j] & 63) as i32, (q[j + 4] & 63) as i32)
    } else {
        (
            ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)) as i32,
            ((q[j + 4] >> 4) | ((q[j] >> 6) << 4)) as i32,
        )
    }
}

#[inline(always)]
pub fn q2_k(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, bs) in superblocks::<84>(w, a) {
        let (sc, qs) = (&b[0..16], &b[16..80]);
        let (mut isum, mut msum) = (0i32, 0i32);
        for n in 0..2 {
            for j in 0..4 {
                for h in 0..2 {
                    let sub = 8 * n + 2 * j + h;
                    let q = &qs[32 * n + 16 * h..32 * n + 16 * h + 16];
                    let s = dot16(&x[16 * sub..], |l| ((q[l] >> (2 * j)) & 3) as i32);
                    isum += (sc[sub] & 15) as i32 * s;
                    msum += (sc[sub] >> 4) as i32 * bs[sub] as i32;
                }
            }
        }
        acc += dx * (f16_at(b, 80) * isum as f32 - f16_at(b, 82) * msum as f32);
    }
    acc
}

#[inline(always)]
pub fn q3_k(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, bs) in superblocks::<110>(w, a) {
        let (hm, qs, sc) = (&b[0..32], &b[32..96], &b[96..108]);
        let mut isum = 0i32;
        for n in 0..2 {
            for j in 0..4 {
                for h in 0..2 {
                    let sub = 8 * n + 2 * j + h;
                    let q = &qs[32 * n + 16 * h..32 * n + 16 * h + 16];
                    let m = &hm[16 * h..16 * h + 16];
                    let bit = 4 * n + j;
                    let s = dot16(&x[16 * sub..], |l| {
                        (((q[l] >> (2 * j)) & 3) | (((m[l] >> bit) & 1) << 2)) as i32
                    });
                    let low = if sub < 8 {
                        sc[sub] & 0xF
                    } else {
                        sc[sub - 8] >> 4
                    };
                    let scale = (low | (((sc[8 + sub % 4] >> (2 * (sub / 4))) & 3) << 4)) as i32;
                    isum += (scale - 32) * (s - 4 * bs[sub] as i32);
                }
            }
        }
        acc += dx * f16_at(b, 108) * isum as f32;
    }
    acc
}

#[inline(always)]
pub fn q4_k(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, bs) in superblocks::<144>(w, a) {
        let (sc, qs) = (&b[4..16], &b[16..144]);
        let (mut isum, mut msum) = (0i32, 0i32);
        for i in 0..4 {
            let q: &[u8; 32] = qs[32 * i..32 * i + 32].try_into().unwrap();
            let (mut lo, mut hi) = (0i32, 0i32);
            for l in 0..32 {
                lo += (q[l] & 15) as i32 * x[64 * i + l] as i32;
                hi += (q[l] >> 4) as i32 * x[64 * i + 32 + l] as i32;
            }
            let (s1, m1) = scale_min_k4(sc, 2 * i);
            let (s2, m2) = scale_min_k4(sc, 2 * i + 1);
            isum += s1 * lo + s2 * hi;
            msum += m1 * (bs[4 * i] as i32 + bs[4 * i + 1] as i32)
                + m2 * (bs[4 * i + 2] as i32 + bs[4 * i + 3] as i32);
        }
        acc += dx * (f16_at(b, 0) * isum as f32 - f16_at(b, 2) * msum as f32);
    }
    acc
}

#[inline(always)]
pub fn q5_k(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, bs) in superblocks::<176>(w, a) {
        let (sc, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
        let (mut isum, mut msum) = (0i32, 0i32);
        for i in 0..4 {
            let q: &[u8; 32] = qs[32 * i..32 * i + 32].try_into().unwrap();
            let h: &[u8; 32] = qh.try_into().unwrap();
            let (mut lo, mut hi) = (0i32, 0i32);
            for l in 0..32 {
                let a = (q[l] & 15) | (((h[l] >> (2 * i)) & 1) << 4);
                let c = (q[l] >> 4) | (((h[l] >> (2 * i + 1)) & 1) << 4);
                lo += a as i32 * x[64 * i + l] as i32;
                hi += c as i32 * x[64 * i + 32 + l] as i32;
            }
            let (s1, m1) = scale_min_k4(sc, 2 * i);
            let (s2, m2) = scale_min_k4(sc, 2 * i + 1);
            isum += s1 * lo + s2 * hi;
            msum += m1 * (bs[4 * i] as i32 + bs[4 * i + 1] as i32)
                + m2 * (bs[4 * i + 2] as i32 + bs[4 * i + 3] as i32);
        }
        acc += dx * (f16_at(b, 0) * isum as f32 - f16_at(b, 2) * msum as f32);
    }
    acc
}

#[inline(always)]
pub fn q6_k(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, bs) in superblocks::<210>(w, a) {
        let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
        let mut isum = 0i32;
        for n in 0..2 {
            let ql: &[u8; 64] = ql[64 * n..64 * n + 64].try_into().unwrap();
            let qh: &[u8; 32] = qh[32 * n..32 * n + 32].try_into().unwrap();
            for h in 0..2 {
                let o = 16 * h;
                let x = &x[128 * n..];
                let s0 = dot16(&x[o..], |l| {
                    ((ql[o + l] & 15) | ((qh[o + l] & 3) << 4)) as i32
                });
                let s1 = dot16(&x[32 + o..], |l| {
                    ((ql[32 + o + l] & 15) | (((qh[o + l] >> 2) & 3) << 4)) as i32
                });
                let s2 = dot16(&x[64 + o..], |l| {
                    ((ql[o + l] >> 4) | (((qh[o + l] >> 4) & 3) << 4)) as i32
                });
                let s3 = dot16(&x[96 + o..], |l| {
                    ((ql[32 + o + l] >> 4) | (((qh[o + l] >> 6) & 3) << 4)) as i32
                });
                for (k, s) in [s0, s1, s2, s3].into_iter().enumerate() {
                    let sub = 8 * n + 2 * k + h;
                    isum += sc[sub] as i8 as i32 * (s - 32 * bs[sub] as i32);
                }
            }
        }
        acc += dx * f16_at(b, 208) * isum as f32;
    }
    acc
}

#[inline(always)]
pub fn iq4_xs(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, _) in superblocks::<136>(w, a) {
        let sh = u16::from_le_bytes([b[2], b[3]]) as u32;
        let (sl, qs) = (&b[4..8], &b[8..136]);
        let mut isum = 0i32;
        for ib in 0..8 {
            let q: &[u8; 16] = qs[16 * ib..16 * ib + 16].try_into().unwrap();
            let mut s = 0i32;
            for j in 0..16 {
                s += KVALUES[(q[j] & 15) as usize] as i32 * x[32 * ib + j] as i32;
                s += KVALUES[(q[j] >> 4) as usize] as i32 * x[32 * ib + 16 + j] as i32;
            }
            let ls = ((sl[ib / 2] >> (4 * (ib % 2))) & 15) as i32
                | ((((sh >> (2 * ib)) & 3) as i32) << 4);
            isum += (ls - 32) * s;
        }
        acc += dx * f16_at(b, 0) * isum as f32;
    }
    acc
}

#[inline(always)]
pub fn tq2_0(w: &[u8], a: &ActRow) -> f32 {
    let mut acc = 0f32;
    for (b, x, dx, bs) in superblocks::<66>(w, a) {
        let mut isum = 0i32;
        for j in 0..2 {
            let q: &[u8; 32] = b[32 * j..32 * j + 32].try_into().unwrap();
            for l in 0..4 {
                for m in 0..32 {
                    isum += ((q[m] >> (2 * l)) & 3) as i32 * x[128 * j + 32 * l + m] as i32;
                }
            }
        }
        let total: i32 = bs.iter().map(|&s| s as i32).sum();
        acc += dx * f16_at(b, 64) * (isum - total) as f32;
    }
    acc
}

/// Base-3 digit `n` (0 = most significant) of a TQ1_0 fixed-point byte, as 0..=2.
#[inline(always)]
fn trit(byte: u8, pow3: u8) -> i32 {
    ((byte.wrapping_mul(pow3) as u16 * 3) >> 8) as i32
}

#[inline(always)]
pub fn tq1_0(w: &[u8], a: &ActRow) -> f32 {
    const POW3: [u8; 5] = [1, 3, 9, 27, 81];
    let mut acc = 0f32;
    for (b, x, dx, bs) in superblocks::<54>(w, a) {
        let mut isum = 0i32;
        for (n, &p) in POW3.iter().enumerate() {
            for m in 0..32 {
                isum += trit(b[m], p) * x[32 * n + m] as i32;
            }
            for m in 0..16 {
                isum += trit(b[32 + m], p) * x[160 + 16 * n + m] as i32;
            }
        }
        for (n, &p) in POW3[..4].iter().enumerate() {
            for j in 0..4 {
                isum += trit(b[48 + j], p) * x[240 + 4 * n + j] as i32;
            }
        }
        let total: i32 = bs.iter().map(|&s| s as i32).sum();
        acc += dx * f16_at(b, 52) * (isum - total) as f32;
    }
    acc
}
