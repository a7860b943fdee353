//! Sentence embeddings with a BERT encoder (all-MiniLM-L6-v2 and its kind), run on lowbit's
//! kernels so a quantized encoder can be compared with the float original.
//!
//! The pipeline is sentence-transformers': WordPiece ([`wordpiece`]), the post-LN encoder
//! ([`forward`]), pooling over the sentence's tokens and optional L2 normalisation, as the
//! folder's `modules.json` describes ([`config`]).

pub mod config;
pub mod error;
pub mod forward;
pub mod ops;
pub mod weights;
pub mod wordpiece;

pub use config::{BertConfig, Pooling, SentenceConfig};
pub use error::{BertError, Result};
pub use ops::cosine;
pub use weights::BertWeights;
pub use wordpiece::WordPiece;

use lowbit_files::HfModel;
use crate::tensor::WeightQuantizer;

/// Tokenizer, encoder and pooling of one model folder.
pub struct SentenceEncoder<'a> {
    pub config: BertConfig,
    pub sentence: SentenceConfig,
    pub tokenizer: WordPiece,
    pub weights: BertWeights<'a>,
}

impl<'a> SentenceEncoder<'a> {
    /// `quant`: quantize the 2-D weights in memory through it (see [`BertWeights::load`]).
    pub fn load(
        hf: &'a HfModel,
        quant: Option<&'a dyn WeightQuantizer>,
    ) -> Result<SentenceEncoder<'a>> {
        let config = BertConfig::from_hf(hf)?;
        let sentence = SentenceConfig::from_hf(hf, &config)?;
        let tok_path = hf.dir().join(lowbit_files::hf::TOKENIZER);
        let json = hf.load_tokenizer_json()?.ok_or_else(|| {
            BertError::invalid(&tok_path, "missing (a WordPiece tokenizer.json is needed)")
        })?;
        let tokenizer = WordPiece::from_tokenizer_json(&json, &tok_path)?;
        let weights = BertWeights::load(hf, &config, quant)?;
        Ok(SentenceEncoder {
            config,
            sentence,
            tokenizer,
            weights,
        })
    }

    pub fn dim(&self) -> usize {
        self.config.hidden
    }

    /// Token ids as the model sees them: `[CLS] … [SEP]`, truncated to the model's limit.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text, self.sentence.max_tokens)
    }

    /// One embedding per text, all texts in one packed batch.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.tokenize(t)).collect();
        self.embed_ids(&ids)
    }

    pub fn embed_ids(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        self.embed_ids_observed(ids, None)
    }

    /// [`SentenceEncoder::embed_ids`], showing `observer` every linear's input rows.
    pub fn embed_ids_observed(
        &self,
        ids: &[Vec<u32>],
        observer: Option<&mut dyn crate::model::LinearObserver>,
    ) -> Result<Vec<Vec<f32>>> {
        let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        // On a pool thread, so the many parallel steps inside fork cheaply (see Model::forward).
        let hidden =
            rayon::scope(|_| forward::encode_observed(&self.config, &self.weights, &seqs, observer))?;
        let lens: Vec<usize> = ids.iter().map(Vec::len).collect();
        Ok(forward::pool(
            &self.sentence,
            &hidden,
            &lens,
            self.config.hidden,
        ))
    }
}
