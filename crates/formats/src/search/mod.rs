//! The one weighted scale search every round-to-nearest format uses.
//!
//! Every block format here stores a group of reals as `scale * level(code) + offset`, where the
//! levels come from a grid (signed integers, unsigned integers with a free offset, or a
//! non-uniform codebook). Picking the scale is the only hard part: the codes follow by rounding.
//! [`fit`] minimises `Σ wᵢ (xᵢ − scale·levelᵢ − offset)²` over a small set of candidate scales:
//! each candidate maps the block's extreme element onto an extreme level (plus small
//! perturbations), rounds every element to the nearest level, and is then scored by the
//! closed-form weighted least-squares refit of scale (and offset) for those codes. The best
//! refit wins. Because the candidate that maps the extreme element exactly onto its level is
//! always tried, data that already lies on a grid (a dequantized tensor) is recovered exactly.
//!
//! The same routine quantizes the sub-block scales of the k-quants (a grid of 4-, 6- or 8-bit
//! integers over 8 or 16 values, weighted by how much each sub-block's error depends on its scale).

mod kernel;
mod lanes;
pub(crate) mod v8;

#[cfg(target_arch = "x86_64")]
mod avx2;

pub use kernel::{avx2_available, force_portable, vector_path, Snap};
use kernel::{sums, Sums};

/// The levels a code can take, in units of the scale.
pub trait Grid {
    /// The rounding rule in a form the vector kernels evaluate; must agree with `snap`.
    fn kind(&self) -> Snap<'_>;
    /// Smallest and largest level; the search anchors the extreme element on them.
    fn lo(&self) -> f32;
    fn hi(&self) -> f32;
    /// The level nearest to `t` (clamped into the grid).
    fn snap(&self, t: f32) -> f32;
    /// The stored code of the level nearest to `t`.
    fn code(&self, t: f32) -> u8;
}

/// Rounds half to even like ggml's `nearest_int`; valid for |t| < 2²², which clamping guarantees.
#[inline(always)]
pub(crate) fn round_even(t: f32) -> f32 {
    (t + 12_582_912.0) - 12_582_912.0
}

/// Consecutive integers `lo..=hi`; code = level − lo.
#[derive(Clone, Copy, Debug)]
pub struct IntLevels {
    pub lo: f32,
    pub hi: f32,
}

impl IntLevels {
    #[inline(always)]
    pub const fn new(lo: i32, hi: i32) -> Self {
        IntLevels {
            lo: lo as f32,
            hi: hi as f32,
        }
    }
}

impl Grid for IntLevels {
    #[inline(always)]
    fn kind(&self) -> Snap<'_> {
        Snap::Int {
            lo: self.lo,
            hi: self.hi,
        }
    }
    #[inline(always)]
    fn lo(&self) -> f32 {
        self.lo
    }
    #[inline(always)]
    fn hi(&self) -> f32 {
        self.hi
    }
    #[inline(always)]
    fn snap(&self, t: f32) -> f32 {
        self.kind().apply(t)
    }
    #[inline(always)]
    fn code(&self, t: f32) -> u8 {
        // The level index is an integer in 0..=255 (snap clamps, NaN included); adding 2²³ puts
        // it in the low mantissa bits. Unlike Rust's saturating float casts this vectorises.
        ((self.snap(t) - self.lo) + 8_388_608.0).to_bits() as u8
    }
}

/// A sorted non-uniform codebook of 16 levels (IQ4_NL's). Nearest level is found branchlessly
/// by counting the midpoints below `t`, so the search loop still vectorises.
#[derive(Clone, Copy, Debug)]
pub struct Codebook16 {
    levels: [f32; 16],
    mids: [f32; 15],
    steps: [f32; 15],
}

impl Codebook16 {
    pub fn new(values: &[i8; 16]) -> Self {
        let mut levels = [0f32; 16];
        let mut mids = [0f32; 15];
        let mut steps = [0f32; 15];
        for i in 0..16 {
            levels[i] = values[i] as f32;
        }
        for i in 0..15 {
            mids[i] = 0.5 * (levels[i] + levels[i + 1]);
            steps[i] = levels[i + 1] - levels[i];
        }
        Codebook16 {
            levels,
            mids,
            steps,
        }
    }

    pub fn level(&self, code: u8) -> f32 {
        self.levels[(code & 15) as usize]
    }

    /// The 16 levels and 15 midpoints, for the vector kernels.
    pub fn tables(&self) -> (&[f32; 16], &[f32; 15]) {
        (&self.levels, &self.mids)
    }

    /// Nearest level; ties go to the lower level, as ggml's best_index_int8 does. NaN gives the
    /// lowest level.
    #[inline(always)]
    pub fn snap_level(&self, t: f32) -> f32 {
        let mut v = self.levels[0];
        for i in 0..15 {
            v += if t > self.mids[i] { self.steps[i] } else { 0.0 };
        }
        v
    }
}

impl Grid for Codebook16 {
    fn kind(&self) -> Snap<'_> {
        Snap::Book(self)
    }
    fn lo(&self) -> f32 {
        self.levels[0]
    }
    fn hi(&self) -> f32 {
        self.levels[15]
    }
    #[inline(always)]
    fn snap(&self, t: f32) -> f32 {
        self.snap_level(t)
    }
    #[inline(always)]
    fn code(&self, t: f32) -> u8 {
        let mut c = 0u8;
        for i in 0..15 {
            c += (t > self.mids[i]) as u8;
        }
        c
    }
}

/// Whether the block has an additive offset next to its scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offset {
    /// `x ≈ scale·level` (Q4_0, Q6_K, IQ4, …).
    None,
    /// `x ≈ scale·level + offset`, offset unconstrained (Q4_1, Q5_1).
    Free,
    /// `x ≈ scale·level + offset` with offset ≤ 0, because the k-quants store `−offset` as an
    /// unsigned multiple of a shared positive `dmin`.
    NonPositive,
}

/// Which candidate scales to try.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Levels the extreme element is mapped onto (scale-only fits). For offset fits the span
    /// `[origin, max]` is always mapped onto `[0, hi]`.
    pub anchors: &'static [f32],
    /// Perturbations of the anchor level, in level units; positive values enlarge its magnitude.
    /// Spacing below 1 around 0 guarantees exact recovery of on-grid data.
    pub deltas: &'static [f32],
    /// Anchor the largest magnitude rather than the signed extreme: forces a positive scale on
    /// symmetric grids (Q8_0's convention).
    pub abs_anchor: bool,
}

/// Result of a fit: `x ≈ scale·level + offset`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    pub scale: f32,
    pub offset: f32,
}

/// Finds the scale (and offset) minimising `Σ w (x − scale·level − offset)²` over the plan's
/// candidates. `x` and `w` have the same length; weights are non-negative and not all zero
/// unless every `x` is. Inputs should be of moderate magnitude (callers normalise blocks with
/// [`normaliser`]) so squares cannot overflow.
#[inline(always)]
pub fn fit<G: Grid>(x: &[f32], w: &[f32], grid: &G, offset: Offset, plan: &Plan) -> Fit {
    debug_assert_eq!(x.len(), w.len());
    match offset {
        Offset::None => fit_scale(x, w, grid, plan),
        _ => fit_affine(x, w, grid, offset == Offset::NonPositive, plan),
    }
}

/// Candidates evaluated per kernel call (plans longer than this are processed in chunks).
const CHUNK: usize = 48;

/// The plan's candidate inverse scales for a scale-only fit, in the plan's order.
#[inline(always)]
fn scale_candidates<'a>(plan: &'a Plan, reference: f32) -> impl Iterator<Item = f32> + 'a {
    plan.anchors.iter().flat_map(move |&a| {
        let sign = if a < 0.0 { -1.0 } else { 1.0 };
        plan.deltas.iter().map(move |&d| (a + sign * d) / reference)
    })
}

/// Fills `buf` from `it`; returns how many were written.
#[inline(always)]
fn take_chunk(it: &mut impl Iterator<Item = f32>, buf: &mut [f32; CHUNK]) -> usize {
    let mut k = 0;
    for (b, v) in buf.iter_mut().zip(it) {
        *b = v;
        k += 1;
    }
    k
}

/// The first element of largest magnitude (ggml's choice of anchor, sign included).
#[inline(always)]
fn extreme(x: &[f32]) -> f32 {
    let mut m = [0f32; lanes::L];
    lanes::each(x, |k, v| {
        let a = v.abs();
        m[k] = if a > m[k] { a } else { m[k] };
    });
    let amax = lanes::max(m);
    x.iter().copied().find(|v| v.abs() == amax).unwrap_or(0.0)
}

#[inline(always)]
fn fit_scale<G: Grid>(x: &[f32], w: &[f32], grid: &G, plan: &Plan) -> Fit {
    let xm = extreme(x);
    let mut acc = [0f32; lanes::L];
    lanes::each2(x, w, |k, v, wv| acc[k] += wv * v * v);
    let sxx = lanes::sum(acc);
    let reference = if plan.abs_anchor { xm.abs() } else { xm };
    if !(reference.abs() > 0.0) || !reference.is_finite() {
        return Fit {
            scale: 0.0,
            offset: 0.0,
        };
    }
    if let ([a], [d]) = (plan.anchors, plan.deltas) {
        // A single candidate needs no ranking (8-bit grids): straight to its refit.
        let sign = if *a < 0.0 { -1.0 } else { 1.0 };
        return refit(x, w, grid, 0.0, (a + sign * d) / reference, Offset::None);
    }
    let mut best = Best::new(sxx);
    let mut cands = scale_candidates(plan, reference);
    let mut iscales = [0f32; CHUNK];
    let (mut sxl, mut sll) = ([0f32; CHUNK], [0f32; CHUNK]);
    loop {
        let k = take_chunk(&mut cands, &mut iscales);
        if k == 0 {
            break;
        }
        let out = Sums {
            sl: &mut [],
            sll: &mut sll[..k],
            sxl: &mut sxl[..k],
        };
        sums::<false>(x, w, 0.0, grid.kind(), &iscales[..k], out);
        // Refit scale = sxl/sll leaves the error Σwx² − sxl²/sll. Branch-free, so the
        // compiler evaluates all candidates in vector registers.
        let mut err = [0f32; CHUNK];
        for c in 0..k {
            let scale = sxl[c] / sll[c];
            err[c] = if sll[c] > 0.0 {
                sxx - sxl[c] * scale
            } else {
                f32::INFINITY
            };
        }
        let fit_of = |c: usize| Fit {
            scale: sxl[c] / sll[c],
            offset: 0.0,
        };
        let direct = |c: (f32, Fit)| direct_error(x, w, grid, 0.0, c);
        if let Some(c) = pick(&err[..k], best.tol, |c| direct((iscales[c], fit_of(c)))) {
            best.offer(err[c], iscales[c], fit_of(c), direct);
        }
    }
    match best.fit {
        Some(_) => refit(x, w, grid, 0.0, best.iscale, Offset::None),
        None => Fit {
            scale: 0.0,
            offset: 0.0,
        },
    }
}

/// Solves the winning candidate's least squares again in f64: the f32 search sums are good
/// enough to rank candidates but not to recover an on-grid scale and offset to the last f16 bit.
#[inline(always)]
fn refit<G: Grid>(x: &[f32], w: &[f32], grid: &G, origin: f32, iscale: f32, offset: Offset) -> Fit {
    let z = [0f64; lanes::L];
    let (mut sw, mut sx, mut sl, mut sll, mut sxl) = (z, z, z, z, z);
    lanes::each2(x, w, |k, v, wv| {
        let l = grid.snap((v - origin) * iscale) as f64;
        let (v, wv) = (v as f64, wv as f64);
        let wl = wv * l;
        sw[k] += wv;
        sx[k] += wv * v;
        sl[k] += wl;
        sll[k] += wl * l;
        sxl[k] += wl * v;
    });
    let (sw, sx, sl, sll, sxl) = (
        lanes::sum64(sw),
        lanes::sum64(sx),
        lanes::sum64(sl),
        lanes::sum64(sll),
        lanes::sum64(sxl),
    );
    let scale_only = |sxl: f64, sll: f64| Fit {
        scale: if sll > 0.0 { (sxl / sll) as f32 } else { 0.0 },
        offset: 0.0,
    };
    if offset == Offset::None {
        return scale_only(sxl, sll);
    }
    let det = sw * sll - sl * sl;
    if !(det > 0.0) {
        return Fit {
            scale: 0.0,
            offset: if sw > 0.0 { (sx / sw) as f32 } else { 0.0 },
        };
    }
    let a = (sw * sxl - sx * sl) / det;
    let b = (sll * sx - sl * sxl) / det;
    if offset == Offset::NonPositive && b > 0.0 {
        return scale_only(sxl, sll);
    }
    Fit {
        scale: a as f32,
        offset: b as f32,
    }
}

/// The best candidate so far. The closed-form errors subtract large sums, so two candidates
/// closer than their rounding noise are compared by summing their errors directly instead;
/// that is what lets exact on-grid data win over a near-miss under x² weights.
struct Best {
    err: f32,
    tol: f32,
    iscale: f32,
    direct: Option<f32>,
    fit: Option<Fit>,
}

impl Best {
    fn new(sxx: f32) -> Self {
        Best {
            err: f32::INFINITY,
            tol: 1e-5 * sxx,
            iscale: 0.0,
            direct: None,
            fit: None,
        }
    }

    #[inline(always)]
    fn offer(&mut self, err: f32, iscale: f32, fit: Fit, direct: impl Fn((f32, Fit)) -> f32) {
        // Equal closed forms almost always mean identical codes: keep the earlier candidate
        // without summing the errors again.
        if !(err < self.err + self.tol) || err == self.err {
            return;
        }
        if let (true, Some(old)) = (err > self.err - self.tol, self.fit) {
            let old_direct = *self
                .direct
                .get_or_insert_with(|| direct((self.iscale, old)));
            let new_direct = direct((iscale, fit));
            if new_direct >= old_direct {
                return;
            }
            self.direct = Some(new_direct);
        } else {
            self.direct = None;
        }
        self.err = err;
        self.iscale = iscale;
        self.fit = Some(fit);
    }
}

/// The candidate of lowest closed-form error; candidates whose error is within `tol` of it (but
/// not equal: equal sums almost always mean identical codes) are compared by direct error, the
/// first one winning ties. None when no error is finite.
#[inline(always)]
fn pick(err: &[f32], tol: f32, direct: impl Fn(usize) -> f32) -> Option<usize> {
    let mut m = [f32::INFINITY; lanes::L];
    lanes::each(err, |k, e| m[k] = if e < m[k] { e } else { m[k] });
    let min = lanes::min(m);
    let first = err.iter().position(|&e| e == min)?;
    let lim = min + tol;
    let mut win = (first, None::<f32>);
    for (c, &e) in err.iter().enumerate().skip(first + 1) {
        if e < lim && e != min {
            let dw = *win.1.get_or_insert_with(|| direct(win.0));
            let d = direct(c);
            if d < dw {
                win = (c, Some(d));
            }
        }
    }
    Some(win.0)
}

/// Σ w (x − scale·level − offset)², with codes from the candidate's own mapping.
#[inline(always)]
fn direct_error<G: Grid>(x: &[f32], w: &[f32], grid: &G, origin: f32, c: (f32, Fit)) -> f32 {
    let (iscale, f) = c;
    let mut e = [0f32; lanes::L];
    lanes::each2(x, w, |k, v, wv| {
        let l = grid.snap((v - origin) * iscale);
        let r = v - f.scale * l - f.offset;
        e[k] += wv * r * r;
    });
    lanes::sum(e)
}

#[inline(always)]
fn fit_affine<G: Grid>(x: &[f32], w: &[f32], grid: &G, non_positive: bool, plan: &Plan) -> Fit {
    let (mut mn, mut mx) = ([f32::INFINITY; lanes::L], [f32::NEG_INFINITY; lanes::L]);
    let z = [0f32; lanes::L];
    let (mut aw, mut ax, mut axx) = (z, z, z);
    lanes::each2(x, w, |k, v, wv| {
        mn[k] = if v < mn[k] { v } else { mn[k] };
        mx[k] = if v > mx[k] { v } else { mx[k] };
        aw[k] += wv;
        ax[k] += wv * v;
        axx[k] += wv * v * v;
    });
    let (min, max) = (lanes::min(mn), lanes::max(mx));
    let (sw, sx, sxx) = (lanes::sum(aw), lanes::sum(ax), lanes::sum(axx));
    let origin = if non_positive { min.min(0.0) } else { min };
    let range = max - origin;
    if !(range > 0.0) || !range.is_finite() {
        // Constant block (or empty): the offset alone reproduces it.
        let off = if min.is_finite() { min } else { 0.0 };
        return Fit {
            scale: 0.0,
            offset: off,
        };
    }
    let mut best = Best::new(sxx);
    let mut cands = plan.deltas.iter().map(|&d| (grid.hi() + d) / range);
    let mut iscales = [0f32; CHUNK];
    let (mut sl, mut sll, mut sxl) = ([0f32; CHUNK], [0f32; CHUNK], [0f32; CHUNK]);
    loop {
        let k = take_chunk(&mut cands, &mut iscales);
        if k == 0 {
            break;
        }
        let out = Sums {
            sl: &mut sl[..k],
            sll: &mut sll[..k],
            sxl: &mut sxl[..k],
        };
        sums::<true>(x, w, origin, grid.kind(), &iscales[..k], out);
        let fit_of = |c: usize| {
            let (sl, sll, sxl) = (sl[c], sll[c], sxl[c]);
            let det = sw * sll - sl * sl;
            let a = (sw * sxl - sx * sl) / det;
            let b = (sll * sx - sl * sxl) / det;
            let clip = non_positive && b > 0.0;
            let fit = Fit {
                scale: if clip { sxl / sll } else { a },
                offset: if clip { 0.0 } else { b },
            };
            (det > 0.0, fit)
        };
        let mut err = [0f32; CHUNK];
        for c in 0..k {
            let (
                ok,
                Fit {
                    scale: a,
                    offset: b,
                },
            ) = fit_of(c);
            let (sl, sll, sxl) = (sl[c], sll[c], sxl[c]);
            let e =
                sxx - 2.0 * a * sxl - 2.0 * b * sx + a * a * sll + 2.0 * a * b * sl + b * b * sw;
            err[c] = if ok { e } else { f32::INFINITY };
        }
        let direct = |c: (f32, Fit)| direct_error(x, w, grid, origin, c);
        if let Some(c) = pick(&err[..k], best.tol, |c| direct((iscales[c], fit_of(c).1))) {
            best.offer(err[c], iscales[c], fit_of(c).1, direct);
        }
    }
    // Without any usable candidate, the plain min/max mapping.
    let mode = if non_positive {
        Offset::NonPositive
    } else {
        Offset::Free
    };
    match best.fit {
        Some(_) => refit(x, w, grid, origin, best.iscale, mode),
        None => Fit {
            scale: range / grid.hi(),
            offset: origin,
        },
    }
}

/// Writes the code of every element against the scale and offset the reader will actually see
/// (after f16 rounding), which for a fixed scale is the per-element optimum.
#[inline(always)]
pub fn assign<G: Grid>(x: &[f32], scale: f32, offset: f32, grid: &G, codes: &mut [u8]) {
    let inv = if scale != 0.0 && scale.is_finite() {
        1.0 / scale
    } else {
        0.0
    };
    for (c, &v) in codes.iter_mut().zip(x) {
        *c = grid.code((v - offset) * inv);
    }
}

/// A power of two `p` such that `max|x|·p` lies in [1, 2): multiplying by it is exact for
/// normal and subnormal inputs alike, so the search runs on well-scaled numbers (no overflow of
/// squares at 1e30, no underflow at denormals) and its result is scaled back exactly.
/// Returns 0 when the block is all zeros (or not finite).
#[inline(always)]
pub fn normaliser(x: &[f32]) -> f32 {
    let mut m = [0f32; lanes::L];
    lanes::each(x, |k, v| {
        let a = v.abs();
        m[k] = if a > m[k] { a } else { m[k] };
    });
    normaliser_of_max(lanes::max(m))
}

/// [`normaliser`] for a block whose largest magnitude is already known.
#[inline(always)]
pub fn normaliser_of_max(amax: f32) -> f32 {
    if !(amax > 0.0) || !amax.is_finite() {
        return 0.0;
    }
    // Subnormal blocks cannot reach [1, 2) with one representable factor; 2^127 brings them to
    // at least ~1e-7, plenty for the search.
    pow2((-exponent(amax)).min(127))
}

/// floor(log2(v)) for finite positive v, subnormals included.
#[inline(always)]
fn exponent(v: f32) -> i32 {
    let bits = v.to_bits();
    let biased = ((bits >> 23) & 0xff) as i32;
    if biased == 0 {
        // Subnormal: value = mantissa · 2^-149.
        let m = bits & 0x7f_ffff;
        31 - m.leading_zeros() as i32 - 149
    } else {
        biased - 127
    }
}

/// 2^e for e in [-149·2, 127·2] as a product of at most two normal powers (exact).
#[inline(always)]
pub fn pow2(e: i32) -> f32 {
    let one = |k: i32| f32::from_bits(((k + 127) as u32) << 23);
    let e1 = e.clamp(-126, 127);
    let e2 = (e - e1).clamp(-126, 127);
    one(e1) * one(e2)
}

/// Per-element weights of the objective. With an importance vector, llama.cpp's tested recipe:
/// importance × sqrt(σ² + x²), σ² = 2·mean(x²) over the group, so elements matter both by how
/// much the model uses them and by their own size. Without one, x² (what llama.cpp's own
/// searches use by default): large weights dominate a dot product's error. Falls back to 1 when
/// every weight is zero so the fit stays well defined.
#[inline(always)]
pub fn weights(x: &[f32], importance: Option<&[f32]>, out: &mut [f32]) {
    let mut acc = [0f32; lanes::L];
    lanes::each(x, |k, v| acc[k] += v * v);
    let sum_x2 = lanes::sum(acc);
    match importance {
        Some(imp) => {
            let sigma2 = 2.0 * sum_x2 / x.len() as f32;
            for ((o, &v), &q) in out.iter_mut().zip(x).zip(imp) {
                let q = if q.is_finite() && q > 0.0 { q } else { 0.0 };
                *o = q * (sigma2 + v * v).sqrt();
            }
        }
        None => {
            let sigma2 = sum_x2 / x.len() as f32;
            for (o, &v) in out.iter_mut().zip(x) {
                *o = sigma2 + v * v;
            }
        }
    }
    if !out.iter().any(|&w| w > 0.0) {
        out.iter_mut().for_each(|w| *w = 1.0);
    }
}

/// Perturbations around the anchor, in level units.
pub mod deltas {
    /// ±0.9 in steps of 0.1, like llama.cpp's make_qx_quants: dense enough that the true
    /// extreme code of on-grid data is always within 0.5 of a candidate.
    pub const WIDE: [f32; 19] = [
        0.0, -0.1, 0.1, -0.2, 0.2, -0.3, 0.3, -0.4, 0.4, -0.5, 0.5, -0.6, 0.6, -0.7, 0.7, -0.8,
        0.8, -0.9, 0.9,
    ];
    /// Q6_K without importance: ±0.8 in steps of 0.2 (its super-level fit, not the sub-block
    /// search, dominates the error).
    pub const WIDE_HALF: [f32; 9] = [0.0, -0.2, 0.2, -0.4, 0.4, -0.6, 0.6, -0.8, 0.8];
    /// Fewer candidates for the legacy formats' speed budget; −1 recovers blocks whose extreme
    /// element ended one level inside the anchor.
    pub const NARROW: [f32; 8] = [0.0, -0.15, 0.15, -0.3, 0.3, -0.5, 0.5, -1.0];
    /// The anchor alone (plus the refit): 8-bit grids gain nothing from perturbing.
    pub const NONE: [f32; 1] = [0.0];
    /// Affine 4- and 5-bit sub-blocks: the span mapped onto `hi ± 1` levels in steps of 0.1
    /// (shrinking clips outliers at the ends, which often pays).
    pub const AFFINE: [f32; 21] = [
        0.0, -0.1, 0.1, -0.2, 0.2, -0.3, 0.3, -0.4, 0.4, -0.5, 0.5, -0.6, 0.6, -0.7, 0.7, -0.8,
        0.8, -0.9, 0.9, -1.0, 1.0,
    ];
    /// Affine 4- and 5-bit sub-blocks without importance: the same span at half the density.
    pub const AFFINE_HALF: [f32; 11] = [0.0, -0.2, 0.2, -0.4, 0.4, -0.6, 0.6, -0.8, 0.8, -1.0, 1.0];
    /// Affine 2-bit sub-blocks (3 is the top level, so ±1 would be ±30 %): −0.5 … +1.0.
    pub const AFFINE_2BIT: [f32; 16] = [
        0.0, -0.1, 0.1, -0.2, 0.2, -0.3, 0.3, -0.4, 0.4, -0.5, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0,
    ];
    /// Codebook grids have steps of 10–25 units: whole-unit perturbations, ±7.
    pub const CODEBOOK: [f32; 15] = [
        0.0, -1.0, 1.0, -2.0, 2.0, -3.0, 3.0, -4.0, 4.0, -5.0, 5.0, -6.0, 6.0, -7.0, 7.0,
    ];
    /// Affine legacy blocks: the same range at half the density, for the speed budget.
    pub const AFFINE_NARROW: [f32; 9] = [0.0, -0.2, -0.4, -0.6, -0.8, -1.0, -1.2, 0.2, 0.4];
    /// The fused legacy path (llama.cpp's min/max mapping is a separate finalist there).
    pub const AFFINE_FUSED: [f32; 5] = [0.0, -0.4, -0.8, -1.2, 0.4];
    /// With an importance matrix the objective is worth more search: ±1 level in steps of 0.05.
    pub const AFFINE_DENSE: [f32; 41] = [
        0.0, -0.05, 0.05, -0.1, 0.1, -0.15, 0.15, -0.2, 0.2, -0.25, 0.25, -0.3, 0.3, -0.35, 0.35,
        -0.4, 0.4, -0.45, 0.45, -0.5, 0.5, -0.55, 0.55, -0.6, 0.6, -0.65, 0.65, -0.7, 0.7, -0.75,
        0.75, -0.8, 0.8, -0.85, 0.85, -0.9, 0.9, -0.95, 0.95, -1.0, 1.0,
    ];
    /// Dense 2-bit variant: −0.5 … +1.0 in steps of 0.05.
    pub const AFFINE_2BIT_DENSE: [f32; 31] = [
        0.0, -0.05, 0.05, -0.1, 0.1, -0.15, 0.15, -0.2, 0.2, -0.25, 0.25, -0.3, 0.3, -0.35, 0.35,
        -0.4, 0.4, -0.45, 0.45, -0.5, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0,
    ];
    /// Super-block scales: mostly shrink (clipping the largest sub-scale a little), at most 4
    /// levels, so the largest code stays near the top of the grid as llama.cpp's files have it.
    pub const SUPER: [f32; 13] = [
        0.0, -0.25, -0.5, -0.75, -1.0, -1.5, -2.0, -2.5, -3.0, -3.5, -4.0, 0.25, 0.45,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED4: IntLevels = IntLevels::new(-8, 7);

    #[test]
    fn rounding_is_half_to_even_and_clamped() {
        assert_eq!(SIGNED4.snap(2.5), 2.0);
        assert_eq!(SIGNED4.snap(3.5), 4.0);
        assert_eq!(SIGNED4.snap(-100.0), -8.0);
        assert_eq!(SIGNED4.snap(f32::INFINITY), 7.0);
        assert_eq!(SIGNED4.code(-8.0), 0);
        assert_eq!(SIGNED4.code(7.0), 15);
    }

    #[test]
    fn codebook_snaps_to_nearest_level() {
        let cb = Codebook16::new(&[
            -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
        ]);
        assert_eq!(cb.snap(0.0), 1.0);
        assert_eq!(cb.code(0.0), 8);
        assert_eq!(cb.snap(-200.0), -127.0);
        assert_eq!(cb.snap(200.0), 113.0);
        assert_eq!(cb.snap(60.0), 53.0);
        assert_eq!(cb.code(62.0), 13);
    }

    #[test]
    fn search_recovers_on_grid_scale() {
        let x: Vec<f32> = (0..32).map(|i| 0.37 * ((i % 16) as f32 - 8.0)).collect();
        let w: Vec<f32> = x.iter().map(|v| v * v).collect();
        let plan = Plan {
            anchors: &[-8.0],
            deltas: &deltas::WIDE,
            abs_anchor: false,
        };
        let f = fit(&x, &w, &SIGNED4, Offset::None, &plan);
        assert!((f.scale - 0.37).abs() < 1e-6, "{f:?}");
    }

    #[test]
    fn affine_search_beats_min_max_mapping() {
        let x: Vec<f32> = (0..32)
            .map(|i| ((i * 7919) % 97) as f32 / 97.0 + 0.1)
            .collect();
        let w = vec![1f32; 32];
        let grid = IntLevels::new(0, 15);
        let plan = Plan {
            anchors: &[],
            deltas: &deltas::AFFINE,
            abs_anchor: false,
        };
        let f = fit(&x, &w, &grid, Offset::Free, &plan);
        let err = |s: f32, o: f32| -> f32 {
            x.iter()
                .map(|&v| (v - (s * grid.snap((v - o) / s) + o)).powi(2))
                .sum()
        };
        let (mn, mx) = x
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(err(f.scale, f.offset) <= err((mx - mn) / 15.0, mn) * 1.0001);
    }

    #[test]
    fn normaliser_is_exact_for_extremes() {
        for v in [1e30f32, 1e-40, 3.0, -7.5e-39, f32::MAX] {
            let p = normaliser(&[v]);
            let n = (v * p).abs();
            assert!((1e-7..2.0).contains(&n), "{v} -> {n}");
            assert_eq!(v * p / p, v);
        }
        assert_eq!(normaliser(&[0.0, -0.0]), 0.0);
    }
}
