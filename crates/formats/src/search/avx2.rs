//! AVX2+FMA version of [`super::kernel::sums_portable`]: eight candidates per register, two
//! registers (sixteen candidates) per sweep over the elements. Same operations, same order.

use super::kernel::{Snap, Sums};
use std::arch::x86_64::*;

/// Rounding parameters broadcast once per call.
struct Params {
    lo: __m256,
    hi: __m256,
    /// Codebook: the 15 midpoints and the 16 levels (two halves for the lane permutes).
    mids: [__m256; 15],
    levels_lo: __m256,
    levels_hi: __m256,
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn snap_int(t: __m256, p: &Params) -> __m256 {
    let t = _mm256_max_ps(t, p.lo);
    let t = _mm256_min_ps(t, p.hi);
    _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn snap_book(t: __m256, p: &Params) -> __m256 {
    // Count the midpoints below t (a true compare is all ones, i.e. −1), then look the level up.
    let mut idx = _mm256_setzero_si256();
    for m in &p.mids {
        let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(t, *m);
        idx = _mm256_sub_epi32(idx, _mm256_castps_si256(gt));
    }
    let lo = _mm256_permutevar8x32_ps(p.levels_lo, idx);
    let hi = _mm256_permutevar8x32_ps(p.levels_hi, idx);
    // Bit 3 of the index picks the upper half; move it to the sign bit for blendv.
    let upper = _mm256_castsi256_ps(_mm256_slli_epi32::<28>(idx));
    _mm256_blendv_ps(lo, hi, upper)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn snap<const BOOK: bool>(t: __m256, p: &Params) -> __m256 {
    if BOOK {
        snap_book(t, p)
    } else {
        snap_int(t, p)
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn sums<const AFFINE: bool>(
    x: &[f32],
    w: &[f32],
    origin: f32,
    snap: Snap,
    iscales: &[f32],
    out: Sums,
) {
    let mut p = Params {
        lo: _mm256_setzero_ps(),
        hi: _mm256_setzero_ps(),
        mids: [_mm256_setzero_ps(); 15],
        levels_lo: _mm256_setzero_ps(),
        levels_hi: _mm256_setzero_ps(),
    };
    match snap {
        Snap::Int { lo, hi } => {
            p.lo = _mm256_set1_ps(lo);
            p.hi = _mm256_set1_ps(hi);
            run::<AFFINE, false>(x, w, origin, &p, iscales, out)
        }
        Snap::Book(cb) => {
            let (levels, mids) = cb.tables();
            for (m, &v) in p.mids.iter_mut().zip(mids) {
                *m = _mm256_set1_ps(v);
            }
            // SAFETY: `levels` has 16 elements.
            unsafe {
                p.levels_lo = _mm256_loadu_ps(levels.as_ptr());
                p.levels_hi = _mm256_loadu_ps(levels.as_ptr().add(8));
            }
            run::<AFFINE, true>(x, w, origin, &p, iscales, out)
        }
    }
}

/// Per-register accumulators: even- and odd-position partial sums.
#[derive(Clone, Copy)]
struct Acc {
    s: [__m256; 2],
    ss: [__m256; 2],
    sx: [__m256; 2],
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn zero() -> Acc {
    let z = _mm256_setzero_ps();
    Acc {
        s: [z; 2],
        ss: [z; 2],
        sx: [z; 2],
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn step<const AFFINE: bool, const BOOK: bool>(
    a: &mut Acc,
    h: usize,
    xo: __m256,
    xv: __m256,
    wv: __m256,
    is: __m256,
    p: &Params,
) {
    let l = snap::<BOOK>(_mm256_mul_ps(xo, is), p);
    let wl = _mm256_mul_ps(wv, l);
    a.sx[h] = _mm256_fmadd_ps(wl, xv, a.sx[h]);
    a.ss[h] = _mm256_fmadd_ps(wl, l, a.ss[h]);
    if AFFINE {
        a.s[h] = _mm256_add_ps(a.s[h], wl);
    }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn store<const AFFINE: bool>(a: &Acc, out: &mut Sums, c: usize, n: usize) {
    let mut buf = [0f32; 8];
    // SAFETY: `buf` holds 8 floats.
    let mut put = |v: __m256, dst: &mut [f32]| {
        unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), v) };
        dst[c..c + n].copy_from_slice(&buf[..n]);
    };
    put(_mm256_add_ps(a.sx[0], a.sx[1]), out.sxl);
    put(_mm256_add_ps(a.ss[0], a.ss[1]), out.sll);
    if AFFINE {
        put(_mm256_add_ps(a.s[0], a.s[1]), out.sl);
    }
}

/// Eight candidate scales starting at `c`, the last one repeated into unused lanes.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn lanes(iscales: &[f32], c: usize) -> (__m256, usize) {
    let n = (iscales.len() - c).min(8);
    let mut buf = [iscales[c + n - 1]; 8];
    buf[..n].copy_from_slice(&iscales[c..c + n]);
    // SAFETY: `buf` holds 8 floats.
    (unsafe { _mm256_loadu_ps(buf.as_ptr()) }, n)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn run<const AFFINE: bool, const BOOK: bool>(
    x: &[f32],
    w: &[f32],
    origin: f32,
    p: &Params,
    iscales: &[f32],
    mut out: Sums,
) {
    let k = iscales.len();
    let mut c = 0;
    while c < k {
        let (is0, n0) = lanes(iscales, c);
        let two = c + 8 < k;
        let (is1, n1) = if two { lanes(iscales, c + 8) } else { (is0, 0) };
        let (mut a0, mut a1) = (zero(), zero());
        for (i, (&v, &wv)) in x.iter().zip(w).enumerate() {
            let h = i & 1;
            let xv = _mm256_set1_ps(v);
            let xo = if AFFINE {
                _mm256_set1_ps(v - origin)
            } else {
                xv
            };
            let wv = _mm256_set1_ps(wv);
            step::<AFFINE, BOOK>(&mut a0, h, xo, xv, wv, is0, p);
            if two {
                step::<AFFINE, BOOK>(&mut a1, h, xo, xv, wv, is1, p);
            }
        }
        store::<AFFINE>(&a0, &mut out, c, n0);
        if two {
            store::<AFFINE>(&a1, &mut out, c + 8, n1);
        }
        c += if two { 16 } else { 8 };
    }
}
