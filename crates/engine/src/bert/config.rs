//! Hyper-parameters of a BERT encoder (`config.json`) and of the sentence-transformers pipeline
//! around it (`modules.json`, the pooling module's `config.json`, `sentence_bert_config.json`).

use super::error::{BertError, Result};
use lowbit_files::HfModel;
use serde_json::Value as Json;
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
    pub eps: f32,
}

impl BertConfig {
    pub fn from_hf(hf: &HfModel) -> Result<BertConfig> {
        let path = hf.dir().join(lowbit_files::hf::CONFIG);
        let model_type = hf.model_type()?;
        if model_type != "bert" {
            return Err(BertError::invalid(
                &path,
                format!("model_type is '{model_type}', not 'bert'"),
            ));
        }
        // Only the erf GELU is implemented: a tanh-approximation model would silently drift.
        let act = hf.config_str("hidden_act").unwrap_or("gelu");
        if act != "gelu" {
            return Err(BertError::invalid(
                &path,
                format!("hidden_act '{act}' is not supported (only 'gelu')"),
            ));
        }
        let pos = hf
            .config_str("position_embedding_type")
            .unwrap_or("absolute");
        if pos != "absolute" {
            return Err(BertError::invalid(
                &path,
                format!("position_embedding_type '{pos}' is not supported"),
            ));
        }
        let get = |k: &str| hf.config_u64(k).map(|v| v as usize);
        let cfg = BertConfig {
            hidden: get("hidden_size")?,
            layers: get("num_hidden_layers")?,
            heads: get("num_attention_heads")?,
            intermediate: get("intermediate_size")?,
            vocab: get("vocab_size")?,
            max_positions: get("max_position_embeddings")?,
            type_vocab: get("type_vocab_size").unwrap_or(2),
            eps: hf.config_f64("layer_norm_eps").unwrap_or(1e-12) as f32,
        };
        if cfg.heads == 0 || cfg.hidden % cfg.heads != 0 {
            return Err(BertError::invalid(
                &path,
                format!(
                    "hidden_size {} is not a multiple of {} heads",
                    cfg.hidden, cfg.heads
                ),
            ));
        }
        if cfg.max_positions < 2 || cfg.type_vocab == 0 {
            return Err(BertError::invalid(
                &path,
                "max_position_embeddings < 2 or type_vocab_size 0",
            ));
        }
        Ok(cfg)
    }

    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Average of the token states under the attention mask ([CLS] and [SEP] included).
    Mean,
    /// The [CLS] token's state.
    Cls,
    /// Element-wise maximum over the tokens.
    Max,
}

/// What turns token states into one sentence vector.
#[derive(Clone, Debug, PartialEq)]
pub struct SentenceConfig {
    pub pooling: Pooling,
    pub normalize: bool,
    /// Tokens per sentence including [CLS] and [SEP]; longer inputs are truncated.
    pub max_tokens: usize,
}

impl SentenceConfig {
    /// Without `modules.json` the folder is a bare BERT: mean pooling, no normalisation, which is
    /// the sentence-transformers default for such a model.
    pub fn from_hf(hf: &HfModel, cfg: &BertConfig) -> Result<SentenceConfig> {
        let dir = hf.dir();
        let mut sc = SentenceConfig {
            pooling: Pooling::Mean,
            normalize: false,
            max_tokens: cfg.max_positions,
        };
        if let Some(modules) = read_optional(&dir.join("modules.json"))? {
            let list = modules
                .as_array()
                .ok_or_else(|| BertError::invalid(dir.join("modules.json"), "not a JSON array"))?;
            for m in list {
                let ty = m.get("type").and_then(Json::as_str).unwrap_or("");
                let sub = m.get("path").and_then(Json::as_str).unwrap_or("");
                if ty.ends_with(".Normalize") {
                    sc.normalize = true;
                } else if ty.ends_with(".Pooling") && !sub.is_empty() {
                    // A missing pooling config (some copies drop the folder) means the default: mean.
                    if let Some(p) = read_optional(&dir.join(sub).join("config.json"))? {
                        sc.pooling = pooling_mode(&p).ok_or_else(|| {
                            BertError::invalid(
                                dir.join(sub).join("config.json"),
                                "exactly one of the pooling modes mean, cls or max must be enabled",
                            )
                        })?;
                    }
                } else if !ty.ends_with(".Transformer") && !ty.is_empty() {
                    return Err(BertError::invalid(
                        dir.join("modules.json"),
                        format!("module '{ty}' is not supported"),
                    ));
                }
            }
        }
        if let Some(sb) = read_optional(&dir.join("sentence_bert_config.json"))? {
            if let Some(n) = sb.get("max_seq_length").and_then(Json::as_u64) {
                sc.max_tokens = n as usize;
            }
        }
        sc.max_tokens = sc.max_tokens.clamp(2, cfg.max_positions);
        Ok(sc)
    }
}

fn pooling_mode(p: &Json) -> Option<Pooling> {
    let on = |k: &str| p.get(k).and_then(Json::as_bool).unwrap_or(false);
    // Several modes at once are concatenated by sentence-transformers; not supported here.
    let keys = [
        "mean_tokens",
        "cls_token",
        "max_tokens",
        "mean_sqrt_len_tokens",
        "weightedmean_tokens",
        "lasttoken",
    ];
    if keys
        .iter()
        .filter(|k| on(&format!("pooling_mode_{k}")))
        .count()
        != 1
    {
        return None;
    }
    if on("pooling_mode_mean_tokens") {
        Some(Pooling::Mean)
    } else if on("pooling_mode_cls_token") {
        Some(Pooling::Cls)
    } else if on("pooling_mode_max_tokens") {
        Some(Pooling::Max)
    } else {
        None
    }
}

fn read_optional(path: &Path) -> Result<Option<Json>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| BertError::invalid(path, format!("invalid JSON: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BertError::invalid(path, format!("cannot read: {e}"))),
    }
}
