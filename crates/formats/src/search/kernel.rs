//! The search's inner loop — the weighted sums of every candidate scale's rounded levels — with
//! one portable implementation (the reference) and vector ones chosen at run time.
//!
//! Candidates are evaluated side by side (one per vector lane) rather than elements, so a whole
//! block's candidates cost one sweep over its elements and no horizontal sums. The arithmetic
//! is defined once, here, and every path performs exactly the same IEEE operations in the same
//! order: per candidate, elements at even and odd positions accumulate into two partial sums
//! (two dependency chains), products fuse with their sums (`mul_add`), and the two halves are
//! added at the end. So the vector paths agree with [`sums_portable`] bit for bit.

use super::Codebook16;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a grid rounds, in a form the vector kernels can evaluate.
#[derive(Clone, Copy, Debug)]
pub enum Snap<'a> {
    /// Clamp into `[lo, hi]`, round half to even.
    Int { lo: f32, hi: f32 },
    /// Nearest codebook level, ties to the lower one.
    Book(&'a Codebook16),
}

impl Snap<'_> {
    /// The reference rounding; must agree with the grids' own `snap`.
    #[inline(always)]
    pub fn apply(&self, t: f32) -> f32 {
        match *self {
            Snap::Int { lo, hi } => {
                // Operand order as the vector max/min: a NaN becomes `lo` on every path.
                let t = if t > lo { t } else { lo };
                let t = if t < hi { t } else { hi };
                super::round_even(t)
            }
            Snap::Book(cb) => cb.snap_level(t),
        }
    }
}

/// The candidates' sums: `sxl = Σ w·l·x`, `sll = Σ w·l²`, and for offset fits `sl = Σ w·l`,
/// with `l = snap((x − origin)·iscale)`.
pub struct Sums<'a> {
    pub sl: &'a mut [f32],
    pub sll: &'a mut [f32],
    pub sxl: &'a mut [f32],
}

static PORTABLE_ONLY: AtomicBool = AtomicBool::new(false);

/// Forces the portable path (for tests and benchmarks that compare it with the vector paths).
/// Results do not depend on the path, so flipping this while other threads quantize is harmless.
pub fn force_portable(on: bool) {
    PORTABLE_ONLY.store(on, Ordering::Relaxed);
}

/// Whether the AVX2+FMA path runs on this machine (detected once).
#[cfg(target_arch = "x86_64")]
pub fn avx2_available() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(not(target_arch = "x86_64"))]
pub fn avx2_available() -> bool {
    false
}

/// Whether the vector path is in use right now.
#[inline]
pub fn vector_path() -> bool {
    !PORTABLE_ONLY.load(Ordering::Relaxed) && avx2_available()
}

/// Fills `out` for every candidate in `iscales` (all slices of `out` as long as `iscales`; `sl`
/// is only written when `AFFINE`).
#[inline]
pub fn sums<const AFFINE: bool>(
    x: &[f32],
    w: &[f32],
    origin: f32,
    snap: Snap,
    iscales: &[f32],
    out: Sums,
) {
    debug_assert_eq!(x.len(), w.len());
    #[cfg(target_arch = "x86_64")]
    if vector_path() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        unsafe { super::avx2::sums::<AFFINE>(x, w, origin, snap, iscales, out) };
        return;
    }
    sums_portable::<AFFINE>(x, w, origin, snap, iscales, out)
}

/// The reference implementation.
pub fn sums_portable<const AFFINE: bool>(
    x: &[f32],
    w: &[f32],
    origin: f32,
    snap: Snap,
    iscales: &[f32],
    out: Sums,
) {
    for (c, &is) in iscales.iter().enumerate() {
        let (mut s, mut ss, mut sx) = ([0f32; 2], [0f32; 2], [0f32; 2]);
        for (i, (&v, &wv)) in x.iter().zip(w).enumerate() {
            let t = if AFFINE { (v - origin) * is } else { v * is };
            let l = snap.apply(t);
            let wl = wv * l;
            let h = i & 1;
            sx[h] = wl.mul_add(v, sx[h]);
            ss[h] = wl.mul_add(l, ss[h]);
            if AFFINE {
                s[h] += wl;
            }
        }
        out.sxl[c] = sx[0] + sx[1];
        out.sll[c] = ss[0] + ss[1];
        if AFFINE {
            out.sl[c] = s[0] + s[1];
        }
    }
}
