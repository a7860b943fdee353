//! The options every run command (`perplexity`, `generate`, `bench`) shares: worker threads and
//! how activations meet quantized weights. The model file itself is
//! [`lowbit_quant::sources::model_file::ModelFile`] (a GGUF file, or an HF folder converted).

use anyhow::{bail, Context, Result};
use lowbit_engine::kernels::{Activations, MatmulOptions};
pub use lowbit_quant::sources::model_file::ModelFile;

/// `--activations`: how matrix products treat the activations.
#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum ActivationsArg {
    /// The fastest path: 8-bit activations and integer dot products for a few tokens, f32 GEMM
    /// on dequantized weights for batches of 16 tokens or more.
    #[default]
    Auto,
    /// 8-bit activations for every product, as llama.cpp computes: its figures, to compare.
    Q8,
    /// f32 activations for every product: no activation rounding at all.
    F32,
}

impl ActivationsArg {
    pub fn options(self) -> MatmulOptions {
        let auto = MatmulOptions::default();
        match self {
            ActivationsArg::Auto => auto,
            ActivationsArg::Q8 => MatmulOptions {
                activations: Activations::Q8,
                gemm_min_tokens: usize::MAX,
                ..auto
            },
            ActivationsArg::F32 => MatmulOptions {
                activations: Activations::F32,
                ..auto
            },
        }
    }
}

/// Runs a quantized checkpoint folder as its readers do: its static `input_scale`s or dynamic
/// per-token int8 activations at every quantized module's input, through int8 × int8 products
/// when `integer` (its int8 weights installed) or fake quantization otherwise
/// (`Model::int8_linears` then says how many run in integers).
pub fn apply_folder_activations(mf: &ModelFile, model: &mut lowbit_engine::model::Model<'_>, integer: bool) -> Result<()> {
    let Some(a) = mf.activations() else { return Ok(()) };
    model.input_quant = Some(lowbit_calib::act_quant::folder_quantizer(a)?);
    if integer {
        lowbit_calib::int8_weights::install(model, mf.int8_linears()?)?;
    }
    Ok(())
}

/// Sizes the global rayon pool; `None` keeps one thread per core.
pub fn set_threads(n: Option<usize>) -> Result<()> {
    if let Some(n) = n {
        if n == 0 {
            bail!("--threads must be at least 1");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("cannot start worker threads")?;
    }
    Ok(())
}

/// `--threads`, or one per core.
pub fn threads(n: Option<usize>) -> Result<usize> {
    match n {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)),
    }
}
