//! Eight f32 lanes as one type with two implementations: a portable array (the reference) and an
//! AVX2 register. Fused quantizers are written once, generic over [`V8`], and instantiated for
//! both; every operation is the same IEEE operation on each lane (no fusing) and horizontal
//! reductions use one fixed tree, so both instantiations produce the same bits.

pub trait V8: Copy {
    fn load(a: &[f32; 8]) -> Self;
    fn store(self, a: &mut [f32; 8]);
    fn splat(v: f32) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// `self > o ? self : o` per lane (a NaN in `self` yields `o`).
    fn max(self, o: Self) -> Self;
    /// `self < o ? self : o` per lane (a NaN in `self` yields `o`).
    fn min(self, o: Self) -> Self;
    fn abs(self) -> Self;
    /// Round half to even (inputs already clamped to |t| < 2²²).
    fn round(self) -> Self;
    /// ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).
    fn hsum(self) -> f32;
    /// Largest lane (compare-and-select in a fixed order).
    fn hmax(self) -> f32 {
        let mut a = [0f32; 8];
        self.store(&mut a);
        a.iter().fold(a[0], |m, &v| if v > m { v } else { m })
    }
    fn hmin(self) -> f32 {
        let mut a = [0f32; 8];
        self.store(&mut a);
        a.iter().fold(a[0], |m, &v| if v < m { v } else { m })
    }
}

/// The portable reference.
#[derive(Clone, Copy)]
pub struct P8([f32; 8]);

impl P8 {
    #[inline(always)]
    fn map2(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let mut r = [0f32; 8];
        for k in 0..8 {
            r[k] = f(self.0[k], o.0[k]);
        }
        P8(r)
    }
}

impl V8 for P8 {
    #[inline(always)]
    fn load(a: &[f32; 8]) -> Self {
        P8(*a)
    }
    #[inline(always)]
    fn store(self, a: &mut [f32; 8]) {
        *a = self.0;
    }
    #[inline(always)]
    fn splat(v: f32) -> Self {
        P8([v; 8])
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.map2(o, |a, b| a + b)
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self.map2(o, |a, b| a - b)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.map2(o, |a, b| a * b)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.map2(o, |a, b| if a > b { a } else { b })
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.map2(o, |a, b| if a < b { a } else { b })
    }
    #[inline(always)]
    fn abs(self) -> Self {
        self.map2(self, |a, _| a.abs())
    }
    #[inline(always)]
    fn round(self) -> Self {
        self.map2(self, |a, _| super::round_even(a))
    }
    #[inline(always)]
    fn hsum(self) -> f32 {
        let a = self.0;
        ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
    }
}

#[cfg(target_arch = "x86_64")]
pub use avx::A8;

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::V8;
    use std::arch::x86_64::*;

    /// An AVX register. Only constructed inside `#[target_feature(enable = "avx2,fma")]`
    /// functions (the methods are inlined there), after the CPU was checked.
    #[derive(Clone, Copy)]
    pub struct A8(__m256);

    // SAFETY (all methods): A8 values only exist on the AVX2 path, whose callers checked the CPU.
    impl V8 for A8 {
        #[inline(always)]
        fn load(a: &[f32; 8]) -> Self {
            A8(unsafe { _mm256_loadu_ps(a.as_ptr()) })
        }
        #[inline(always)]
        fn store(self, a: &mut [f32; 8]) {
            unsafe { _mm256_storeu_ps(a.as_mut_ptr(), self.0) }
        }
        #[inline(always)]
        fn splat(v: f32) -> Self {
            A8(unsafe { _mm256_set1_ps(v) })
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            A8(unsafe { _mm256_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            A8(unsafe { _mm256_sub_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            A8(unsafe { _mm256_mul_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn max(self, o: Self) -> Self {
            // maxps returns its second operand unless the first is greater.
            A8(unsafe { _mm256_max_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn min(self, o: Self) -> Self {
            A8(unsafe { _mm256_min_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn abs(self) -> Self {
            A8(unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0) })
        }
        #[inline(always)]
        fn round(self) -> Self {
            A8(unsafe {
                _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(self.0)
            })
        }
        #[inline(always)]
        fn hsum(self) -> f32 {
            unsafe {
                // [a0+a4, a1+a5, a2+a6, a3+a7], then lanes 0,1 plus lanes 2,3, then the two.
                let v = _mm_add_ps(
                    _mm256_castps256_ps128(self.0),
                    _mm256_extractf128_ps::<1>(self.0),
                );
                let t = _mm_add_ps(v, _mm_movehl_ps(v, v));
                _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)))
            }
        }
    }
}
