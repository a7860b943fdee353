//! HF folder → GGUF: what to write, independent of how the bytes are read or quantized.

use crate::arch::text_config;
use crate::error::{ConvertError, Result};
use crate::hparams::config_to_metadata;
use crate::names::hf_to_gguf;
use crate::tokenizer::{vocab_from_hf_dir, Vocab};
use crate::transform::Transform;
use crate::value::{MetaValue, Metadata};
use crate::Arch;
use serde_json::Value;
use std::path::Path;

/// config.json key under which [`crate::export`] keeps the GGUF's `general.*` metadata
/// (name, license, ...) so a round trip restores it.
pub const GENERAL_STASH_KEY: &str = "lowbit_gguf_general";

/// One HF tensor and what it becomes in GGUF.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorPlan {
    pub hf_name: String,
    pub gguf_name: String,
    /// HF / PyTorch shape, outermost first, as stored in the checkpoint.
    pub hf_shape: Vec<u64>,
    /// GGUF dims, `ne[0]` (row length) first: the reversed HF shape, after `keep_rows`.
    pub gguf_dims: Vec<u64>,
    /// Keep only the first rows of the outermost dimension (Gemma 3 drops padding rows of the
    /// embedding that no token uses).
    pub keep_rows: Option<u64>,
    pub transform: Transform,
}

impl TensorPlan {
    /// Turns the checkpoint's values (row-major, `hf_shape`) into the GGUF tensor's values.
    pub fn apply(&self, data: &mut Vec<f32>) -> Result<()> {
        let expected: u64 = self.hf_shape.iter().product();
        if data.len() as u64 != expected {
            return Err(ConvertError::BadTensor {
                name: self.hf_name.clone(),
                reason: format!("{} values for shape {:?}", data.len(), self.hf_shape),
            });
        }
        let mut rows = self.hf_shape.first().copied().unwrap_or(1);
        if let Some(keep) = self.keep_rows {
            let row_len = (expected / rows.max(1)) as usize;
            data.truncate(keep as usize * row_len);
            rows = keep;
        }
        self.transform.apply(&self.hf_name, data, rows as usize)
    }
}

/// A GGUF tensor computed from hyper-parameters rather than read from the checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedTensor {
    pub gguf_name: String,
    pub gguf_dims: Vec<u64>,
    pub data: Vec<f32>,
}

/// Everything needed to write a GGUF from an HF folder, except the tensor bytes.
#[derive(Clone, Debug)]
pub struct ConversionPlan {
    pub arch: Arch,
    /// general.*, {arch}.* and tokenizer.* keys. `general.file_type` and
    /// `general.quantization_version` are left to the writer, which knows the output types.
    pub metadata: Metadata,
    pub vocab: Vocab,
    /// In checkpoint order.
    pub tensors: Vec<TensorPlan>,
    pub generated: Vec<GeneratedTensor>,
    /// HF tensors deliberately not converted (vision towers, stale buffers).
    pub skipped: Vec<String>,
}

/// Plans the conversion of an HF folder whose config and tensor list are already known.
/// `tensors` are `(name, shape)` in checkpoint order; `name_hint` names the model (folder name).
pub fn plan_hf_to_gguf(
    dir: &Path,
    raw_config: &Value,
    tensors: &[(String, Vec<u64>)],
    name_hint: &str,
) -> Result<ConversionPlan> {
    let arch = Arch::from_hf_config(raw_config)?;
    let config = text_config(raw_config);
    let model_name = config
        .get("_name_or_path")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(name_hint);
    let hf_vocab = vocab_from_hf_dir(dir, arch, &config, model_name)?;

    let mut md = Metadata::new();
    md.set(
        "general.architecture",
        MetaValue::Str(arch.gguf_name().into()),
    );
    md.set("general.type", MetaValue::Str("model".into()));
    md.set("general.name", MetaValue::Str(name_hint.to_string()));
    if let Some(stash) = raw_config.get(GENERAL_STASH_KEY).and_then(Value::as_object) {
        for (k, v) in stash {
            if let Some(v) = json_to_meta(v) {
                md.set(k.clone(), v);
            }
        }
    }
    md.extend(config_to_metadata(arch, &config)?);
    md.extend(hf_vocab.vocab.to_metadata());

    let n_head = config
        .get("num_attention_heads")
        .and_then(Value::as_u64)
        .unwrap_or(0) as usize;
    let n_kv = config
        .get("num_key_value_heads")
        .and_then(Value::as_u64)
        .map_or(n_head, |v| v as usize);
    let tied = config
        .get("tie_word_embeddings")
        .and_then(Value::as_bool)
        .unwrap_or(arch == Arch::Gemma3);

    let mut plans = Vec::with_capacity(tensors.len());
    let mut skipped = Vec::new();
    for (name, shape) in tensors {
        let Some(gguf_name) = hf_to_gguf(arch, name)? else {
            skipped.push(name.clone());
            continue;
        };
        // A tied checkpoint that still saved lm_head: llama.cpp reuses token_embd.
        if gguf_name == "output.weight" && tied && arch == Arch::Gemma3 {
            skipped.push(name.clone());
            continue;
        }
        let transform = tensor_transform(arch, name, n_head, n_kv);
        let keep_rows = (arch == Arch::Gemma3 && gguf_name == "token_embd.weight")
            .then_some(hf_vocab.n_real as u64)
            .filter(|&n| shape.first().is_some_and(|&rows| n < rows));
        let mut eff = shape.clone();
        if let (Some(k), Some(first)) = (keep_rows, eff.first_mut()) {
            *first = k;
        }
        let gguf_dims: Vec<u64> = eff.iter().rev().copied().collect();
        plans.push(TensorPlan {
            hf_name: name.clone(),
            gguf_name,
            hf_shape: shape.clone(),
            gguf_dims,
            keep_rows,
            transform,
        });
    }

    let mut generated = Vec::new();
    if arch == Arch::Llama {
        if let Some(freqs) = llama3_rope_freqs(&config) {
            generated.push(GeneratedTensor {
                gguf_name: "rope_freqs.weight".into(),
                gguf_dims: vec![freqs.len() as u64],
                data: freqs,
            });
        }
    }
    Ok(ConversionPlan {
        arch,
        metadata: md,
        vocab: hf_vocab.vocab,
        tensors: plans,
        generated,
        skipped,
    })
}

fn tensor_transform(arch: Arch, hf_name: &str, n_head: usize, n_kv: usize) -> Transform {
    if arch.permutes_qk() {
        if hf_name.ends_with("q_proj.weight") || hf_name.ends_with("q_proj.bias") {
            return Transform::RopeInterleave { n_head };
        }
        if hf_name.ends_with("k_proj.weight") || hf_name.ends_with("k_proj.bias") {
            return Transform::RopeInterleave { n_head: n_kv };
        }
    }
    let shift = arch.norm_shift();
    if shift != 0.0 && hf_name.ends_with("norm.weight") {
        return Transform::Add(shift);
    }
    Transform::Identity
}

/// LLaMA 3.x "llama3" RoPE scaling: llama.cpp precomputes per-frequency factors into a
/// `rope_freqs` tensor (one per rotated pair).
pub fn llama3_rope_freqs(config: &Value) -> Option<Vec<f32>> {
    let rope = crate::hparams::rope_params(config);
    if !rope
        .get("rope_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("llama3"))
    {
        return None;
    }
    let f = |k: &str, d: f64| rope.get(k).and_then(Value::as_f64).unwrap_or(d) as f32;
    let base = f("rope_theta", 10000.0);
    let dim = match config.get("head_dim").and_then(Value::as_u64) {
        Some(d) => d,
        None => {
            config.get("hidden_size")?.as_u64()?
                / config.get("num_attention_heads")?.as_u64()?.max(1)
        }
    } as usize;
    let factor = f("factor", 8.0);
    let low = f("low_freq_factor", 1.0);
    let high = f("high_freq_factor", 4.0);
    let old_ctx = f("original_max_position_embeddings", 8192.0);
    let low_wavelen = old_ctx / low;
    let high_wavelen = old_ctx / high;
    let out = (0..dim)
        .step_by(2)
        .map(|i| {
            let freq = 1.0 / base.powf(i as f32 / dim as f32);
            let wavelen = 2.0 * std::f32::consts::PI / freq;
            if wavelen < high_wavelen {
                1.0
            } else if wavelen > low_wavelen {
                factor
            } else {
                let smooth = (old_ctx / wavelen - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect();
    Some(out)
}

/// JSON (from the config stash) → metadata value; integers become u32 like llama.cpp's
/// general.* integers, other numbers f32.
pub(crate) fn json_to_meta(v: &Value) -> Option<MetaValue> {
    Some(match v {
        Value::String(s) => MetaValue::Str(s.clone()),
        Value::Bool(b) => MetaValue::Bool(*b),
        Value::Number(n) => match n.as_u64().and_then(|u| u32::try_from(u).ok()) {
            Some(u) => MetaValue::U32(u),
            None => MetaValue::F32(n.as_f64()? as f32),
        },
        Value::Array(a) => MetaValue::StrArray(
            a.iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// Metadata value → JSON for the stash; `None` for values the stash does not carry.
pub(crate) fn meta_to_json(v: &MetaValue) -> Option<Value> {
    Some(match v {
        MetaValue::Str(s) => Value::String(s.clone()),
        MetaValue::Bool(b) => Value::Bool(*b),
        MetaValue::StrArray(a) => Value::Array(a.iter().cloned().map(Value::String).collect()),
        MetaValue::F32(f) => crate::hparams::f32_json(*f),
        other => Value::from(other.as_u64()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llama3_rope_factors() {
        let c = json!({"hidden_size": 4096, "num_attention_heads": 32, "rope_theta": 500000.0,
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}});
        let f = llama3_rope_freqs(&c).unwrap();
        assert_eq!(f.len(), 64);
        assert_eq!(f[0], 1.0); // high frequencies untouched
        assert_eq!(f[63], 8.0); // low frequencies scaled by `factor`
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
        assert!(llama3_rope_freqs(&json!({"hidden_size": 8, "num_attention_heads": 2})).is_none());
    }

    #[test]
    fn transforms_by_family() {
        assert_eq!(
            tensor_transform(Arch::Llama, "model.layers.0.self_attn.k_proj.weight", 8, 2),
            Transform::RopeInterleave { n_head: 2 }
        );
        assert_eq!(
            tensor_transform(Arch::Llama, "model.layers.0.input_layernorm.weight", 8, 2),
            Transform::Identity
        );
        assert_eq!(
            tensor_transform(Arch::Qwen2, "model.layers.0.self_attn.q_proj.bias", 8, 2),
            Transform::Identity
        );
        assert_eq!(
            tensor_transform(Arch::Gemma3, "model.norm.weight", 8, 2),
            Transform::Add(1.0)
        );
        assert_eq!(
            tensor_transform(Arch::Gemma3, "model.layers.0.self_attn.q_proj.weight", 8, 2),
            Transform::Identity
        );
    }
}
