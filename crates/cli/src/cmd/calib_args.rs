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
