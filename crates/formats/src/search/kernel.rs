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

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::iq4::KVALUES;

    fn run(avx: bool, x: &[f32], w: &[f32], origin: f32, snap: Snap, is: &[f32]) -> Vec<u32> {
        let k = is.len();
        let (mut sl, mut sll, mut sxl) = (vec![0f32; k], vec![0f32; k], vec![0f32; k]);
        let out = Sums {
            sl: &mut sl,
            sll: &mut sll,
            sxl: &mut sxl,
        };
        if avx {
            // SAFETY: only called when avx2_available().
            unsafe { crate::search::avx2::sums::<true>(x, w, origin, snap, is, out) };
        } else {
            sums_portable::<true>(x, w, origin, snap, is, out);
        }
        sl.iter()
            .chain(&sll)
            .chain(&sxl)
            .map(|v| v.to_bits())
            .collect()
    }

    /// Odd lengths, candidate counts that are not multiples of 8, NaN, infinities, ties at .5.
    #[test]
    fn avx2_sums_equal_portable_sums_bit_for_bit() {
        if !avx2_available() {
            return;
        }
        let book = Codebook16::new(&KVALUES);
        let mut s = 7u64;
        let mut u = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 + 0.5) / (1u64 << 24) as f32
        };
        for n in [1usize, 7, 16, 31, 32, 40] {
            let mut x: Vec<f32> = (0..n).map(|_| 4.0 * u() - 2.0).collect();
            let w: Vec<f32> = (0..n).map(|_| u() * u()).collect();
            if n > 7 {
                x[3] = f32::NAN;
                x[5] = f32::INFINITY;
                x[6] = 0.5;
            }
            for k in [1usize, 5, 8, 13, 16, 21, 41] {
                let is: Vec<f32> = (0..k).map(|c| 3.0 + c as f32 * 0.37).collect();
                let int = Snap::Int { lo: -8.0, hi: 7.0 };
                for snap in [int, Snap::Book(&book)] {
                    let scale = if matches!(snap, Snap::Book(_)) {
                        30.0
                    } else {
                        1.0
                    };
                    let is: Vec<f32> = is.iter().map(|v| v * scale).collect();
                    for origin in [0.0, -0.75] {
                        assert_eq!(
                            run(true, &x, &w, origin, snap, &is),
                            run(false, &x, &w, origin, snap, &is),
                            "n {n} k {k} origin {origin} {snap:?}"
                        );
                    }
                }
            }
        }
    }
}
