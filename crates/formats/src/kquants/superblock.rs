//! The two-level structure every k-quant (and IQ4_XS) shares: a 256-element super-block split
//! into sub-blocks, each with its own scale (and for affine types a min), those scales in turn
//! quantized to a few bits against one f16 super-scale.
//!
//! Both levels use [`crate::search::fit`]. The super level is weighted by how much a sub-block's
//! error grows when its scale moves: `Σ w·level²` for scales (the error is
//! `Σ w (Δscale·level)²`) and `Σ w` for mins (`Σ w Δmin²`).

use crate::blockwise::store_f16;
use crate::search::{assign, deltas, fit, normaliser, weights, Grid, IntLevels, Offset, Plan};

pub const QK_K: usize = 256;

/// A quantized super-block: the stored f16 super-scales and the per-sub-block and per-element codes.
pub struct Quantized {
    pub d: f32,
    pub dmin: f32,
    /// Sub-block scale codes (level − lo of the scale grid).
    pub sc: [u8; 16],
    /// Sub-block min codes (affine types only).
    pub mc: [u8; 16],
    /// Element codes (level − lo of the element grid).
    pub q: [u8; QK_K],
}

/// A second finalist for a block (llama.cpp's own choice), or None to keep the search's result.
pub type Reference = fn(&[f32], Option<&[f32]>) -> Option<Quantized>;

/// For types without a second finalist.
pub fn no_reference(_: &[f32], _: Option<&[f32]>) -> Option<Quantized> {
    None
}

/// Plan for quantizing sub-block scales onto `grid` (anchor = the level ggml maps the largest
/// scale onto, so that ggml's own files are recovered exactly).
pub const fn super_plan(anchor: &'static [f32]) -> Plan {
    Plan {
        anchors: anchor,
        deltas: &deltas::SUPER,
        abs_anchor: false,
    }
}

struct Normalised {
    p: f32,
    x: [f32; QK_K],
    w: [f32; QK_K],
}

#[inline(always)]
fn normalise(x: &[f32], importance: Option<&[f32]>) -> Option<Normalised> {
    let p = normaliser(x);
    if p == 0.0 {
        return None;
    }
    let mut n = Normalised {
        p,
        x: [0.0; QK_K],
        w: [0.0; QK_K],
    };
    for (o, &v) in n.x.iter_mut().zip(x) {
        *o = v * p;
    }
    weights(&n.x, importance, &mut n.w);
    Some(n)
}

/// Σ w·level² of a sub-block under its own fit: the weight of its scale at the super level.
#[inline(always)]
fn scale_weight<G: Grid>(x: &[f32], w: &[f32], grid: &G, scale: f32, offset: f32) -> f32 {
    let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
    x.iter()
        .zip(w)
        .map(|(&v, &wv)| {
            let l = grid.snap((v - offset) * inv);
            wv * l * l
        })
        .sum()
}

/// Affine k-quants (Q2_K, Q4_K, Q5_K): `x ≈ d·sc·q − dmin·m` per sub-block of `sub` elements,
/// with `q` on `grid` (0..=nmax) and `sc`, `m` on `sc_grid` (0..=63 or 0..=15).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn quantize_affine(
    x: &[f32],
    importance: Option<&[f32]>,
    sub: usize,
    grid: &IntLevels,
    sub_plan: &Plan,
    sc_grid: &IntLevels,
    sc_plan: &Plan,
    d_out: &mut [u8],
    dmin_out: &mut [u8],
    reference: Reference,
) -> Quantized {
    let nsub = QK_K / sub;
    let mut out = Quantized {
        d: 0.0,
        dmin: 0.0,
        sc: [0; 16],
        mc: [0; 16],
        q: [0; QK_K],
    };
    let Some(n) = normalise(x, importance) else {
        store_f16(d_out, 0.0);
        store_f16(dmin_out, 0.0);
        return out;
    };
    let mut scales = [0f32; 16];
    let mut mins = [0f32; 16];
    let mut ws = [0f32; 16];
    let mut wm = [0f32; 16];
    for j in 0..nsub {
        let (xs, w) = (&n.x[j * sub..][..sub], &n.w[j * sub..][..sub]);
        let f = fit(xs, w, grid, Offset::NonPositive, sub_plan);
        scales[j] = f.scale.max(0.0);
        mins[j] = -f.offset;
        ws[j] = scale_weight(xs, w, grid, f.scale, f.offset);
        wm[j] = w.iter().sum();
    }
    let sd = fit(&scales[..nsub], &ws[..nsub], sc_grid, Offset::None, sc_plan).scale;
    let sm = fit(&mins[..nsub], &wm[..nsub], sc_grid, Offset::None, sc_plan).scale;
    out.d = store_f16(d_out, sd / n.p);
    out.dmin = store_f16(dmin_out, sm / n.p);
    for j in 0..nsub {
        let (scale, min) = (scales[j] / n.p, mins[j] / n.p);
        out.sc[j] = code_of(scale, out.d, sc_grid);
        out.mc[j] = code_of(min, out.dmin, sc_grid);
        // Exactly the products the reader forms.
        let dl = out.d * out.sc[j] as f32;
        let ml = out.dmin * out.mc[j] as f32;
        assign(
            &x[j * sub..][..sub],
            dl,
            -ml,
            grid,
            &mut out.q[j * sub..][..sub],
        );
    }
    if let Some(cand) = reference(x, importance) {
        let sel = Selector::new(&n, importance);
        let value = |q: &Quantized, e: usize| {
            let j = e / sub;
            (q.d * q.sc[j] as f32) * q.q[e] as f32 - q.dmin * q.mc[j] as f32
        };
        let ce = sel.error(&cand, value);
        if ce.is_finite() && ce <= sel.error(&out, value) {
            out = cand;
            store_f16(d_out, out.d);
            store_f16(dmin_out, out.dmin);
        }
    }
    out
}

/// Symmetric two-level types (Q3_K, Q6_K, IQ4_XS): `x ≈ d·(sc+lo)·level(q)` per sub-block.
/// `sc_plan` anchors the largest sub-scale where ggml puts it (its low end, a negative `d`).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn quantize_symmetric<G: Grid>(
    x: &[f32],
    importance: Option<&[f32]>,
    sub: usize,
    grid: &G,
    sub_plan: &Plan,
    sc_grid: &IntLevels,
    sc_plan: &Plan,
    d_out: &mut [u8],
    reference: Reference,
) -> Quantized {
    let nsub = QK_K / sub;
    let mut out = Quantized {
        d: 0.0,
        dmin: 0.0,
        sc: [0; 16],
        mc: [0; 16],
        q: [0; QK_K],
    };
    let Some(n) = normalise(x, importance) else {
        // An all-zero block: zero scale, sub-scales at level 0, codes 0.
        store_f16(d_out, 0.0);
        out.sc = [(-sc_grid.lo) as u8; 16];
        return out;
    };
    let mut scales = [0f32; 16];
    let mut ws = [0f32; 16];
    for j in 0..nsub {
        let (xs, w) = (&n.x[j * sub..][..sub], &n.w[j * sub..][..sub]);
        let f = fit(xs, w, grid, Offset::None, sub_plan);
        scales[j] = f.scale;
        ws[j] = scale_weight(xs, w, grid, f.scale, 0.0);
    }
    let sd = fit(&scales[..nsub], &ws[..nsub], sc_grid, Offset::None, sc_plan).scale;
    out.d = store_f16(d_out, sd / n.p);
    for j in 0..nsub {
        out.sc[j] = code_of(scales[j] / n.p, out.d, sc_grid);
        let dl = out.d * (out.sc[j] as f32 + sc_grid.lo);
        assign(
            &x[j * sub..][..sub],
            dl,
            0.0,
            grid,
            &mut out.q[j * sub..][..sub],
        );
    }
    // Only for integer grids, where a code is its level minus the grid's lowest.
    if let Some(cand) = reference(x, importance) {
        let sel = Selector::new(&n, importance);
        let (lo, slo) = (grid.lo(), sc_grid.lo);
        let value =
            |q: &Quantized, e: usize| (q.d * (q.sc[e / sub] as f32 + slo)) * (q.q[e] as f32 + lo);
        let ce = sel.error(&cand, value);
        if ce.is_finite() && ce <= sel.error(&out, value) {
            out = cand;
            store_f16(d_out, out.d);
        }
    }
    out
}

/// Compares finalists by their true error after all rounding, in the block's normalised units,
/// weighted by the importance alone when there is one (what the model's error is measured by)
/// and by the search's own weights otherwise.
struct Selector<'a> {
    n: &'a Normalised,
    imp: Option<&'a [f32]>,
}

impl<'a> Selector<'a> {
    fn new(n: &'a Normalised, imp: Option<&'a [f32]>) -> Self {
        Selector { n, imp }
    }

    /// Σ w·(x − value)²; +∞ when not finite so a broken candidate never wins.
    #[inline(always)]
    fn error(&self, q: &Quantized, value: impl Fn(&Quantized, usize) -> f32) -> f32 {
        let p = self.n.p;
        let mut acc = [0f32; 8];
        for e in 0..QK_K {
            let w = match self.imp {
                Some(imp) => {
                    let v = imp[e];
                    if v.is_finite() && v > 0.0 {
                        v
                    } else {
                        0.0
                    }
                }
                None => 1.0,
            };
            let d = self.n.x[e] - value(q, e) * p;
            acc[e % 8] += w * d * d;
        }
        let s = acc.iter().sum::<f32>();
        if s.is_finite() {
            s
        } else {
            f32::INFINITY
        }
    }
}

#[inline(always)]
fn code_of(v: f32, d: f32, grid: &IntLevels) -> u8 {
    let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
    grid.code(v * inv)
}

/// Multiplies the f16 super-scale at `b[off..off + 2]` by `r` (fixed-scale encoding's clipping).
#[inline]
pub fn rescale_f16_at(b: &mut [u8], off: usize, r: f32) {
    let d = crate::float::read_f16(&b[off..]);
    store_f16(&mut b[off..off + 2], d * r);
}

/// The code `0..=max` whose multiple of `unit` is nearest `v` (0 when `unit` is 0): a sub-block
/// scale or min set against a kept super-scale.
#[inline]
pub fn sub_code(v: f32, unit: f32, max: u8) -> u8 {
    if !(unit != 0.0 && unit.is_finite()) {
        return 0;
    }
    (v / unit).round_ties_even().clamp(0.0, max as f32) as u8
}
