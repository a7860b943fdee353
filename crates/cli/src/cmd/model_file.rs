//! Opening the model a run command (`perplexity`, `generate`, `bench`) works on, and the options
//! every such command shares: worker threads and how activations meet quantized weights.

use anyhow::{bail, Context, Result};
use lowbit_engine::kernels::{Activations, MatmulOptions};
use lowbit_files::gguf::{GgufFile, GgufWriter, TensorSpec};
use lowbit_quant::pipeline::{self, SourceModel};
use lowbit_quant::sources::hf::HfSource;
use lowbit_quant::TensorPlan;
use std::path::Path;
use tempfile::TempDir;

/// A GGUF file, or a Hugging Face folder converted into a temporary GGUF file that lives as long
/// as this value. The conversion keeps every tensor in the type the safetensors store it (F32,
/// F16 or BF16: nothing is requantized or widened), so the engine maps the weights in place either
/// way and a folder scores exactly like `lowbit quantize DIR out.gguf` of the same types.
pub struct ModelFile {
    pub file: GgufFile,
    _converted: Option<TempDir>,
}

impl ModelFile {
    pub fn open(path: &Path) -> Result<ModelFile> {
        if !path.is_dir() {
            let file =
                GgufFile::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            return Ok(ModelFile {
                file,
                _converted: None,
            });
        }
        let source = HfSource::open(path)
            .with_context(|| format!("cannot convert the Hugging Face folder {}", path.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("lowbit-hf-")
            .tempdir()
            .context("cannot create a temporary folder for the converted model")?;
        let out = dir.path().join("model.gguf");
        let plans: Vec<TensorPlan> = source
            .tensors()
            .iter()
            .map(|d| TensorPlan {
                name: d.name.clone(),
                target: d.source,
                fell_back_from: None,
                keep: true,
            })
            .collect();
        let specs: Vec<TensorSpec> = source
            .tensors()
            .iter()
            .map(|d| TensorSpec::new(d.name.clone(), &d.dims, d.source))
            .collect();
        let mut writer = GgufWriter::create(&out, source.metadata(), specs)
            .with_context(|| format!("cannot create {}", out.display()))?;
        pipeline::run(&source, &plans, None, &mut writer, &mut |_| {})
            .with_context(|| format!("cannot convert {}", path.display()))?;
        writer
            .finish()
            .with_context(|| format!("cannot finish {}", out.display()))?;
        let file =
            GgufFile::open(&out).with_context(|| format!("cannot read {}", out.display()))?;
        Ok(ModelFile {
            file,
            _converted: Some(dir),
        })
    }
}

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
