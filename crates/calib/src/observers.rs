//! Observers: what calibration activations say about the int8 range of one input site.
//!
//! A [`SiteObserver`] sees the rows entering a site window by window and keeps what every
//! observer needs — running and per-column min/max, a moving average of each window's min/max,
//! and a histogram of the values — so one calibration pass serves all of them. [`choose`] turns
//! that into a clipping range by the chosen rule:
//!
//! - `minmax`: the extremes seen (no clipping).
//! - `ema`: a moving average of each window's extremes (`c = 0.1`; PyTorch's 0.01 suits
//!   thousands of batches, calibration here sees tens of windows).
//! - `percentile[:P]` (P = 99.99 by default): the P-th percentile of |x| (symmetric) or the
//!   (100 − P)-th and P-th of x (asymmetric).
//! - `mse`: the clip, among 100 shrinkings of the extremes, whose int8 round trip has the least
//!   squared error over the histogram.
//! - `entropy`: TensorRT's rule — the threshold on |x| whose 128-level quantized distribution has
//!   the least KL divergence from the observed one (symmetric by nature: an asymmetric scheme
//!   gets the symmetric threshold).
//!
//! The histogram is signed, 4096 bins over `[−R, R]`; when a value beyond `R` arrives, `R`
//! doubles and pairs of bins merge, so no second pass is needed and the resolution is at least
//! 1/2048 of the largest magnitude.

use serde::Serialize;

/// The rule that picks a site's clipping range.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum ObserverKind {
    MinMax,
    MovingAverage,
    Percentile(f64),
    Mse,
    Entropy,
}

impl ObserverKind {
    /// `minmax`, `ema`, `percentile` or `percentile:99.9`, `mse`, `entropy`.
    pub fn parse(s: &str) -> Result<ObserverKind, String> {
        let s = s.trim().to_ascii_lowercase();
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n.to_string(), Some(a.to_string())),
            None => (s.clone(), None),
        };
        let kind = match name.as_str() {
            "minmax" => ObserverKind::MinMax,
            "ema" | "moving-average" => ObserverKind::MovingAverage,
            "percentile" => {
                let p = match &arg {
                    Some(a) => a.parse::<f64>().map_err(|_| format!("percentile {a:?} is not a number"))?,
                    None => 99.99,
                };
                if !(p > 50.0 && p <= 100.0) {
                    return Err(format!("percentile {p}: give a value in (50, 100]"));
                }
                return Ok(ObserverKind::Percentile(p));
            }
            "mse" => ObserverKind::Mse,
            "entropy" | "kl" => ObserverKind::Entropy,
            _ => {
                return Err(format!(
                    "unknown observer {s:?}; expected minmax, ema, percentile[:P], mse or entropy"
                ))
            }
        };
        if arg.is_some() {
            return Err(format!("observer {name} takes no argument"));
        }
        Ok(kind)
    }

    pub fn name(&self) -> String {
        match self {
            ObserverKind::MinMax => "minmax".into(),
            ObserverKind::MovingAverage => "ema".into(),
            ObserverKind::Percentile(p) => format!("percentile:{p}"),
            ObserverKind::Mse => "mse".into(),
            ObserverKind::Entropy => "entropy".into(),
        }
    }
}

/// Moving-average constant of [`ObserverKind::MovingAverage`].
pub const EMA_C: f32 = 0.1;
const BINS: usize = 4096;

/// Everything the observers need from one site's calibration activations.
#[derive(Clone, Debug)]
pub struct SiteObserver {
    pub cols: usize,
    pub min: f32,
    pub max: f32,
    pub col_min: Vec<f32>,
    pub col_max: Vec<f32>,
    ema: Option<(f32, f32)>,
    /// Counts over `[−range, range]` in [`BINS`] equal bins.
    hist: Vec<u64>,
    range: f32,
    pub values: u64,
    /// The first non-finite value seen: (row, column).
    pub bad: Option<(usize, usize)>,
}

impl SiteObserver {
    pub fn new(cols: usize) -> SiteObserver {
        SiteObserver {
            cols,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            col_min: vec![f32::INFINITY; cols],
            col_max: vec![f32::NEG_INFINITY; cols],
            ema: None,
            hist: vec![0; BINS],
            range: 0.0,
            values: 0,
            bad: None,
        }
    }

    /// One window's rows (`x.len()` a multiple of `cols`).
    pub fn observe(&mut self, x: &[f32]) {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for (r, row) in x.chunks_exact(self.cols).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                if !v.is_finite() {
                    self.bad.get_or_insert((r, c));
                    continue;
                }
                lo = lo.min(v);
                hi = hi.max(v);
                self.col_min[c] = self.col_min[c].min(v);
                self.col_max[c] = self.col_max[c].max(v);
            }
        }
        if lo > hi {
            return;
        }
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        self.ema = Some(match self.ema {
            None => (lo, hi),
            Some((a, b)) => (a + EMA_C * (lo - a), b + EMA_C * (hi - b)),
        });
        let m = lo.abs().max(hi.abs());
        if self.range == 0.0 {
            self.range = m.max(f32::MIN_POSITIVE);
        }
        while m > self.range {
            self.widen();
        }
        let w = 2.0 * self.range / BINS as f32;
        for &v in x.iter().filter(|v| v.is_finite()) {
            let b = (((v + self.range) / w) as usize).min(BINS - 1);
            self.hist[b] += 1;
            self.values += 1;
        }
    }

    /// Doubles the histogram's range: bin pairs merge into the middle half.
    fn widen(&mut self) {
        let mut h = vec![0u64; BINS];
        for (i, &c) in self.hist.iter().enumerate() {
            h[BINS / 4 + i / 2] += c;
        }
        self.hist = h;
        self.range *= 2.0;
    }

    /// (bin centre, count) for every non-empty bin.
    fn centres(&self) -> impl Iterator<Item = (f32, u64)> + '_ {
        let w = 2.0 * self.range / BINS as f32;
        self.hist
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(move |(i, &c)| (-self.range + (i as f32 + 0.5) * w, c))
    }

    /// The histogram of |x|: [`BINS`]/2 bins over `[0, range]`.
    fn magnitudes(&self) -> Vec<u64> {
        let half = BINS / 2;
        (0..half).map(|i| self.hist[half + i] + self.hist[half - 1 - i]).collect()
    }

    /// The smallest value `t` with at least a fraction `q` of the values ≤ `t`.
    fn quantile(&self, q: f64) -> f32 {
        let w = 2.0 * self.range / BINS as f32;
        -self.range + self.upper_edge(&self.hist, q) as f32 * w
    }

    fn abs_quantile(&self, q: f64) -> f32 {
        let w = self.range / (BINS / 2) as f32;
        self.upper_edge(&self.magnitudes(), q) as f32 * w
    }

    /// How many of `counts`' bins it takes to hold a fraction `q` of the values (the upper edge
    /// of the quantile's bin, in bins).
    fn upper_edge(&self, counts: &[u64], q: f64) -> usize {
        let target = ((q * self.values as f64).ceil() as u64).max(1);
        let mut seen = 0;
        counts
            .iter()
            .position(|&c| {
                seen += c;
                seen >= target
            })
            .map_or(counts.len(), |i| i + 1)
    }

    /// Expected squared error of the int8 round trip with `p` over the histogram, and the
    /// values' mean square (so the caller can report the error relative to the signal).
    pub fn round_trip_error(&self, p: &Int8) -> (f64, f64) {
        let (mut err, mut sig) = (0f64, 0f64);
        for (v, c) in self.centres() {
            let e = (v - p.round_trip(v, 0)) as f64;
            err += c as f64 * e * e;
            sig += c as f64 * (v as f64) * (v as f64);
        }
        let n = self.values.max(1) as f64;
        (err / n, sig / n)
    }

    /// TensorRT's entropy threshold on |x|.
    fn entropy_threshold(&self) -> f32 {
        const LEVELS: usize = 128;
        let mags = self.magnitudes();
        let half = mags.len();
        let w = self.range / half as f32;
        let mut best = (f64::INFINITY, self.range);
        let mut i = LEVELS;
        while i <= half {
            // P: the first i bins, everything beyond folded into the last.
            let mut p: Vec<f64> = mags[..i].iter().map(|&c| c as f64).collect();
            p[i - 1] += mags[i..].iter().map(|&c| c as f64).sum::<f64>();
            // Q: P merged into LEVELS groups, each group's mass spread over its non-empty bins.
            let mut q = vec![0f64; i];
            for g in 0..LEVELS {
                let (a, b) = (g * i / LEVELS, ((g + 1) * i / LEVELS).max(g * i / LEVELS + 1));
                let mass: f64 = mags[a..b].iter().map(|&c| c as f64).sum();
                let nonzero = mags[a..b].iter().filter(|&&c| c > 0).count();
                if nonzero > 0 {
                    for k in a..b {
                        if mags[k] > 0 {
                            q[k] = mass / nonzero as f64;
                        }
                    }
                }
            }
            let (sp, sq) = (p.iter().sum::<f64>(), q.iter().sum::<f64>());
            if sp > 0.0 && sq > 0.0 {
                let kl: f64 = p
                    .iter()
                    .zip(&q)
                    .filter(|(&a, _)| a > 0.0)
                    .map(|(&a, &b)| {
                        let (a, b) = (a / sp, (b / sq).max(1e-12));
                        a * (a / b).ln()
                    })
                    .sum();
                if kl < best.0 {
                    best = (kl, (i as f32 + 0.5) * w);
                }
            }
            i += 16;
        }
        best.1
    }
}

/// An int8 quantizer: per tensor (one scale) or per input column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Int8 {
    pub scale: Vec<f32>,
    /// Zero points (0 when symmetric), in the code domain.
    pub zero: Vec<f32>,
    pub symmetric: bool,
}

impl Int8 {
    /// The int8 grid covering `[lo, hi]` (widened to contain 0, as every scheme's does).
    pub fn from_range(lo: f32, hi: f32, symmetric: bool) -> (f32, f32) {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        if symmetric {
            let a = lo.abs().max(hi).max(1e-8);
            (a / 127.0, 0.0)
        } else {
            let s = ((hi - lo) / 255.0).max(1e-8);
            (s, (-128.0 - lo / s).round())
        }
    }

    /// `v` rounded onto the grid of column `c` and back: `clamp(round(v / s) + z, −128, 127)`,
    /// half to even, exactly as compressed-tensors (and so vLLM) apply a stored `input_scale`.
    #[inline]
    pub fn round_trip(&self, v: f32, c: usize) -> f32 {
        let i = if self.scale.len() == 1 { 0 } else { c };
        let (s, z) = (self.scale[i], self.zero[i]);
        (((v / s).round_ties_even() + z).clamp(-128.0, 127.0) - z) * s
    }
}

/// Per tensor, or one range per input column (`minmax` only).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum Granularity {
    Tensor,
    Channel,
}

/// What an observer chose for one site.
#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    pub quant: Int8,
    /// The clipping range chosen (per tensor; per channel: the widest column's).
    pub lo: f32,
    pub hi: f32,
    /// The chosen range's width ÷ the observed extremes' (1 = no clipping).
    pub clip_ratio: f32,
    /// The round trip's mean squared error ÷ the values' mean square, over the histogram.
    pub relative_error: f64,
}

/// Chooses a site's int8 quantizer by `kind`.
pub fn choose(o: &SiteObserver, kind: ObserverKind, granularity: Granularity, symmetric: bool) -> Result<Choice, String> {
    if o.values == 0 {
        return Err("no calibration values reached this site".into());
    }
    let width = |lo: f32, hi: f32| if symmetric { lo.abs().max(hi.abs()) } else { hi - lo };
    let full = width(o.min.min(0.0), o.max.max(0.0)).max(f32::MIN_POSITIVE);
    let tensor = |lo: f32, hi: f32| {
        let (s, z) = Int8::from_range(lo, hi, symmetric);
        Int8 { scale: vec![s], zero: vec![z], symmetric }
    };
    let (quant, lo, hi) = match granularity {
        Granularity::Channel => {
            if kind != ObserverKind::MinMax {
                return Err(format!("per-channel activation ranges take the minmax observer, not {}", kind.name()));
            }
            let (scale, zero): (Vec<f32>, Vec<f32>) = o
                .col_min
                .iter()
                .zip(&o.col_max)
                .map(|(&a, &b)| if a <= b { Int8::from_range(a, b, symmetric) } else { (1e-8, 0.0) })
                .unzip();
            (Int8 { scale, zero, symmetric }, o.min, o.max)
        }
        Granularity::Tensor => {
            let (lo, hi) = match kind {
                ObserverKind::MinMax => (o.min, o.max),
                ObserverKind::MovingAverage => o.ema.expect("values were seen"),
                ObserverKind::Percentile(p) => {
                    if symmetric {
                        let a = o.abs_quantile(p / 100.0).min(o.min.abs().max(o.max.abs()));
                        (-a, a)
                    } else {
                        (o.quantile(1.0 - p / 100.0).max(o.min), o.quantile(p / 100.0).min(o.max))
                    }
                }
                ObserverKind::Entropy => {
                    let a = o.entropy_threshold().min(o.min.abs().max(o.max.abs()));
                    (-a, a)
                }
                ObserverKind::Mse => {
                    let mut best = (f64::INFINITY, o.min, o.max);
                    for k in 0..100 {
                        let f = 1.0 - 0.007 * k as f32; // 1 … 0.307
                        let (lo, hi) = (o.min * f, o.max * f);
                        let (e, _) = o.round_trip_error(&tensor(lo, hi));
                        if e < best.0 {
                            best = (e, lo, hi);
                        }
                    }
                    (best.1, best.2)
                }
            };
            (tensor(lo, hi), lo, hi)
        }
    };
    let (err, sig) = match granularity {
        Granularity::Tensor => o.round_trip_error(&quant),
        // Per channel the histogram (over all columns) cannot say: report the tensor bound.
        Granularity::Channel => o.round_trip_error(&tensor(o.min, o.max)),
    };
    Ok(Choice {
        clip_ratio: width(lo.min(0.0), hi.max(0.0)) / full,
        relative_error: if sig > 0.0 { err / sig } else { 0.0 },
        quant,
        lo,
        hi,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic Laplace values (b = 1): their extremes sit far out in a thin tail.
    fn heavy_tailed(n: usize) -> Vec<f32> {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let u = ((s >> 11) as f64 / (1u64 << 53) as f64).clamp(1e-12, 1.0 - 1e-12);
                let v = if u < 0.5 { (2.0 * u).ln() } else { -(2.0 * (1.0 - u)).ln() };
                v as f32
            })
            .collect()
    }

    fn observed(cols: usize, x: &[f32]) -> SiteObserver {
        let mut o = SiteObserver::new(cols);
        for w in x.chunks(cols * 64) {
            o.observe(w);
        }
        o
    }

    #[test]
    fn parses_every_observer_and_refuses_others() {
        assert_eq!(ObserverKind::parse("MSE").unwrap(), ObserverKind::Mse);
        assert_eq!(ObserverKind::parse("percentile").unwrap(), ObserverKind::Percentile(99.99));
        assert_eq!(ObserverKind::parse("percentile:99.9").unwrap(), ObserverKind::Percentile(99.9));
        assert!(ObserverKind::parse("percentile:20").is_err());
        assert!(ObserverKind::parse("mse:3").is_err());
        assert!(ObserverKind::parse("histogram").unwrap_err().contains("expected minmax"));
    }

    #[test]
    fn the_histogram_widens_without_losing_values() {
        let mut o = SiteObserver::new(2);
        o.observe(&[0.1, -0.2]);
        o.observe(&[5.0, -40.0, 1.0, 2.0]);
        assert_eq!(o.values, 6);
        assert_eq!(o.hist.iter().sum::<u64>(), 6);
        assert!(o.range >= 40.0);
        assert_eq!((o.min, o.max), (-40.0, 5.0));
        assert_eq!(o.col_min, vec![0.1, -40.0]);
        assert_eq!(o.col_max, vec![5.0, 2.0]);
    }

    #[test]
    fn clipping_observers_clip_a_thin_tail_and_lower_the_error() {
        let x = heavy_tailed(64 * 4000);
        let o = observed(64, &x);
        let minmax = choose(&o, ObserverKind::MinMax, Granularity::Tensor, true).unwrap();
        assert!((minmax.clip_ratio - 1.0).abs() < 1e-6);
        // On a Laplace tail, clipping the rare extremes buys resolution for everything else.
        for kind in [ObserverKind::Percentile(99.99), ObserverKind::Mse] {
            let c = choose(&o, kind, Granularity::Tensor, true).unwrap();
            assert!(c.clip_ratio < 0.95, "{kind:?} kept {}", c.clip_ratio);
            assert!(c.relative_error < minmax.relative_error, "{kind:?}: {} vs {}", c.relative_error, minmax.relative_error);
        }
        // The entropy rule matches distributions, not squared error: it clips, by how much is
        // its own business.
        let e = choose(&o, ObserverKind::Entropy, Granularity::Tensor, true).unwrap();
        assert!(e.clip_ratio < 1.0 && e.clip_ratio > 0.05, "entropy kept {}", e.clip_ratio);
        // MSE is the best of its own candidates, minmax among them.
        let mse = choose(&o, ObserverKind::Mse, Granularity::Tensor, true).unwrap();
        let pct = choose(&o, ObserverKind::Percentile(99.99), Granularity::Tensor, true).unwrap();
        assert!(mse.relative_error <= pct.relative_error * 1.05);
    }

    #[test]
    fn the_moving_average_sits_between_window_extremes_and_the_global_ones() {
        let mut o = SiteObserver::new(1);
        o.observe(&[-1.0, 1.0]);
        o.observe(&[-3.0, 3.0]);
        let c = choose(&o, ObserverKind::MovingAverage, Granularity::Tensor, false).unwrap();
        assert!((c.hi - (1.0 + EMA_C * 2.0)).abs() < 1e-6 && c.hi < 3.0);
    }

    #[test]
    fn asymmetric_grids_put_zero_on_a_code_and_cover_the_range() {
        let (s, z) = Int8::from_range(0.0, 6.0, false);
        let q = Int8 { scale: vec![s], zero: vec![z], symmetric: false };
        assert_eq!(q.round_trip(0.0, 0), 0.0);
        assert!((q.round_trip(6.0, 0) - 6.0).abs() <= s / 2.0 + 1e-6);
        assert!((q.round_trip(9.0, 0) - 6.0).abs() <= s);
        // Per channel: each column its own range.
        let mut o = SiteObserver::new(2);
        o.observe(&[1.0, 100.0, -1.0, -100.0]);
        let c = choose(&o, ObserverKind::MinMax, Granularity::Channel, true).unwrap();
        assert!((c.quant.scale[0] * 127.0 - 1.0).abs() < 1e-6 && (c.quant.scale[1] * 127.0 - 100.0).abs() < 1e-4);
        assert!(choose(&o, ObserverKind::Mse, Granularity::Channel, true).is_err());
    }

    #[test]
    fn non_finite_values_are_reported_not_counted() {
        let mut o = SiteObserver::new(2);
        o.observe(&[1.0, 2.0, f32::NAN, 3.0]);
        assert_eq!(o.bad, Some((1, 0)));
        assert_eq!(o.values, 3);
    }
}
