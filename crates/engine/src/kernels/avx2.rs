//! Hand-written AVX2 kernels for the types generation spends its time in (Q4_0, Q8_0, Q4_K,
//! Q6_K, F16); used at the AVX2 and AVX-512 levels. Each matches the portable twin's block
//! arithmetic exactly in integers, so the twin tests bound them tightly.

use super::act::{ActKind, ActRow};
use super::twins::RowDot;
use lowbit_formats::GgmlType;
use std::arch::x86_64::*;

pub fn kernel(ty: GgmlType) -> Option<(ActKind, RowDot)> {
    Some(match ty {
        GgmlType::Q4_0 => (ActKind::Q8x32, q4_0),
        GgmlType::Q8_0 => (ActKind::Q8x32, q8_0),
        GgmlType::Q4_K => (ActKind::Q8x256, q4_k),
        GgmlType::Q6_K => (ActKind::Q8x256, q6_k),
        GgmlType::Q3_K => (ActKind::Q8x256, q3_k),
        GgmlType::F16 => (ActKind::F32, f16w),
        GgmlType::F32 => (ActKind::F32, f32w),
        GgmlType::Q4_1 => (ActKind::Q8x32, q4_1),
        GgmlType::Q5_0 => (ActKind::Q8x32, q5_0),
        GgmlType::Q5_1 => (ActKind::Q8x32, q5_1),
        GgmlType::IQ4_NL => (ActKind::Q8x32, iq4_nl),
        GgmlType::MXFP4 => (ActKind::Q8x32, mxfp4),
        _ => return None,
    })
}

// SAFETY (all wrappers below): reached only through `kernels::kernel` at a level whose CPU
// check included AVX2, FMA and F16C. Inner functions check slice lengths before raw loads.

fn q4_0(w: &[u8], a: &ActRow) -> f32 {
    unsafe { q4_0_impl(w, a) }
}
fn q8_0(w: &[u8], a: &ActRow) -> f32 {
    unsafe { q8_0_impl(w, a) }
}
fn q4_k(w: &[u8], a: &ActRow) -> f32 {
    unsafe { q4_k_impl(w, a) }
}
fn q6_k(w: &[u8], a: &ActRow) -> f32 {
    unsafe { q6_k_impl(w, a) }
}
fn q3_k(w: &[u8], a: &ActRow) -> f32 {
    unsafe { q3_k_impl(w, a) }
}
fn f32w(w: &[u8], a: &ActRow) -> f32 {
    unsafe { f32_impl(w, a.x) }
}
fn q4_1(w: &[u8], a: &ActRow) -> f32 {
    unsafe { legacy32::<20, 4, false, true>(w, a) }
}
fn q5_0(w: &[u8], a: &ActRow) -> f32 {
    unsafe { legacy32::<22, 6, true, false>(w, a) }
}
fn q5_1(w: &[u8], a: &ActRow) -> f32 {
    unsafe { legacy32::<24, 8, true, true>(w, a) }
}
fn iq4_nl(w: &[u8], a: &ActRow) -> f32 {
    unsafe { table32::<18, 2, false>(w, a, &lowbit_formats::iq4::KVALUES) }
}
fn mxfp4(w: &[u8], a: &ActRow) -> f32 {
    use lowbit_formats::mxfp4::E2M1_DOUBLED;
    unsafe { table32::<17, 1, true>(w, a, &E2M1_DOUBLED) }
}
fn f16w(w: &[u8], a: &ActRow) -> f32 {
    unsafe { f16_impl(w, a.x) }
}

#[inline(always)]
pub(super) unsafe fn f16(p: *const u8) -> f32 {
    let bits = u16::from_le_bytes([*p, *p.add(1)]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

#[inline(always)]
pub(super) unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// Σ w·x over 32 signed bytes as 8 i32 lanes (|w| ≤ 128 keeps the i16 pair sums exact).
#[inline(always)]
unsafe fn dot_i8(w: __m256i, x: __m256i) -> __m256i {
    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_impl(w: &[u8], a: &ActRow) -> f32 {
    let nb = a.d.len();
    assert!(w.len() >= nb * 18 && a.qs.len() >= nb * 32);
    let (wp, xp) = (w.as_ptr(), a.qs.as_ptr());
    let m4 = _mm256_set1_epi8(0x0F);
    let eight = _mm256_set1_epi8(8);
    let mut acc = [_mm256_setzero_ps(); 2];
    for i in 0..nb {
        let b = wp.add(18 * i);
        let raw = _mm_loadu_si128(b.add(2) as *const __m128i);
        let both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
        let q = _mm256_sub_epi8(_mm256_and_si256(both, m4), eight);
        let x = _mm256_loadu_si256(xp.add(32 * i) as *const __m256i);
        let s = _mm256_cvtepi32_ps(dot_i8(q, x));
        let k = _mm256_set1_ps(f16(b) * *a.d.get_unchecked(i));
        acc[i & 1] = _mm256_fmadd_ps(s, k, acc[i & 1]);
    }
    hsum(_mm256_add_ps(acc[0], acc[1]))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_impl(w: &[u8], a: &ActRow) -> f32 {
    let nb = a.d.len();
    assert!(w.len() >= nb * 34 && a.qs.len() >= nb * 32);
    let (wp, xp) = (w.as_ptr(), a.qs.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 2];
    for i in 0..nb {
        let b = wp.add(34 * i);
        let q = _mm256_loadu_si256(b.add(2) as *const __m256i);
        let x = _mm256_loadu_si256(xp.add(32 * i) as *const __m256i);
        let s = _mm256_cvtepi32_ps(dot_i8(q, x));
        let k = _mm256_set1_ps(f16(b) * *a.d.get_unchecked(i));
        acc[i & 1] = _mm256_fmadd_ps(s, k, acc[i & 1]);
    }
    hsum(_mm256_add_ps(acc[0], acc[1]))
}

/// Two 16-bit scales, one per 128-bit half (= one per 16 elements of a 32-element group).
#[inline(always)]
unsafe fn scale_pair(lo: i32, hi: i32) -> __m256i {
    _mm256_set_m128i(_mm_set1_epi16(hi as i16), _mm_set1_epi16(lo as i16))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_k_impl(w: &[u8], a: &ActRow) -> f32 {
    let nb = a.d.len();
    assert!(w.len() >= nb * 144 && a.qs.len() >= nb * 256 && a.bsums.len() >= nb * 16);
    let m4 = _mm256_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    let mut mins = 0f32;
    for i in 0..nb {
        let b = &w[144 * i..144 * i + 144];
        let x = a.qs.as_ptr().add(256 * i);
        let bs = &a.bsums[16 * i..16 * i + 16];
        let sc = &b[4..16];
        let mut s = [0i32; 8];
        let mut m = [0i32; 8];
        for j in 0..8 {
            let (a, c) = if j < 4 {
                (sc[j] & 63, sc[j + 4] & 63)
            } else {
                (
                    (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4),
                    (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4),
                )
            };
            s[j] = a as i32;
            m[j] = c as i32;
        }
        let mut isum = _mm256_setzero_si256();
        for g in 0..4 {
            let raw = _mm256_loadu_si256(b.as_ptr().add(16 + 32 * g) as *const __m256i);
            let lo = _mm256_and_si256(raw, m4);
            let hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            let xl = _mm256_loadu_si256(x.add(64 * g) as *const __m256i);
            let xh = _mm256_loadu_si256(x.add(64 * g + 32) as *const __m256i);
            let pl = _mm256_madd_epi16(
                _mm256_maddubs_epi16(lo, xl),
                _mm256_set1_epi16(s[2 * g] as i16),
            );
            let ph = _mm256_madd_epi16(
                _mm256_maddubs_epi16(hi, xh),
                _mm256_set1_epi16(s[2 * g + 1] as i16),
            );
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(pl, ph));
        }
        let mut msum = 0i32;
        for j in 0..8 {
            msum += m[j] * (bs[2 * j] as i32 + bs[2 * j + 1] as i32);
        }
        let dx = *a.d.get_unchecked(i);
        acc = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(isum),
            _mm256_set1_ps(dx * f16(b.as_ptr())),
            acc,
        );
        mins += dx * f16(b.as_ptr().add(2)) * msum as f32;
    }
    hsum(acc) - mins
}

/// The sixteen 6-bit sub-block scales of a Q3_K super-block (packed in 12 bytes), minus 32.
#[inline(always)]
fn q3_k_scales(sc: &[u8]) -> [i32; 16] {
    let mut out = [0i32; 16];
    for (sub, o) in out.iter_mut().enumerate() {
        let low = if sub < 8 { sc[sub] & 0xF } else { sc[sub - 8] >> 4 };
        let high = (sc[8 + sub % 4] >> (2 * (sub / 4))) & 3;
        *o = (low | (high << 4)) as i32 - 32;
    }
    out
}

/// Q3_K: each weight is a 2-bit code plus a high bit from `hmask`, `q = (code | high << 2) - 4`.
/// The codes with their high bit (0..7, unsigned) meet the activations in `maddubs`; the −4 comes
/// back per sub-block from the activation sums, scaled in integers.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q3_k_impl(w: &[u8], a: &ActRow) -> f32 {
    let nb = a.d.len();
    assert!(w.len() >= nb * 110 && a.qs.len() >= nb * 256 && a.bsums.len() >= nb * 16);
    let m3 = _mm256_set1_epi8(3);
    let one = _mm256_set1_epi8(1);
    let mut acc = _mm256_setzero_ps();
    for i in 0..nb {
        let b = &w[110 * i..110 * i + 110];
        let x = a.qs.as_ptr().add(256 * i);
        let bs = &a.bsums[16 * i..16 * i + 16];
        let sc = q3_k_scales(&b[96..108]);
        let hm = _mm256_loadu_si256(b.as_ptr() as *const __m256i);
        let mut isum = _mm256_setzero_si256();
        for n in 0..2 {
            let q = _mm256_loadu_si256(b.as_ptr().add(32 + 32 * n) as *const __m256i);
            for j in 0..4 {
                let code = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j as i32)), m3);
                let bit = 4 * n + j;
                let high = _mm256_and_si256(
                    _mm256_srl_epi16(hm, _mm_cvtsi32_si128(bit as i32)),
                    one,
                );
                let v = _mm256_or_si256(code, _mm256_slli_epi16(high, 2));
                let xv = _mm256_loadu_si256(x.add(128 * n + 32 * j) as *const __m256i);
                let sub = 8 * n + 2 * j;
                let p = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(v, xv),
                    scale_pair(sc[sub], sc[sub + 1]),
                );
                isum = _mm256_add_epi32(isum, p);
            }
        }
        let mut offset = 0i32;
        for sub in 0..16 {
            offset += sc[sub] * bs[sub] as i32;
        }
        // The −4 offset joins the integer sum before any rounding, as in the scalar twin.
        let isum = _mm256_add_epi32(isum, _mm256_setr_epi32(-4 * offset, 0, 0, 0, 0, 0, 0, 0));
        let k = *a.d.get_unchecked(i) * f16(b.as_ptr().add(108));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(k), acc);
    }
    hsum(acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q6_k_impl(w: &[u8], a: &ActRow) -> f32 {
    let nb = a.d.len();
    assert!(w.len() >= nb * 210 && a.qs.len() >= nb * 256 && a.bsums.len() >= nb * 16);
    let m4 = _mm256_set1_epi8(0x0F);
    let m3 = _mm256_set1_epi8(3);
    let mut acc = _mm256_setzero_ps();
    for i in 0..nb {
        let b = &w[210 * i..210 * i + 210];
        let x = a.qs.as_ptr().add(256 * i);
        let bs = &a.bsums[16 * i..16 * i + 16];
        let sc = &b[192..208];
        let mut isum = _mm256_setzero_si256();
        for n in 0..2 {
            let ql0 = _mm256_loadu_si256(b.as_ptr().add(64 * n) as *const __m256i);
            let ql1 = _mm256_loadu_si256(b.as_ptr().add(64 * n + 32) as *const __m256i);
            let qh = _mm256_loadu_si256(b.as_ptr().add(128 + 32 * n) as *const __m256i);
            let high = |s: i32| {
                let h = match s {
                    0 => qh,
                    2 => _mm256_srli_epi16(qh, 2),
                    4 => _mm256_srli_epi16(qh, 4),
                    _ => _mm256_srli_epi16(qh, 6),
                };
                _mm256_slli_epi16(_mm256_and_si256(h, m3), 4)
            };
            let q = [
                _mm256_or_si256(_mm256_and_si256(ql0, m4), high(0)),
                _mm256_or_si256(_mm256_and_si256(ql1, m4), high(2)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), high(4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), high(6)),
            ];
            for (k, q) in q.into_iter().enumerate() {
                let xv = _mm256_loadu_si256(x.add(128 * n + 32 * k) as *const __m256i);
                let sub = 8 * n + 2 * k;
                let scale = scale_pair(sc[sub] as i8 as i32, sc[sub + 1] as i8 as i32);
                let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, xv), scale);
                isum = _mm256_add_epi32(isum, p);
            }
        }
        let mut off = 0i32;
        for j in 0..16 {
            off += sc[j] as i8 as i32 * bs[j] as i32;
        }
        let dx = *a.d.get_unchecked(i) * f16(b.as_ptr().add(208));
        let v = _mm256_sub_epi32(isum, _mm256_setr_epi32(32 * off, 0, 0, 0, 0, 0, 0, 0));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(dx), acc);
    }
    hsum(acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_impl(w: &[u8], x: &[f32]) -> f32 {
    let n = x.len();
    assert!(w.len() >= 2 * n);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let full = n / 32 * 32;
    let mut i = 0;
    while i < full {
        for k in 0..4 {
            let h = _mm_loadu_si128(wp.add(2 * (i + 8 * k)) as *const __m128i);
            let xv = _mm256_loadu_ps(xp.add(i + 8 * k));
            acc[k] = _mm256_fmadd_ps(_mm256_cvtph_ps(h), xv, acc[k]);
        }
        i += 32;
    }
    let mut tail = 0f32;
    for j in full..n {
        tail += f16(wp.add(2 * j)) * x[j];
    }
    hsum(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    )) + tail
}

/// The 32 nibbles of a 16-byte array in element order (low nibbles, then high nibbles).
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> __m256i {
    let raw = _mm_loadu_si128(p as *const __m128i);
    let both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// 0xFF in byte k where bit k of `bits` is set.
#[inline(always)]
unsafe fn bit_mask(bits: u32) -> __m256i {
    let v = _mm256_set1_epi32(bits as i32);
    let idx = _mm256_setr_epi64x(
        0,
        0x0101_0101_0101_0101,
        0x0202_0202_0202_0202,
        0x0303_0303_0303_0303,
    );
    let spread = _mm256_shuffle_epi8(v, idx);
    let sel = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel)
}

/// Q4_1 / Q5_0 / Q5_1: nibbles at byte `QS` of each `B`-byte block, a fifth bit from the u32 at
/// `QS - 4` when `FIVE`, centred (−8 / −16) unless `MIN` (then the f16 min at byte 2 meets the
/// activation sums).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn legacy32<const B: usize, const QS: usize, const FIVE: bool, const MIN: bool>(
    w: &[u8],
    a: &ActRow,
) -> f32 {
    let nb = a.d.len();
    assert!(w.len() >= nb * B && a.qs.len() >= nb * 32 && (!MIN || a.sums.len() >= nb));
    let (wp, xp) = (w.as_ptr(), a.qs.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 2];
    let mut mins = 0f32;
    for i in 0..nb {
        let b = wp.add(B * i);
        let mut q = nibbles(b.add(QS));
        if FIVE {
            let hb = _mm256_and_si256(
                bit_mask((b.add(QS - 4) as *const u32).read_unaligned()),
                _mm256_set1_epi8(16),
            );
            q = _mm256_or_si256(q, hb);
        }
        let x = _mm256_loadu_si256(xp.add(32 * i) as *const __m256i);
        let p = if MIN {
            _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1))
        } else {
            let centred = _mm256_sub_epi8(q, _mm256_set1_epi8(if FIVE { 16 } else { 8 }));
            dot_i8(centred, x)
        };
        let d = f16(b);
        let k = _mm256_set1_ps(d * *a.d.get_unchecked(i));
        acc[i & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), k, acc[i & 1]);
        if MIN {
            mins += f16(b.add(2)) * *a.sums.get_unchecked(i);
        }
    }
    hsum(_mm256_add_ps(acc[0], acc[1])) + mins
}

/// IQ4_NL / MXFP4: nibbles at byte `QS` looked up in a signed 16-entry codebook; the scale is
/// an E8M0 half-scale byte when `E8M0`, else an f16.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn table32<const B: usize, const QS: usize, const E8M0: bool>(
    w: &[u8],
    a: &ActRow,
    table: &[i8; 16],
) -> f32 {
    let nb = a.d.len();
    assert!(w.len() >= nb * B && a.qs.len() >= nb * 32);
    let (wp, xp) = (w.as_ptr(), a.qs.as_ptr());
    let lut = _mm256_broadcastsi128_si256(_mm_loadu_si128(table.as_ptr() as *const __m128i));
    let mut acc = [_mm256_setzero_ps(); 2];
    for i in 0..nb {
        let b = wp.add(B * i);
        let q = _mm256_shuffle_epi8(lut, nibbles(b.add(QS)));
        let x = _mm256_loadu_si256(xp.add(32 * i) as *const __m256i);
        let d = if E8M0 {
            lowbit_formats::mxfp4::e8m0_to_f32_half(*b)
        } else {
            f16(b)
        };
        let k = _mm256_set1_ps(d * *a.d.get_unchecked(i));
        acc[i & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot_i8(q, x)), k, acc[i & 1]);
    }
    hsum(_mm256_add_ps(acc[0], acc[1]))
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f32_impl(w: &[u8], x: &[f32]) -> f32 {
    let n = x.len();
    assert!(w.len() >= 4 * n);
    let (wp, xp) = (w.as_ptr() as *const f32, x.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let full = n / 32 * 32;
    let mut i = 0;
    while i < full {
        for k in 0..4 {
            let wv = _mm256_loadu_ps(wp.add(i + 8 * k));
            acc[k] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xp.add(i + 8 * k)), acc[k]);
        }
        i += 32;
    }
    let mut tail = 0f32;
    for j in full..n {
        tail += wp.add(j).read_unaligned() * x[j];
    }
    hsum(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    )) + tail
}
