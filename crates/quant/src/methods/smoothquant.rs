//! SmoothQuant (Xiao et al., 2023): move the difficulty of quantizing activations into the
//! weights. A few input channels of a linear carry activations orders of magnitude larger than
//! the rest (SmolLM2's MLP down-projection sees values of 3000 beside values of 1), which ruins
//! an int8 activation range; dividing channel `j` of the input by
//!
//! `s_j = max|x_j|^α / max|W_·j|^(1−α)`
//!
//! and multiplying the weights' column `j` by it leaves the product unchanged and balances the
//! two ranges (α = 0.5 by default, the paper's; larger α moves more into the weights).
//!
//! The calibration layer folds `s` into the op before the site, as for AWQ: the norm before
//! Q/K/V and before gate/up, up's rows before down. O is not smoothed (as in the paper and in
//! llm-compressor's mappings): with grouped KV heads its scales would have to be tied across the
//! heads sharing a V, and its input has no outliers to speak of. The weights are then rounded to
//! nearest onto the target (int8 per channel for W8A8); the activations are quantized by the
//! engine with ranges an observer picks on the smoothed model.

use super::rtn::Rtn;
use super::{check_job, Method, Needs, QuantOutcome, SiteJob, SiteScales, TensorJob};
use crate::error::QuantError;

#[derive(Clone, Debug)]
pub struct SmoothQuantOptions {
    /// Migration strength α in [0, 1].
    pub alpha: f32,
}

impl Default for SmoothQuantOptions {
    fn default() -> Self {
        SmoothQuantOptions { alpha: 0.5 }
    }
}

pub struct SmoothQuant(pub SmoothQuantOptions);

const NEEDS: &str = "smoothquant needs each input channel's largest activation: give --calib FILE";

impl Method for SmoothQuant {
    fn name(&self) -> &'static str {
        "smoothquant"
    }

    fn needs(&self) -> Needs {
        // The channel maxima are collected with Σ|x|.
        Needs {
            importance: true,
            mean_abs: true,
            ..Needs::default()
        }
    }

    fn site_scales(&self, site: &SiteJob) -> Result<Option<SiteScales>, QuantError> {
        let Some(first) = site.tensors.first() else {
            return Ok(None);
        };
        if first.name.ends_with("attn_output.weight") || site.tensors.iter().all(|t| t.target.is_float()) {
            return Ok(None);
        }
        for t in &site.tensors {
            check_job(t)?;
        }
        let n = site.stats.cols;
        if site.stats.max_abs.len() != n {
            return Err(QuantError::Method {
                tensor: first.name.into(),
                message: NEEDS.into(),
            });
        }
        let alpha = self.0.alpha.clamp(0.0, 1.0) as f64;
        // The weights' largest magnitude per input column, over every linear of the site.
        let mut w_max = vec![0f64; n];
        for t in &site.tensors {
            for row in t.values.chunks_exact(t.cols) {
                for (m, &v) in w_max.iter_mut().zip(row) {
                    *m = m.max(v.abs() as f64);
                }
            }
        }
        let scales: Vec<f32> = site
            .stats
            .max_abs
            .iter()
            .zip(&w_max)
            .map(|(&a, &w)| {
                if a <= 0.0 || w <= 0.0 {
                    return 1.0;
                }
                (a.powf(alpha) / w.powf(1.0 - alpha)).clamp(1e-5, 1e5) as f32
            })
            .collect();
        let range = |s: Option<&[f32]>| {
            site.stats
                .max_abs
                .iter()
                .enumerate()
                .map(|(j, &a)| a / s.map_or(1.0, |s| s[j] as f64))
                .fold(0f64, f64::max)
        };
        // The "errors" SmoothQuant reports: the site's largest activation before and after,
        // relative to the largest before (what the int8 range has to cover).
        let before = range(None);
        let after = range(Some(&scales));
        Ok(Some(SiteScales {
            scales,
            alpha: alpha as f32,
            error_before: 1.0,
            error_after: if before > 0.0 { after / before } else { 1.0 },
        }))
    }

    fn quantize(&self, job: &TensorJob) -> Result<QuantOutcome, QuantError> {
        Rtn.quantize(job)
    }
}
