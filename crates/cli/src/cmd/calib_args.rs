//! The options every command that quantizes shares: which method, its tuning, and the
//! calibration text.

use lowbit_calib::quantize_file::CalibSpec;
use lowbit_quant::methods::MethodOptions;
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug)]
pub struct MethodArgs {
    /// rtn (round to nearest; importance-weighted with --calib or --imatrix), gptq, awq or hqq
    /// (calibration-free; types with a zero point only).
    #[arg(long, default_value = "rtn")]
    pub method: String,
    /// GPTQ: damping of the Hessian's diagonal, relative to its mean.
    #[arg(long, default_value_t = 0.01)]
    pub damp: f64,
    /// GPTQ: sweep columns in their own order instead of by decreasing activation energy
    /// (act-order, the default, fits every block's scales before the sweep).
    #[arg(long)]
    pub no_act_order: bool,
    /// GPTQ: fit every block's scales from the original weights before the sweep.
    #[arg(long)]
    pub static_groups: bool,
}

impl MethodArgs {
    pub fn options(&self) -> MethodOptions {
        let mut o = MethodOptions::default();
        o.gptq.damp = self.damp;
        o.gptq.act_order = !self.no_act_order;
        o.gptq.static_groups = self.static_groups;
        o
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct CalibArgs {
    /// Calibration text (plain UTF-8; e.g. WikiText-2's *valid* split — never the text you
    /// evaluate on). Required by gptq and awq; with rtn it makes an importance matrix on the fly.
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// At most this many calibration windows.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    pub calib_chunks: u64,
    /// Tokens per calibration window.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(2..))]
    pub calib_ctx: u64,
    /// Calibrate every layer on the unquantized model's activations instead of the outputs of
    /// the layers already quantized.
    #[arg(long)]
    pub calib_parallel: bool,
}

impl CalibArgs {
    pub fn spec(&self) -> Option<CalibSpec> {
        self.calib.as_ref().map(|p| CalibSpec {
            path: p.clone(),
            chunks: Some(self.calib_chunks as usize),
            ctx: self.calib_ctx as usize,
        })
    }

    pub fn sequential(&self) -> bool {
        !self.calib_parallel
    }
}

/// `--target-*`: a size or quality to meet, through the sensitivity table.
#[derive(clap::Args, Clone, Debug)]
pub struct BudgetArgs {
    /// The whole output file at most this large: bytes, or with KiB/MiB/GiB (or kB/MB/GB).
    #[arg(long, conflicts_with_all = ["target_bpw", "target_kld", "target_ppl_increase"])]
    pub target_size: Option<String>,
    /// The whole output file at most this many bits per weight.
    #[arg(long, conflicts_with_all = ["target_kld", "target_ppl_increase"])]
    pub target_bpw: Option<f64>,
    /// The smallest file whose KLD on held-out calibration windows is at most this.
    #[arg(long, conflicts_with = "target_ppl_increase")]
    pub target_kld: Option<f64>,
    /// The smallest file whose perplexity on held-out calibration windows rises at most this
    /// much (`1%` or `0.01`).
    #[arg(long)]
    pub target_ppl_increase: Option<String>,
    /// The sensitivity table (default: next to the model, `MODEL.sensitivity-METHOD.json`).
    #[arg(long)]
    pub sensitivity: Option<PathBuf>,
    /// Compute the sensitivity table again even when one is cached.
    #[arg(long)]
    pub recompute_sensitivity: bool,
    /// Calibration windows for the sensitivity statistics.
    #[arg(long, default_value_t = 32)]
    pub sensitivity_windows: usize,
    /// Windows after them held out to measure KLD (the table's and the verification's).
    #[arg(long, default_value_t = 2)]
    pub held_out: usize,
}

impl BudgetArgs {
    pub fn spec(
        &self,
        model: &std::path::Path,
        method: &MethodArgs,
        calib: &CalibArgs,
    ) -> anyhow::Result<Option<lowbit_calib::budget::BudgetSpec>> {
        use anyhow::Context;
        use lowbit_calib::budget::{parse_size, BudgetSpec, BudgetTarget};
        let target = if let Some(s) = &self.target_size {
            BudgetTarget::Bytes(parse_size(s).map_err(|e| anyhow::anyhow!("--target-size {e}"))?)
        } else if let Some(b) = self.target_bpw {
            anyhow::ensure!(b > 0.0 && b.is_finite(), "--target-bpw must be positive");
            BudgetTarget::Bpw(b)
        } else if let Some(k) = self.target_kld {
            anyhow::ensure!(k > 0.0 && k.is_finite(), "--target-kld must be positive");
            BudgetTarget::Kld(k)
        } else if let Some(p) = &self.target_ppl_increase {
            let v: f64 = match p.trim().strip_suffix('%') {
                Some(x) => x.trim().parse::<f64>().map(|v| v / 100.0),
                None => p.trim().parse::<f64>(),
            }
            .with_context(|| format!("--target-ppl-increase {p:?}: expected e.g. 1% or 0.01"))?;
            anyhow::ensure!(v > 0.0 && v.is_finite(), "--target-ppl-increase must be positive");
            BudgetTarget::PplIncrease(v)
        } else {
            return Ok(None);
        };
        let calib_path = calib
            .calib
            .clone()
            .context("a --target-* needs calibration text for the sensitivity table: give --calib FILE")?;
        // AWQ's scales act on whole input sites, not on single tensors: its allocations are
        // made from round-to-nearest's table.
        let table_method = if method.method == "awq" { "rtn".to_string() } else { method.method.clone() };
        Ok(Some(BudgetSpec {
            target,
            sensitivity: lowbit_calib::sensitivity::SensitivitySpec {
                method: table_method.clone(),
                method_options: method.options(),
                calib: lowbit_calib::quantize_file::CalibSpec {
                    path: calib_path,
                    chunks: Some(self.sensitivity_windows),
                    ctx: calib.calib_ctx as usize,
                },
                held_out: self.held_out.max(1),
            },
            table_path: self
                .sensitivity
                .clone()
                .unwrap_or_else(|| lowbit_calib::sensitivity::cache_path(model, &table_method)),
            recompute: self.recompute_sensitivity,
        }))
    }
}
