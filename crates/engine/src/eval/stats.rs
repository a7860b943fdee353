//! Per-position scores and their aggregation, with the estimators llama-perplexity prints
//! (mean ± standard error of the mean, log-PPL ratio with covariance, percentiles interpolated
//! between order statistics), so figures can be compared line by line.

/// One scored position: the model's negative log-likelihood of the actual next token and, given
/// base log-probabilities, its divergence from them.
#[derive(Clone, Copy, Debug, Default)]
pub struct PositionStats {
    pub nll: f32,
    pub nll_base: f32,
    pub kld: f64,
    pub p_diff: f32,
    pub same_top: bool,
}

/// Scores `logits` for next token `tok`; writes log-probabilities into `save` when given, and
/// compares against `base` log-probabilities when given. Base entries at or below ln p = -16 are
/// left out of the divergence, as llama.cpp's 16-nat log-prob window does.
pub fn score_position(
    logits: &[f32],
    tok: usize,
    base: Option<&[f32]>,
    save: Option<&mut [f32]>,
) -> PositionStats {
    let (mut max, mut imax) = (logits[0], 0);
    for (i, &v) in logits.iter().enumerate().skip(1) {
        if v > max {
            max = v;
            imax = i;
        }
    }
    let sum: f64 = logits.iter().map(|&v| (v - max).exp() as f64).sum();
    let lse = sum.ln() as f32;
    let nll = max + lse - logits[tok];
    let norm = max + lse;
    if let Some(s) = save {
        s.iter_mut().zip(logits).for_each(|(o, &v)| *o = v - norm);
    }
    let mut st = PositionStats {
        nll,
        ..Default::default()
    };
    if let Some(b) = base {
        let (mut bmax, mut ibmax) = (b[0], 0);
        let mut kld = 0f64;
        for (i, (&lb, &l)) in b.iter().zip(logits).enumerate() {
            if lb > bmax {
                bmax = lb;
                ibmax = i;
            }
            if lb > -16.0 {
                kld += (lb.exp() * (lb - l + norm)) as f64;
            }
        }
        st.kld = kld;
        st.nll_base = -b[tok];
        st.p_diff = (-nll).exp() - b[tok].exp();
        st.same_top = imax == ibmax;
    }
    st
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub err: f64,
}

/// Mean and standard error of the mean from running sums (llama.cpp: no error below 11 samples).
fn mean_err(sum: f64, sum2: f64, n: usize) -> Estimate {
    if n == 0 {
        return Estimate {
            value: 0.0,
            err: 0.0,
        };
    }
    let f = sum / n as f64;
    let var = sum2 / n as f64 - f * f;
    let err = if var > 0.0 && n > 10 {
        (var / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Estimate { value: f, err }
}

/// Running sums over scored positions.
#[derive(Clone, Debug, Default)]
pub struct KldStats {
    pub count: usize,
    sum_nll: f64,
    sum_nll2: f64,
    sum_nll_base: f64,
    sum_nll_base2: f64,
    sum_nll_nll_base: f64,
    sum_kld: f64,
    sum_kld2: f64,
    sum_p_diff: f64,
    sum_p_diff2: f64,
    sum_p_diff4: f64,
    n_same_top: usize,
    kld_values: Vec<f32>,
    p_diff_values: Vec<f32>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub max: f64,
    pub p99_9: f64,
    pub p99: f64,
    pub p95: f64,
    pub p90: f64,
    pub median: f64,
    pub p10: f64,
    pub p5: f64,
    pub p1: f64,
    pub p0_1: f64,
    pub min: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct KldReport {
    pub ppl: Estimate,
    pub ppl_base: Estimate,
    /// Correlation of the two models' per-token log-likelihoods.
    pub ln_ppl_correlation: f64,
    pub ln_ppl_ratio: Estimate,
    pub ppl_ratio: Estimate,
    pub ppl_diff: Estimate,
    pub kld: Estimate,
    pub kld_percentiles: Percentiles,
    /// Mean of p(token) − p_base(token).
    pub p_diff: Estimate,
    /// Root mean square of that difference.
    pub rms_p_diff: Estimate,
    pub p_diff_percentiles: Percentiles,
    /// Fraction of positions where both models rank the same token first.
    pub same_top: Estimate,
}

impl KldStats {
    pub fn add(&mut self, s: &PositionStats, with_base: bool) {
        let nll = s.nll as f64;
        self.count += 1;
        self.sum_nll += nll;
        self.sum_nll2 += nll * nll;
        if !with_base {
            return;
        }
        let nb = s.nll_base as f64;
        self.sum_nll_base += nb;
        self.sum_nll_base2 += nb * nb;
        self.sum_nll_nll_base += nll * nb;
        self.sum_kld += s.kld;
        self.sum_kld2 += s.kld * s.kld;
        let d = s.p_diff as f64;
        self.sum_p_diff += d;
        self.sum_p_diff2 += d * d;
        self.sum_p_diff4 += d * d * d * d;
        self.n_same_top += s.same_top as usize;
        self.kld_values.push(s.kld as f32);
        self.p_diff_values.push(s.p_diff);
    }

    /// exp(mean NLL) ± its propagated standard error.
    pub fn ppl(&self) -> Estimate {
        let l = mean_err(self.sum_nll, self.sum_nll2, self.count);
        let v = l.value.exp();
        Estimate {
            value: v,
            err: v * l.err,
        }
    }

    pub fn mean_kld(&self) -> Estimate {
        mean_err(self.sum_kld, self.sum_kld2, self.count)
    }

    pub fn same_top(&self) -> Estimate {
        let p = self.n_same_top as f64 / self.count.max(1) as f64;
        let err = if self.count > 1 {
            (p * (1.0 - p) / (self.count - 1) as f64).sqrt()
        } else {
            0.0
        };
        Estimate { value: p, err }
    }

    fn covariance(&self) -> f64 {
        let n = self.count as f64;
        if self.count < 10 {
            return 0.0;
        }
        (self.sum_nll_nll_base / n - (self.sum_nll / n) * (self.sum_nll_base / n)) / (n - 1.0)
    }

    pub fn kld_report(&self) -> KldReport {
        let ln_ppl = mean_err(self.sum_nll, self.sum_nll2, self.count);
        let ln_base = mean_err(self.sum_nll_base, self.sum_nll_base2, self.count);
        let ppl = self.ppl();
        let bv = ln_base.value.exp();
        let ppl_base = Estimate {
            value: bv,
            err: bv * ln_base.err,
        };
        let cov = self.covariance();
        let ratio_err = (ln_ppl.err.powi(2) + ln_base.err.powi(2) - 2.0 * cov)
            .max(0.0)
            .sqrt();
        let ln_ratio = Estimate {
            value: ln_ppl.value - ln_base.value,
            err: ratio_err,
        };
        let rv = ln_ratio.value.exp();
        let diff_err = (ppl.err.powi(2) + ppl_base.err.powi(2) - 2.0 * ppl.value * bv * cov)
            .max(0.0)
            .sqrt();
        let mse = mean_err(self.sum_p_diff2, self.sum_p_diff4, self.count);
        let rms = mse.value.sqrt();
        KldReport {
            ppl,
            ppl_base,
            ln_ppl_correlation: cov / (ln_ppl.err * ln_base.err),
            ln_ppl_ratio: ln_ratio,
            ppl_ratio: Estimate {
                value: rv,
                err: rv * ratio_err,
            },
            ppl_diff: Estimate {
                value: ppl.value - bv,
                err: diff_err,
            },
            kld: self.mean_kld(),
            kld_percentiles: percentiles(&self.kld_values),
            p_diff: mean_err(self.sum_p_diff, self.sum_p_diff2, self.count),
            rms_p_diff: Estimate {
                value: rms,
                err: if rms > 0.0 { 0.5 / rms * mse.err } else { 0.0 },
            },
            p_diff_percentiles: percentiles(&self.p_diff_values),
            same_top: self.same_top(),
        }
    }
}

fn percentiles(values: &[f32]) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    let mut v = values.to_vec();
    v.sort_by(f32::total_cmp);
    let n = v.len();
    let at = |f: f64| {
        let p = f * (n - 1) as f64;
        let i = p as usize;
        let frac = p - i as f64;
        (1.0 - frac) * v[i] as f64 + frac * v[(i + 1).min(n - 1)] as f64
    };
    let median = if n % 2 == 0 {
        0.5 * (v[n / 2] as f64 + v[n / 2 - 1] as f64)
    } else {
        v[n / 2] as f64
    };
    Percentiles {
        max: v[n - 1] as f64,
        p99_9: at(0.999),
        p99: at(0.99),
        p95: at(0.95),
        p90: at(0.90),
        median,
        p10: at(0.10),
        p5: at(0.05),
        p1: at(0.01),
        p0_1: at(0.001),
        min: v[0] as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_distributions_have_zero_divergence() {
        let logits = [1.0f32, 2.0, 0.5, -3.0];
        let mut lp = [0f32; 4];
        let s = score_position(&logits, 1, None, Some(&mut lp));
        let total: f32 = lp.iter().map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!((s.nll + lp[1]).abs() < 1e-6);
        let k = score_position(&logits, 1, Some(&lp), None);
        assert!(k.kld.abs() < 1e-6 && k.p_diff.abs() < 1e-6 && k.same_top);
    }

    #[test]
    fn kld_matches_the_definition() {
        let base = [0.7f64, 0.2, 0.1];
        let q = [0.5f64, 0.3, 0.2];
        let lb: Vec<f32> = base.iter().map(|p| p.ln() as f32).collect();
        let logits: Vec<f32> = q.iter().map(|p| (p.ln() + 3.0) as f32).collect();
        let s = score_position(&logits, 2, Some(&lb), None);
        let want: f64 = base.iter().zip(&q).map(|(p, q)| p * (p / q).ln()).sum();
        assert!((s.kld - want).abs() < 1e-6, "{} vs {want}", s.kld);
        assert!((s.p_diff as f64 - 0.1).abs() < 1e-6);
        assert!(s.same_top);
    }

    #[test]
    fn percentiles_interpolate() {
        let v: Vec<f32> = (0..=100).map(|i| i as f32).collect();
        let p = percentiles(&v);
        assert_eq!((p.min, p.median, p.max), (0.0, 50.0, 100.0));
        assert!((p.p99_9 - 99.9).abs() < 1e-9 && (p.p10 - 10.0).abs() < 1e-9);
    }
}
