//! Decoder-only transformer models loaded from GGUF: the LLaMA family (llama, mistral, qwen2,
//! qwen3) and Gemma 3.

mod attention;
pub mod chat;
mod config;
mod error;
mod forward;
mod input_quant;
mod layer;
pub mod ops;
pub(crate) mod vmath;
mod weights;

pub use config::{Arch, Config};
pub use error::{ModelError, Result};
pub use input_quant::InputQuantizer;
pub(crate) use input_quant::SiteRows;
pub use layer::LinearObserver;
pub use weights::{InputSite, LayerWeights, LinearId, NormId, Weights};

use crate::kernels::MatmulOptions;
use crate::kv_cache::KvCache;
use lowbit_files::GgufFile;

/// A model whose matrices are borrowed from an open GGUF file.
pub struct Model<'a> {
    pub config: Config,
    pub weights: Weights<'a>,
    /// How every matrix product meets the quantized weights; the default is the fastest path
    /// (see [`MatmulOptions`]), change it to measure what activation rounding costs.
    pub matmul: MatmulOptions,
    /// Rounds the inputs of the layer linears (W8A8 activations); `None` reads them as they are.
    pub input_quant: Option<std::sync::Arc<dyn InputQuantizer>>,
}

impl<'a> Model<'a> {
    pub fn load(f: &'a GgufFile) -> Result<Model<'a>> {
        let config = Config::from_gguf(f)?;
        let weights = Weights::load(f, &config)?;
        Ok(Model {
            config,
            weights,
            matmul: MatmulOptions::default(),
            input_quant: None,
        })
    }

    pub fn n_vocab(&self) -> usize {
        self.weights.n_vocab
    }

    /// A cache for sequences of up to `n_ctx` positions.
    pub fn new_cache(&self, n_ctx: usize) -> KvCache {
        KvCache::new(&self.config, n_ctx)
    }
}
