//! llama.cpp's own choice for a super-block, kept as a finalist beside our search.
//!
//! Our search fits each sub-block over a spread of level spans, but some data (a model
//! dequantized from a ggml file, so rows lying on a k-quant grid) is only recovered when the
//! sub-scale is exactly the one ggml's simpler searches find; and for some imatrix blocks ggml's
//! choice simply happens to be better. Comparing both finalists by the block's true error after
//! all rounding makes the result never worse than llama.cpp's on any block. The searches below
//! follow the objectives ggml-quants.c minimises (min/max-anchored span sweeps with a weighted
//! least-squares refit; scale quantization anchored on the largest sub-scale), written for this
//! crate. Everything runs in scalar f32 so every vector path gets the same bytes.

use super::superblock::{Quantized, QK_K};

/// Below this a group is treated as all zero (ggml's threshold).
const EPS: f32 = 1e-15;

/// ggml's nearest_int (half to even); the add-and-subtract form because `round_ties_even` is a
/// libm call on baseline x86-64. Beyond 2²² ggml's result is garbage; ours saturates (then clamps).
#[inline(always)]
fn nearest(v: f32) -> i32 {
    if v.abs() < 4_194_304.0 {
        crate::search::round_even(v) as i32
    } else {
        v as i32
    }
}

/// Affine sub-block fit `x ≈ scale·l − min`, `l` in 0..=nmax: anchor the span [min(x,0), max x]
/// and sweep the number of levels it covers over `nmax + rmin + rdelta·k`, refitting scale and
/// offset by weighted least squares for each assignment; keep the smallest weighted error.
/// Like ggml, each sweep step spans from the best offset found so far (not the data's minimum),
/// so an improved offset shifts the later candidates. Returns (scale, min) with min ≥ 0.
fn affine_sub(x: &[f32], w: &[f32], nmax: i32, rmin: f32, rdelta: f32, nstep: i32) -> (f32, f32) {
    let (mut lo, mut hi) = (x[0], x[0]);
    let (mut sw, mut sx) = (w[0], w[0] * x[0]);
    for (&v, &wv) in x.iter().zip(w).skip(1) {
        lo = lo.min(v);
        hi = hi.max(v);
        sw += wv;
        sx += wv * v;
    }
    if lo > 0.0 {
        lo = 0.0;
    }
    if hi <= lo {
        return (0.0, -lo);
    }
    let nm = nmax as f32;
    let code = |v: f32, inv: f32, origin: f32| nearest(inv * (v - origin)).clamp(0, nmax) as f32;
    let mut inv = nm / (hi - lo);
    let (mut scale, mut min) = (1.0 / inv, lo);
    let mut best: f32 = x
        .iter()
        .zip(w)
        .map(|(&v, &wv)| {
            let d = scale * code(v, inv, min) + min - v;
            wv * (d * d)
        })
        .sum();
    for k in 0..=nstep {
        let origin = min;
        inv = (rmin + rdelta * k as f32 + nm) / (hi - origin);
        let (mut sl, mut sl2, mut sxl) = (0f32, 0f32, 0f32);
        for (&v, &wv) in x.iter().zip(w) {
            let l = code(v, inv, origin);
            sl += wv * l;
            sl2 += wv * l * l;
            sxl += wv * l * v;
        }
        let det = sw * sl2 - sl * sl;
        if det > 0.0 {
            let mut s = (sw * sxl - sx * sl) / det;
            let mut m = (sl2 * sx - sl * sxl) / det;
            if m > 0.0 {
                m = 0.0;
                s = sxl / sl2;
            }
            let err: f32 = x
                .iter()
                .zip(w)
                .map(|(&v, &wv)| {
                    let d = s * code(v, inv, origin) + m - v;
                    wv * (d * d)
                })
                .sum();
            if err < best {
                best = err;
                scale = s;
                min = m;
            }
        }
    }
    (scale, -min)
}

/// Symmetric sub-block fit `x ≈ scale·l`, `l` in −nmax..nmax−1, the signed extreme mapped onto
/// −nmax ± 0.9 levels, each assignment refit by weighted least squares (Σw·l·x / Σw·l²).
fn symmetric_sub(x: &[f32], w: &[f32], nmax: i32) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < EPS {
        return 0.0;
    }
    let nm = nmax as f32;
    let sums = |inv: f32| {
        let (mut slx, mut sl2) = (0f32, 0f32);
        for (&v, &wv) in x.iter().zip(w) {
            let l = nearest(inv * v).clamp(-nmax, nmax - 1) as f32;
            slx += wv * v * l;
            sl2 += wv * l * l;
        }
        (slx, sl2)
    };
    let (slx, sl2) = sums(-nm / max);
    let mut scale = if sl2 != 0.0 { slx / sl2 } else { 0.0 };
    let mut best = scale * slx;
    for k in -9..=9 {
        if k == 0 {
            continue;
        }
        let (slx, sl2) = sums(-(nm + 0.1 * k as f32) / max);
        if sl2 > 0.0 && slx * slx > best * sl2 {
            scale = slx / sl2;
            best = scale * slx;
        }
    }
    scale
}

/// Non-negative scale codes 0..=nmax for `x` (sub-scales or mins) against one super-scale,
/// weighted by `w`: the largest value on the top code ±0.4, then single codes moved while the
/// refit improves. Returns (super-scale, codes).
fn codes_of_scales(x: &[f32], w: &[f32], nmax: i32, codes: &mut [u8]) -> f32 {
    let max = x.iter().fold(0f32, |m, &v| m.max(v));
    if max < EPS {
        codes.iter_mut().for_each(|c| *c = 0);
        return 0.0;
    }
    let nm = nmax as f32;
    let mse = |inv: f32, cap: bool| -> f32 {
        let s = 1.0 / inv;
        x.iter()
            .zip(w)
            .map(|(&v, &wv)| {
                let l = nearest(inv * v);
                let l = if cap { l.min(nmax) } else { l } as f32;
                let d = v - s * l;
                wv * d * d
            })
            .sum()
    };
    let mut inv = nm / max;
    let mut best = mse(inv, false);
    for k in -4..=4 {
        if k == 0 {
            continue;
        }
        let cand = (0.1 * k as f32 + nm) / max;
        let e = mse(cand, true);
        if e < best {
            best = e;
            inv = cand;
        }
    }
    let (mut slx, mut sl2) = (0f32, 0f32);
    for ((c, &v), &wv) in codes.iter_mut().zip(x).zip(w) {
        let l = nearest(inv * v).clamp(0, nmax);
        *c = l as u8;
        let l = l as f32;
        slx += wv * v * l;
        sl2 += wv * l * l;
    }
    for _ in 0..5 {
        let mut changed = false;
        for ((c, &v), &wv) in codes.iter_mut().zip(x).zip(w) {
            let l = *c as f32;
            let (mut a, mut b) = (slx - wv * v * l, sl2 - wv * l * l);
            if a > 0.0 && b > 0.0 {
                let nl = nearest(v * b / a).min(nmax);
                if nl != *c as i32 {
                    let nlf = nl as f32;
                    a += wv * v * nlf;
                    b += wv * nlf * nlf;
                    if a * a * sl2 > slx * slx * b {
                        *c = nl.clamp(0, 255) as u8;
                        slx = a;
                        sl2 = b;
                        changed = true;
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    if sl2 > 0.0 {
        slx / sl2
    } else {
        0.0
    }
}

/// The value a stored f16 scale reads back as.
#[inline(always)]
fn f16_round(v: f32) -> f32 {
    crate::blockwise::store_f16(&mut [0u8; 2], v)
}

/// Element codes 0..=nmax of an affine sub-block against its stored step and offset.
fn assign_affine(x: &[f32], dl: f32, ml: f32, nmax: i32, q: &mut [u8]) {
    if dl == 0.0 {
        q.iter_mut().for_each(|c| *c = 0);
        return;
    }
    for (c, &v) in q.iter_mut().zip(x) {
        *c = nearest((v + ml) / dl).clamp(0, nmax) as u8;
    }
}

fn empty() -> Quantized {
    Quantized {
        d: 0.0,
        dmin: 0.0,
        sc: [0; 16],
        mc: [0; 16],
        q: [0; QK_K],
    }
}

/// Q4_K without importance: weights `rms(x) + |x|` per sub-block of 32, 16 levels, sub-scales and
/// mins on 0..=63 with the largest on 63.
pub fn q4_k_plain(x: &[f32]) -> Quantized {
    let mut out = empty();
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    let mut w = [0f32; 32];
    for j in 0..8 {
        let xs = &x[32 * j..][..32];
        let av = (xs.iter().map(|v| v * v).sum::<f32>() / 32.0).sqrt();
        for (o, &v) in w.iter_mut().zip(xs) {
            *o = av + v.abs();
        }
        (scales[j], mins[j]) = affine_sub(xs, &w, 15, -1.0, 0.1, 20);
    }
    let ms = scales.iter().fold(0f32, |m, &v| m.max(v));
    let mm = mins.iter().fold(0f32, |m, &v| m.max(v));
    let is = if ms > 0.0 { 63.0 / ms } else { 0.0 };
    let im = if mm > 0.0 { 63.0 / mm } else { 0.0 };
    out.d = f16_round(ms / 63.0);
    out.dmin = f16_round(mm / 63.0);
    for j in 0..8 {
        out.sc[j] = nearest(is * scales[j]).clamp(0, 63) as u8;
        out.mc[j] = nearest(im * mins[j]).clamp(0, 63) as u8;
        let dl = out.d * out.sc[j] as f32;
        let ml = out.dmin * out.mc[j] as f32;
        assign_affine(&x[32 * j..][..32], dl, ml, 15, &mut out.q[32 * j..][..32]);
    }
    out
}

/// Q2_K with importance: weights `imp·sqrt(mean(x²) + x²)`, 4 levels per sub-block of 16,
/// sub-scales and mins on 0..=15 each fitted against its own super-scale.
pub fn q2_k_importance(x: &[f32], imp: &[f32]) -> Quantized {
    let mut out = empty();
    let sigma2 = x.iter().map(|v| v * v).sum::<f32>() / QK_K as f32;
    let (mut scales, mut mins, mut sw) = ([0f32; 16], [0f32; 16], [0f32; 16]);
    let mut w = [0f32; 16];
    for j in 0..16 {
        let xs = &x[16 * j..][..16];
        for ((o, &v), &q) in w.iter_mut().zip(xs).zip(&imp[16 * j..][..16]) {
            *o = q * (sigma2 + v * v).sqrt();
        }
        sw[j] = w.iter().sum();
        (scales[j], mins[j]) = affine_sub(xs, &w, 3, -0.9, 0.05, 36);
    }
    out.d = f16_round(codes_of_scales(&scales, &sw, 15, &mut out.sc));
    out.dmin = f16_round(codes_of_scales(&mins, &sw, 15, &mut out.mc));
    for j in 0..16 {
        let dl = out.d * out.sc[j] as f32;
        let ml = out.dmin * out.mc[j] as f32;
        assign_affine(&x[16 * j..][..16], dl, ml, 3, &mut out.q[16 * j..][..16]);
    }
    out
}

/// Q6_K with importance: symmetric fits of 16 elements on −32..31 weighted by the importance
/// alone, sub-scales on int8 with the largest-magnitude one on −128.
pub fn q6_k_importance(x: &[f32], imp: &[f32]) -> Quantized {
    let mut out = empty();
    let mut scales = [0f32; 16];
    let (mut amax, mut max) = (0f32, 0f32);
    for j in 0..16 {
        scales[j] = symmetric_sub(&x[16 * j..][..16], &imp[16 * j..][..16], 32);
        if scales[j].abs() > amax {
            amax = scales[j].abs();
            max = scales[j];
        }
    }
    out.sc = [128; 16];
    if amax < EPS {
        out.q = [32; QK_K];
        return out;
    }
    let inv = -128.0 / max;
    out.d = f16_round(1.0 / inv);
    for j in 0..16 {
        let l = nearest(inv * scales[j]).clamp(-128, 127);
        out.sc[j] = (l + 128) as u8;
        let dl = out.d * l as f32;
        let q = &mut out.q[16 * j..][..16];
        if dl == 0.0 {
            q.iter_mut().for_each(|c| *c = 32);
            continue;
        }
        for (c, &v) in q.iter_mut().zip(&x[16 * j..][..16]) {
            *c = (nearest(v / dl).clamp(-32, 31) + 32) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_format;
    use crate::test_util::Lcg;
    use crate::GgmlType;

    fn dequant_affine(q: &Quantized, sub: usize) -> Vec<f32> {
        (0..QK_K)
            .map(|e| {
                let j = e / sub;
                (q.d * q.sc[j] as f32) * q.q[e] as f32 - q.dmin * q.mc[j] as f32
            })
            .collect()
    }

    fn dequant_q6(q: &Quantized) -> Vec<f32> {
        (0..QK_K)
            .map(|e| (q.d * (q.sc[e / 16] as f32 - 128.0)) * (q.q[e] as f32 - 32.0))
            .collect()
    }

    fn roundtrip(t: GgmlType, x: &[f32], imp: Option<&[f32]>) -> Vec<f32> {
        let f = block_format(t).expect("format");
        let mut b = vec![0u8; t.row_bytes(x.len() as u64).unwrap() as usize];
        f.quantize_row(x, imp, &mut b).unwrap();
        let mut y = vec![0f32; x.len()];
        f.dequantize_row(&b, &mut y).unwrap();
        y
    }

    fn werr(x: &[f32], y: &[f32], w: Option<&[f32]>) -> f64 {
        (0..x.len())
            .map(|i| w.map_or(1.0, |w| w[i] as f64) * (x[i] as f64 - y[i] as f64).powi(2))
            .sum()
    }

    /// Q4_K data whose sub-blocks use only part of the 16 levels (as in a dequantized Q4_K_M
    /// model) must come back at least as well as llama.cpp's choice recovers it.
    #[test]
    fn q4_k_never_worse_than_reference_on_grid_data() {
        let mut r = Lcg(7);
        let mut worse = 0;
        for blk in 0..64 {
            let d = 0.001 * (1.0 + r.uniform().abs());
            let dmin = 0.002 * (1.0 + r.uniform().abs());
            let top = 6 + blk % 10;
            let x: Vec<f32> = (0..QK_K)
                .map(|e| {
                    let j = e / 32;
                    let sc = (40 + 3 * j as u32 + blk as u32) % 64;
                    let m = (11 * j as u32 + blk as u32) % 64;
                    let q = r.next_u32() % (top as u32 + 1);
                    (d * sc as f32) * q as f32 - dmin * m as f32
                })
                .collect();
            let ours = roundtrip(GgmlType::Q4_K, &x, None);
            let theirs = dequant_affine(&q4_k_plain(&x), 32);
            let n = crate::search::normaliser(&x);
            let xn: Vec<f32> = x.iter().map(|v| v * n).collect();
            let mut w = vec![0f32; QK_K];
            crate::search::weights(&xn, None, &mut w);
            if werr(&x, &ours, Some(&w)) > werr(&x, &theirs, Some(&w)) * (1.0 + 1e-5) {
                worse += 1;
            }
        }
        assert_eq!(worse, 0);
    }

    #[test]
    fn importance_paths_never_worse_than_reference() {
        let mut r = Lcg(11);
        for _ in 0..32 {
            let x: Vec<f32> = (0..QK_K).map(|_| r.weight()).collect();
            let imp: Vec<f32> = (0..QK_K).map(|_| r.uniform().abs() + 0.01).collect();
            let q2 = roundtrip(GgmlType::Q2_K, &x, Some(&imp));
            let q2r = dequant_affine(&q2_k_importance(&x, &imp), 16);
            assert!(werr(&x, &q2, Some(&imp)) <= werr(&x, &q2r, Some(&imp)) * (1.0 + 1e-6));
            let q6 = roundtrip(GgmlType::Q6_K, &x, Some(&imp));
            let q6r = dequant_q6(&q6_k_importance(&x, &imp));
            assert!(werr(&x, &q6, Some(&imp)) <= werr(&x, &q6r, Some(&imp)) * (1.0 + 1e-6));
        }
    }
}
