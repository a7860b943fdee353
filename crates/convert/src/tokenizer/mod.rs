//! Tokenizers: Hugging Face `tokenizer.json` (+ `tokenizer_config.json`, `tokenizer.model`) ↔
//! GGUF `tokenizer.ggml.*`.
//!
//! [`Vocab`] is the GGUF view (tokens by id, types, scores, merges, special ids); everything
//! here converts to and from it.

mod bpe;
pub(crate) mod hf_import;
mod pretok;
mod special;
mod spm;
mod spm_proto;

pub use hf_import::{vocab_from_hf_dir, HfVocab};
pub use pretok::detect_pre;
pub use special::SpecialKind;
pub use spm::derive_merges;
pub use spm_proto::{read_spm_model, write_spm_model, SpmIds, SpmPiece};

use crate::error::{ConvertError, Result};
use crate::value::{MetaValue, Metadata};
use serde_json::Value;

/// llama.cpp token types (same numbering as SentencePiece's piece types).
pub mod token_type {
    pub const NORMAL: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
    pub const BYTE: i32 = 6;
}

/// `tokenizer.ggml.model`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerModel {
    /// Byte-level BPE (GPT-2 style; SmolLM, LLaMA 3, Qwen).
    Gpt2,
    /// SentencePiece (scores + byte fallback; Gemma, LLaMA 2).
    Llama,
}

impl TokenizerModel {
    pub fn gguf_name(self) -> &'static str {
        match self {
            TokenizerModel::Gpt2 => "gpt2",
            TokenizerModel::Llama => "llama",
        }
    }
}

/// A tokenizer as GGUF stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct Vocab {
    pub model: TokenizerModel,
    /// `tokenizer.ggml.pre`: which pre-tokenizer llama.cpp must run (see [`detect_pre`]).
    pub pre: String,
    pub tokens: Vec<String>,
    pub token_types: Vec<i32>,
    /// SentencePiece scores; `None` for byte-level BPE.
    pub scores: Option<Vec<f32>>,
    /// `"left right"` strings, in priority order; empty for SentencePiece.
    pub merges: Vec<String>,
    pub special_ids: Vec<(SpecialKind, u32)>,
    pub add_bos: Option<bool>,
    pub add_eos: Option<bool>,
    pub add_sep: Option<bool>,
    pub add_space_prefix: Option<bool>,
    pub chat_template: Option<String>,
}

impl Vocab {
    pub fn special_id(&self, kind: SpecialKind) -> Option<u32> {
        self.special_ids
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, id)| *id)
    }

    pub fn token_type(&self, id: usize) -> i32 {
        self.token_types
            .get(id)
            .copied()
            .unwrap_or(token_type::NORMAL)
    }

    /// The `tokenizer.*` GGUF keys.
    pub fn to_metadata(&self) -> Metadata {
        let mut md = Metadata::new();
        md.set(
            "tokenizer.ggml.model",
            MetaValue::Str(self.model.gguf_name().into()),
        );
        md.set("tokenizer.ggml.pre", MetaValue::Str(self.pre.clone()));
        md.set(
            "tokenizer.ggml.tokens",
            MetaValue::StrArray(self.tokens.clone()),
        );
        if let Some(scores) = &self.scores {
            md.set("tokenizer.ggml.scores", MetaValue::F32Array(scores.clone()));
        }
        md.set(
            "tokenizer.ggml.token_type",
            MetaValue::I32Array(self.token_types.clone()),
        );
        if !self.merges.is_empty() {
            md.set(
                "tokenizer.ggml.merges",
                MetaValue::StrArray(self.merges.clone()),
            );
        }
        for (kind, id) in &self.special_ids {
            md.set(kind.gguf_key(), MetaValue::U32(*id));
        }
        for (key, v) in [
            ("tokenizer.ggml.add_bos_token", self.add_bos),
            ("tokenizer.ggml.add_eos_token", self.add_eos),
            ("tokenizer.ggml.add_sep_token", self.add_sep),
            ("tokenizer.ggml.add_space_prefix", self.add_space_prefix),
        ] {
            if let Some(v) = v {
                md.set(key, MetaValue::Bool(v));
            }
        }
        if let Some(t) = &self.chat_template {
            md.set("tokenizer.chat_template", MetaValue::Str(t.clone()));
        }
        md
    }

    /// Reads the `tokenizer.*` GGUF keys.
    pub fn from_metadata(md: &Metadata) -> Result<Vocab> {
        let model = match md.str("tokenizer.ggml.model") {
            Some("gpt2") => TokenizerModel::Gpt2,
            Some("llama") => TokenizerModel::Llama,
            Some(other) => {
                return Err(ConvertError::Tokenizer(format!(
                    "unsupported tokenizer.ggml.model {other:?}"
                )))
            }
            None => return Err(ConvertError::MissingMetadata("tokenizer.ggml.model".into())),
        };
        let tokens = match md.get("tokenizer.ggml.tokens") {
            Some(MetaValue::StrArray(t)) => t.clone(),
            Some(_) => {
                return Err(ConvertError::MetadataType {
                    key: "tokenizer.ggml.tokens".into(),
                    expected: "string array",
                })
            }
            None => {
                return Err(ConvertError::MissingMetadata(
                    "tokenizer.ggml.tokens".into(),
                ))
            }
        };
        let token_types = match md.get("tokenizer.ggml.token_type") {
            Some(MetaValue::I32Array(t)) if t.len() == tokens.len() => t.clone(),
            Some(_) => {
                return Err(ConvertError::MetadataType {
                    key: "tokenizer.ggml.token_type".into(),
                    expected: "i32 array, one per token",
                })
            }
            None => vec![token_type::NORMAL; tokens.len()],
        };
        let scores = match md.get("tokenizer.ggml.scores") {
            Some(MetaValue::F32Array(s)) if s.len() == tokens.len() => Some(s.clone()),
            Some(_) => {
                return Err(ConvertError::MetadataType {
                    key: "tokenizer.ggml.scores".into(),
                    expected: "f32 array, one per token",
                })
            }
            None => None,
        };
        let merges = match md.get("tokenizer.ggml.merges") {
            Some(MetaValue::StrArray(m)) => m.clone(),
            _ => Vec::new(),
        };
        let mut special_ids = Vec::new();
        for kind in SpecialKind::ALL {
            if let Some(id) = md.u64(kind.gguf_key()) {
                let id = u32::try_from(id)
                    .ok()
                    .filter(|&i| (i as usize) < tokens.len())
                    .ok_or_else(|| {
                        ConvertError::Tokenizer(format!(
                            "{} = {id} is not a token id",
                            kind.gguf_key()
                        ))
                    })?;
                special_ids.push((kind, id));
            }
        }
        Ok(Vocab {
            model,
            pre: md
                .str("tokenizer.ggml.pre")
                .unwrap_or("default")
                .to_string(),
            tokens,
            token_types,
            scores,
            merges,
            special_ids,
            add_bos: md.bool("tokenizer.ggml.add_bos_token"),
            add_eos: md.bool("tokenizer.ggml.add_eos_token"),
            add_sep: md.bool("tokenizer.ggml.add_sep_token"),
            add_space_prefix: md.bool("tokenizer.ggml.add_space_prefix"),
            chat_template: md.str("tokenizer.chat_template").map(str::to_string),
        })
    }

    /// The Hugging Face tokenizer files for this vocabulary.
    pub fn to_hf(&self, model_max_length: Option<u64>) -> Result<HfTokenizerFiles> {
        let (tokenizer_json, tokenizer_model) = match self.model {
            TokenizerModel::Gpt2 => (bpe::tokenizer_json(self)?, None),
            TokenizerModel::Llama => (spm::tokenizer_json(self)?, Some(spm::spm_model(self)?)),
        };
        Ok(HfTokenizerFiles {
            tokenizer_json,
            tokenizer_config: special::tokenizer_config(self, model_max_length),
            special_tokens_map: special::special_tokens_map(self),
            tokenizer_model,
        })
    }
}

/// Tokenizer files of a Hugging Face folder, ready to be serialized.
#[derive(Clone, Debug)]
pub struct HfTokenizerFiles {
    pub tokenizer_json: Value,
    pub tokenizer_config: Value,
    pub special_tokens_map: Value,
    /// SentencePiece `tokenizer.model` bytes (SentencePiece vocabularies only): it carries the
    /// exact scores and piece types, which `tokenizer.json` cannot.
    pub tokenizer_model: Option<Vec<u8>>,
}
