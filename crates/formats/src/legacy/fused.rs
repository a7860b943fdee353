//! The legacy formats' quantizer without an importance vector, fused into a few passes over one
//! 32-element block held in four 8-lane vectors.
//!
//! Two finalists are compared by their true weighted error after f16 rounding of the stored
//! scale (and offset), each element coded against the stored values:
//! - llama.cpp's own choice for the block (Q4_0/Q5_0: the signed extreme onto the lowest level;
//!   Q8_0: the largest magnitude onto 127; Q4_1/Q5_1: min/max onto the grid's ends). Coding
//!   every element against its stored values is the per-element optimum, so this finalist alone
//!   is never worse than llama.cpp on any element, and dequantized llama.cpp data comes back
//!   bit for bit (ties go to it).
//! - the least-squares refit of the best of a few perturbed mappings, ranked by closed form.
//!
//! So the block's error is at most llama.cpp's by construction and the search can stay small.
//! The algorithm is written once over [`V8`] and instantiated for the portable lanes and for
//! AVX2; both perform the same IEEE operations in the same order and produce the same bytes.

use super::common::QK;
use crate::blockwise::store_f16;
use crate::search::v8::{P8, V8};
use crate::search::{normaliser_of_max, vector_path, IntLevels};

const NV: usize = QK / 8;

/// Applies `$e` (an expression of the per-vector bindings) to each of the block's vectors. A
/// macro rather than closures: closures are not force-inlined, and an intrinsic left outside the
/// AVX2 function would not be inlined at all.
macro_rules! each {
    (|$($v:ident),+| $e:expr) => {{
        let mut out = [V::splat(0.0); NV];
        for c in 0..NV {
            $(let $v = $v.0[c];)+
            out[c] = $e;
        }
        Blk(out)
    }};
}

#[derive(Clone, Copy)]
struct Blk<V>([V; NV]);

impl<V: V8> Blk<V> {
    #[inline(always)]
    fn load(x: &[f32; QK]) -> Self {
        let mut out = [V::splat(0.0); NV];
        for c in 0..NV {
            out[c] = V::load(x[8 * c..8 * c + 8].try_into().expect("8 lanes"));
        }
        Blk(out)
    }
    #[inline(always)]
    fn store(&self, out: &mut [f32; QK]) {
        for c in 0..NV {
            self.0[c].store((&mut out[8 * c..8 * c + 8]).try_into().expect("8 lanes"));
        }
    }
    /// Σ over the block: lane-wise in a fixed order, then the lane tree.
    #[inline(always)]
    fn sum(&self) -> f32 {
        let s = self.0;
        (s[0].add(s[1])).add(s[2].add(s[3])).hsum()
    }
    #[inline(always)]
    fn max(&self) -> f32 {
        let s = self.0;
        (s[0].max(s[1])).max(s[2].max(s[3])).hmax()
    }
    #[inline(always)]
    fn min(&self) -> f32 {
        let s = self.0;
        (s[0].min(s[1])).min(s[2].min(s[3])).hmin()
    }
}

#[inline(always)]
fn snap<V: V8>(t: V, lo: V, hi: V) -> V {
    t.max(lo).min(hi).round()
}

/// Level index as a byte (see `IntLevels::code`).
#[inline(always)]
fn to_codes(lv: &[f32; QK], lo: f32, codes: &mut [u8; QK]) {
    for i in 0..QK {
        codes[i] = ((lv[i] - lo) + 8_388_608.0).to_bits() as u8;
    }
}

/// The block, scaled by a power of two into [1, 2), and llama.cpp's default weights `σ² + x²`.
struct Prepared<V> {
    x: Blk<V>,
    p: f32,
    xn: Blk<V>,
    w: Blk<V>,
    amax: f32,
}

#[inline(always)]
fn prepare<V: V8>(x: &[f32; QK]) -> Option<Prepared<V>> {
    let xb = Blk::<V>::load(x);
    let amax_o = each!(|xb| xb.abs()).max();
    let p = normaliser_of_max(amax_o);
    if p == 0.0 {
        return None;
    }
    let pv = V::splat(p);
    let xn = each!(|xb| xb.mul(pv));
    let sigma2 = V::splat(each!(|xn| xn.mul(xn)).sum() / QK as f32);
    let w = each!(|xn| sigma2.add(xn.mul(xn)));
    Some(Prepared {
        x: xb,
        p,
        xn,
        w,
        amax: amax_o * p,
    })
}

/// Weighted error (normalised units) of coding `x` against stored `d` and `m` (levels lo..=hi).
#[inline(always)]
fn error_at<V: V8>(pr: &Prepared<V>, d: f32, m: f32, lo: f32, hi: f32) -> (f32, Blk<V>) {
    let inv = V::splat(if d != 0.0 && d.is_finite() {
        1.0 / d
    } else {
        0.0
    });
    let (lov, hiv, mv, dv, pv) = (
        V::splat(lo),
        V::splat(hi),
        V::splat(m),
        V::splat(d),
        V::splat(pr.p),
    );
    let (x, w) = (pr.x, pr.w);
    let lv = each!(|x| snap(x.sub(mv).mul(inv), lov, hiv));
    let e = each!(|x, w, lv| {
        let r = x.sub(dv.mul(lv).add(mv)).mul(pv);
        w.mul(r.mul(r))
    });
    (e.sum(), lv)
}

#[inline(always)]
fn scaled<V: V8>(
    x: &[f32; QK],
    grid: &IntLevels,
    anchor: f32,
    abs_anchor: bool,
    levels: &[f32],
) -> Option<(f32, [f32; QK])> {
    let pr = prepare::<V>(x)?;
    let (lo, hi) = (grid.lo, grid.hi);
    let mut xa = [0f32; QK];
    pr.xn.store(&mut xa);
    // The first element of largest magnitude, sign included (llama.cpp's anchor).
    let idx = xa.iter().position(|v| v.abs() == pr.amax)?;
    let (xm, xm_orig) = if abs_anchor {
        (pr.amax, x[idx].abs())
    } else {
        (xa[idx], x[idx])
    };
    let (xn, w) = (pr.xn, pr.w);
    let wx = each!(|w, xn| w.mul(xn));
    let (lov, hiv) = (V::splat(lo), V::splat(hi));
    // Best = largest sxl²/sll (the refit error is sxx − sxl²/sll), compared by cross
    // multiplication: no division on the per-candidate critical path.
    let (mut b_sxl, mut b_sll) = (0f32, 0f32);
    for &t in levels {
        let is = V::splat(t / xm);
        let l = each!(|xn| snap(xn.mul(is), lov, hiv));
        let sxl = each!(|wx, l| wx.mul(l)).sum();
        let sll = each!(|w, l| w.mul(l.mul(l))).sum();
        if sll > 0.0 && (b_sll == 0.0 || (sxl * sxl) * b_sll > (b_sxl * b_sxl) * sll) {
            (b_sxl, b_sll) = (sxl, sll);
        }
    }
    let best = (b_sll > 0.0, b_sxl / b_sll);
    let mut tmp = [0u8; 2];
    let d_llama = store_f16(&mut tmp, xm_orig / anchor);
    let (mut d, (err, mut lv)) = (d_llama, error_at(&pr, d_llama, 0.0, lo, hi));
    if best.0 {
        let d_fit = store_f16(&mut tmp, best.1 / pr.p);
        if d_fit != d_llama {
            let (e2, lv2) = error_at(&pr, d_fit, 0.0, lo, hi);
            if e2 < err {
                (d, lv) = (d_fit, lv2);
            }
        }
    }
    let mut out = [0f32; QK];
    lv.store(&mut out);
    // When no code uses the unpaired level (−8 of −8..7), ±d describe the same values: keep the
    // extreme element on a negative code as llama.cpp does, so requantizing is idempotent.
    if lo == -hi - 1.0 && out[idx] > 0.0 && !out.contains(&lo) {
        for v in out.iter_mut() {
            *v = -*v;
        }
        d = -d;
    }
    Some((d, out))
}

#[inline(always)]
fn affine<V: V8>(x: &[f32; QK], hi: f32, deltas: &[f32]) -> Option<(f32, f32, [f32; QK])> {
    let pr = prepare::<V>(x)?;
    let (xn, w) = (pr.xn, pr.w);
    let (min, max) = (xn.min(), xn.max());
    let range = max - min;
    let (min_o, max_o) = (min / pr.p, max / pr.p);
    if !(range > 0.0) || !(max_o - min_o).is_finite() {
        return None;
    }
    let sw = w.sum();
    let wx = each!(|w, xn| w.mul(xn));
    let sx = wx.sum();
    let minv = V::splat(min);
    let u = each!(|xn| xn.sub(minv));
    let (zero, hiv) = (V::splat(0.0), V::splat(hi));
    // The refit error is sxx − num/det with num = sw·sxl² − 2·sx·sl·sxl + sll·sx²: best =
    // largest num/det, compared by cross multiplication (no division per candidate).
    let (mut bn, mut bd, mut bsums) = (0f32, 0f32, (0f32, 0f32, 0f32));
    for &dl in deltas {
        let is = V::splat((hi + dl) / range);
        let l = each!(|u| snap(u.mul(is), zero, hiv));
        let wl = each!(|w, l| w.mul(l));
        let sl = wl.sum();
        let sll = each!(|wl, l| wl.mul(l)).sum();
        let sxl = each!(|wx, l| wx.mul(l)).sum();
        let det = sw * sll - sl * sl;
        let num = sw * (sxl * sxl) - 2.0 * sx * sl * sxl + sll * (sx * sx);
        if det > 0.0 && (bd == 0.0 || num * bd > bn * det) {
            (bn, bd, bsums) = (num, det, (sl, sll, sxl));
        }
    }
    let (sl, sll, sxl) = bsums;
    let best = (
        bd > 0.0,
        (sw * sxl - sx * sl) / bd,
        (sll * sx - sl * sxl) / bd,
    );
    let mut tmp = [0u8; 4];
    let (t0, t1) = tmp.split_at_mut(2);
    let d_l = store_f16(t0, (max_o - min_o) / hi);
    let m_l = store_f16(t1, min_o);
    let (mut d, mut m) = (d_l, m_l);
    let (err, mut lv) = error_at(&pr, d, m, 0.0, hi);
    if best.0 && best.1.is_finite() && best.2.is_finite() {
        let d_f = store_f16(t0, best.1 / pr.p);
        let m_f = store_f16(t1, best.2 / pr.p);
        if (d_f, m_f) != (d_l, m_l) {
            let (e2, lv2) = error_at(&pr, d_f, m_f, 0.0, hi);
            if e2 < err {
                (d, m, lv) = (d_f, m_f, lv2);
            }
        }
    }
    let mut out = [0f32; QK];
    lv.store(&mut out);
    Some((d, m, out))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn scaled_avx2(
    x: &[f32; QK],
    grid: &IntLevels,
    anchor: f32,
    abs_anchor: bool,
    levels: &[f32],
) -> Option<(f32, [f32; QK])> {
    scaled::<crate::search::v8::A8>(x, grid, anchor, abs_anchor, levels)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn affine_avx2(x: &[f32; QK], hi: f32, deltas: &[f32]) -> Option<(f32, f32, [f32; QK])> {
    affine::<crate::search::v8::A8>(x, hi, deltas)
}

/// The scale-only fit of a Q4_0 / Q5_0 / Q8_0 block. `anchor` is the level llama.cpp maps the
/// extreme onto (signed extreme, or the largest magnitude when `abs_anchor`); `levels` are the
/// searched mappings of the same extreme. Stores `d` and writes codes; returns `d`. None for
/// blocks the generic path handles (all zero, not finite).
#[inline(always)]
pub fn quantize_scaled(
    x: &[f32],
    grid: &IntLevels,
    anchor: f32,
    abs_anchor: bool,
    levels: &[f32],
    d_out: &mut [u8],
    codes: &mut [u8; QK],
) -> Option<f32> {
    let x: &[f32; QK] = x.try_into().ok()?;
    #[cfg(target_arch = "x86_64")]
    let r = if vector_path() {
        // SAFETY: vector_path checked AVX2 and FMA.
        unsafe { scaled_avx2(x, grid, anchor, abs_anchor, levels) }
    } else {
        scaled::<P8>(x, grid, anchor, abs_anchor, levels)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let r = scaled::<P8>(x, grid, anchor, abs_anchor, levels);
    let (d, lv) = r?;
    to_codes(&lv, grid.lo, codes);
    Some(store_f16(d_out, d))
}

/// The affine fit of a Q4_1 / Q5_1 block (levels 0..=hi): the span [min, max] mapped onto
/// `hi + δ` levels for each of `deltas`. Stores `d`, `m` and writes codes. None for blocks the
/// generic path handles (all zero, constant, not finite).
#[inline(always)]
pub fn quantize_affine(
    x: &[f32],
    grid: &IntLevels,
    deltas: &[f32],
    dm_out: &mut [u8],
    codes: &mut [u8; QK],
) -> Option<()> {
    let x: &[f32; QK] = x.try_into().ok()?;
    #[cfg(target_arch = "x86_64")]
    let r = if vector_path() {
        // SAFETY: vector_path checked AVX2 and FMA.
        unsafe { affine_avx2(x, grid.hi, deltas) }
    } else {
        affine::<P8>(x, grid.hi, deltas)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let r = affine::<P8>(x, grid.hi, deltas);
    let (d, m, lv) = r?;
    store_f16(&mut dm_out[0..2], d);
    store_f16(&mut dm_out[2..4], m);
    to_codes(&lv, 0.0, codes);
    Some(())
}
