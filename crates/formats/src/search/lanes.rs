//! Reductions written as eight interleaved partial sums combined by a fixed tree, so the
//! compiler can keep them in one vector register (it may not reorder a serial float sum) while
//! every build — portable or AVX2 — performs the same operations in the same order.

pub const L: usize = 8;

/// Calls `f(lane, x[i], w[i])` for every `i` (up to the shorter length); element `i` feeds
/// lane `i % L`.
#[inline(always)]
pub fn each2(x: &[f32], w: &[f32], mut f: impl FnMut(usize, f32, f32)) {
    let mut xc = x.chunks_exact(L);
    let mut wc = w.chunks_exact(L);
    for (xs, ws) in (&mut xc).zip(&mut wc) {
        for k in 0..L {
            f(k, xs[k], ws[k]);
        }
    }
    for (k, (&a, &b)) in xc.remainder().iter().zip(wc.remainder()).enumerate() {
        f(k, a, b);
    }
}

/// Calls `f(lane, x[i])` for every `i`; element `i` feeds lane `i % L`.
#[inline(always)]
pub fn each(x: &[f32], mut f: impl FnMut(usize, f32)) {
    let mut xc = x.chunks_exact(L);
    for xs in &mut xc {
        for k in 0..L {
            f(k, xs[k]);
        }
    }
    for (k, &a) in xc.remainder().iter().enumerate() {
        f(k, a);
    }
}

#[inline(always)]
pub fn sum(a: [f32; L]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

#[inline(always)]
pub fn sum64(a: [f64; L]) -> f64 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

/// Largest lane; NaN lanes are ignored (compare-and-select keeps the accumulator).
#[inline(always)]
pub fn max(a: [f32; L]) -> f32 {
    a.iter().fold(a[0], |m, &v| if v > m { v } else { m })
}

#[inline(always)]
pub fn min(a: [f32; L]) -> f32 {
    a.iter().fold(a[0], |m, &v| if v < m { v } else { m })
}
