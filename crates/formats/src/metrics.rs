//! Error statistics between a reference and its approximation (typically a tensor and its
//! quantize → dequantize round trip).
//!
//! All sums are f64 so that millions of f32 terms do not lose the small errors we are measuring,
//! and an accumulator is mergeable so rows can be processed in parallel and combined in any order.
//! Weighted accumulation (an importance per element) gives the importance-weighted error the
//! quantizers minimise; the unweighted form is the same with every weight 1.

use crate::FormatError;

/// Running sums over (reference x, approximation y, weight w) triples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ErrorStats {
    /// Elements seen (regardless of weight).
    pub count: u64,
    /// Σ w.
    pub sum_w: f64,
    /// Σ w·x².
    pub sum_ref_sq: f64,
    /// Σ w·y².
    pub sum_approx_sq: f64,
    /// Σ w·x·y.
    pub sum_dot: f64,
    /// Σ w·(x − y)².
    pub sum_err_sq: f64,
    /// max |x − y| over elements with non-zero weight.
    pub max_abs_err: f64,
}

impl ErrorStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds equally weighted pairs.
    pub fn add(&mut self, reference: &[f32], approx: &[f32]) -> Result<(), FormatError> {
        check_len("approximation", reference.len(), approx.len())?;
        // The quantize pipeline measures every row: a copy compiled for AVX2 (same operations,
        // same order, so the same sums) runs at several times the speed of the baseline build.
        #[cfg(target_arch = "x86_64")]
        if crate::search::vector_path() {
            #[target_feature(enable = "avx2,fma")]
            fn add_avx2(s: &mut ErrorStats, reference: &[f32], approx: &[f32]) {
                s.add_lanes(reference, approx);
            }
            // SAFETY: vector_path checked AVX2 and FMA.
            unsafe { add_avx2(self, reference, approx) };
            return Ok(());
        }
        self.add_lanes(reference, approx);
        Ok(())
    }

    #[inline(always)]
    fn add_lanes(&mut self, reference: &[f32], approx: &[f32]) {
        // Eight interleaved accumulators: the serial f64 chains were the bottleneck of the
        // quantize pipeline's per-row error measurement.
        const L: usize = 8;
        let z = [0f64; L];
        let (mut rr, mut aa, mut dot, mut ee, mut mx) = (z, z, z, z, z);
        let mut lane = |k: usize, x: f32, y: f32| {
            let (x, y) = (x as f64, y as f64);
            let e = x - y;
            rr[k] += x * x;
            aa[k] += y * y;
            dot[k] += x * y;
            ee[k] += e * e;
            let a = e.abs();
            mx[k] = if a.is_nan() || a > mx[k] { a } else { mx[k] };
        };
        let mut rc = reference.chunks_exact(L);
        let mut ac = approx.chunks_exact(L);
        for (r, a) in (&mut rc).zip(&mut ac) {
            for k in 0..L {
                lane(k, r[k], a[k]);
            }
        }
        for (k, (&x, &y)) in rc.remainder().iter().zip(ac.remainder()).enumerate() {
            lane(k, x, y);
        }
        for k in 0..L {
            self.merge(&ErrorStats {
                count: 0,
                sum_w: 0.0,
                sum_ref_sq: rr[k],
                sum_approx_sq: aa[k],
                sum_dot: dot[k],
                sum_err_sq: ee[k],
                max_abs_err: mx[k],
            });
        }
        self.count += reference.len() as u64;
        self.sum_w += reference.len() as f64;
    }

    /// Adds pairs weighted by `weights` (one non-negative weight per element).
    pub fn add_weighted(
        &mut self,
        reference: &[f32],
        approx: &[f32],
        weights: &[f32],
    ) -> Result<(), FormatError> {
        check_len("approximation", reference.len(), approx.len())?;
        check_len("weights", reference.len(), weights.len())?;
        if let Some(w) = weights.iter().find(|w| !(**w >= 0.0 && w.is_finite())) {
            return Err(FormatError::InvalidParameter(format!(
                "metrics: weight {w} is not a non-negative finite number"
            )));
        }
        for ((&x, &y), &w) in reference.iter().zip(approx).zip(weights) {
            self.push(x as f64, y as f64, w as f64);
        }
        Ok(())
    }

    #[inline]
    fn push(&mut self, x: f64, y: f64, w: f64) {
        let e = x - y;
        self.count += 1;
        self.sum_w += w;
        self.sum_ref_sq += w * x * x;
        self.sum_approx_sq += w * y * y;
        self.sum_dot += w * x * y;
        self.sum_err_sq += w * e * e;
        if w > 0.0 {
            // NaN errors propagate instead of being skipped by `max`.
            let a = e.abs();
            self.max_abs_err = if a.is_nan() || a > self.max_abs_err {
                a
            } else {
                self.max_abs_err
            };
        }
    }

    /// Combines another accumulator into this one (order-independent up to f64 rounding).
    pub fn merge(&mut self, other: &ErrorStats) {
        self.count += other.count;
        self.sum_w += other.sum_w;
        self.sum_ref_sq += other.sum_ref_sq;
        self.sum_approx_sq += other.sum_approx_sq;
        self.sum_dot += other.sum_dot;
        self.sum_err_sq += other.sum_err_sq;
        if other.max_abs_err.is_nan() || other.max_abs_err > self.max_abs_err {
            self.max_abs_err = other.max_abs_err;
        }
    }

    /// Weighted mean squared error; 0 when nothing (or only zero weight) was added.
    pub fn mse(&self) -> f64 {
        if self.sum_w > 0.0 {
            self.sum_err_sq / self.sum_w
        } else {
            0.0
        }
    }

    pub fn rmse(&self) -> f64 {
        self.mse().sqrt()
    }

    /// RMSE relative to the reference's RMS: `sqrt(Σw(x−y)² / Σwx²)`. +inf when the reference is
    /// all zero but the approximation is not, 0 when both are.
    pub fn relative_rmse(&self) -> f64 {
        ratio(self.sum_err_sq, self.sum_ref_sq).sqrt()
    }

    /// Signal-to-quantization-noise ratio `10·log10(Σwx² / Σw(x−y)²)` in dB; +inf when exact.
    pub fn sqnr_db(&self) -> f64 {
        if self.sum_err_sq == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (self.sum_ref_sq / self.sum_err_sq).log10()
        }
    }

    /// Cosine similarity of the two (weighted) vectors; 1 when both are zero, 0 when only one is.
    pub fn cosine(&self) -> f64 {
        let norm = (self.sum_ref_sq * self.sum_approx_sq).sqrt();
        if norm > 0.0 {
            (self.sum_dot / norm).clamp(-1.0, 1.0)
        } else if self.sum_ref_sq == 0.0 && self.sum_approx_sq == 0.0 {
            1.0
        } else {
            0.0
        }
    }
}

fn ratio(num: f64, den: f64) -> f64 {
    match (num == 0.0, den == 0.0) {
        (true, _) => 0.0,
        (false, true) => f64::INFINITY,
        _ => num / den,
    }
}

fn check_len(what: &str, expected: usize, got: usize) -> Result<(), FormatError> {
    if expected == got {
        Ok(())
    } else {
        Err(FormatError::InvalidParameter(format!(
            "metrics: {got} {what} values for {expected} reference values"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let mut s = ErrorStats::new();
        s.add(&[3.0, 4.0], &[3.0, 3.0]).unwrap();
        assert_eq!(s.count, 2);
        assert_eq!(s.mse(), 0.5);
        assert_eq!(s.rmse(), 0.5f64.sqrt());
        assert_eq!(s.relative_rmse(), (1.0f64 / 25.0).sqrt());
        assert!((s.sqnr_db() - 10.0 * 25f64.log10()).abs() < 1e-12);
        assert_eq!(s.max_abs_err, 1.0);
        assert!((s.cosine() - 21.0 / (5.0 * 18f64.sqrt())).abs() < 1e-12);
    }

    #[test]
    fn exact_and_empty_edge_cases() {
        let mut s = ErrorStats::new();
        assert_eq!((s.rmse(), s.relative_rmse(), s.cosine()), (0.0, 0.0, 1.0));
        assert_eq!(s.sqnr_db(), f64::INFINITY);
        s.add(&[1.0, -2.0], &[1.0, -2.0]).unwrap();
        assert_eq!(s.sqnr_db(), f64::INFINITY);
        assert_eq!(s.cosine(), 1.0);
        let mut z = ErrorStats::new();
        z.add(&[0.0], &[1.0]).unwrap();
        assert_eq!(z.relative_rmse(), f64::INFINITY);
        assert_eq!(z.cosine(), 0.0);
        assert_eq!(z.sqnr_db(), f64::NEG_INFINITY);
    }

    #[test]
    fn merge_equals_one_pass() {
        let x: Vec<f32> = (0..100).map(|i| (i as f32 * 0.37).sin()).collect();
        let y: Vec<f32> = x.iter().map(|v| (v * 8.0).round() / 8.0).collect();
        let w: Vec<f32> = (0..100).map(|i| (i % 7) as f32).collect();
        let mut whole = ErrorStats::new();
        whole.add_weighted(&x, &y, &w).unwrap();
        let mut a = ErrorStats::new();
        let mut b = ErrorStats::new();
        a.add_weighted(&x[..37], &y[..37], &w[..37]).unwrap();
        b.add_weighted(&x[37..], &y[37..], &w[37..]).unwrap();
        b.merge(&a);
        assert_eq!(b.count, whole.count);
        assert!((b.sum_err_sq - whole.sum_err_sq).abs() < 1e-12);
        assert!((b.sqnr_db() - whole.sqnr_db()).abs() < 1e-9);
        assert_eq!(b.max_abs_err, whole.max_abs_err);
    }

    #[test]
    fn weights_select_what_counts() {
        let mut s = ErrorStats::new();
        s.add_weighted(&[1.0, 5.0], &[1.0, 0.0], &[1.0, 0.0])
            .unwrap();
        assert_eq!(s.sqnr_db(), f64::INFINITY);
        assert_eq!(s.max_abs_err, 0.0);
        s.add_weighted(&[2.0], &[1.0], &[3.0]).unwrap();
        assert_eq!(s.mse(), 3.0 / 4.0);
    }

    #[test]
    fn length_and_weight_errors() {
        let mut s = ErrorStats::new();
        assert!(s.add(&[1.0], &[]).is_err());
        assert!(s.add_weighted(&[1.0], &[1.0], &[]).is_err());
        assert!(s.add_weighted(&[1.0], &[1.0], &[-1.0]).is_err());
        assert!(s.add_weighted(&[1.0], &[1.0], &[f32::NAN]).is_err());
        assert_eq!(s.count, 0);
    }
}
