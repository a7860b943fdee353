//! Which model family a folder or GGUF file holds, and the family facts that follow from it.

use crate::error::{ConvertError, Result};
use serde_json::Value;

/// The model families lowbit can convert. Mistral and SmolLM are LLaMA in GGUF terms (same graph,
/// same `llama` architecture string), so they are not separate variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    Gemma3,
}

impl Arch {
    /// The `general.architecture` string, which also prefixes every hyper-parameter key.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3",
        }
    }

    pub fn from_gguf_name(name: &str) -> Result<Arch> {
        match name {
            "llama" => Ok(Arch::Llama),
            "qwen2" => Ok(Arch::Qwen2),
            "qwen3" => Ok(Arch::Qwen3),
            "gemma3" => Ok(Arch::Gemma3),
            other => Err(ConvertError::UnsupportedArch(other.to_string())),
        }
    }

    /// Class name written to `config.json` `architectures` on export.
    pub fn hf_class(self) -> &'static str {
        match self {
            Arch::Llama => "LlamaForCausalLM",
            Arch::Qwen2 => "Qwen2ForCausalLM",
            Arch::Qwen3 => "Qwen3ForCausalLM",
            Arch::Gemma3 => "Gemma3ForCausalLM",
        }
    }

    /// `model_type` written to `config.json` on export (gemma3's text-only model type is
    /// `gemma3_text`; `gemma3` is the multimodal wrapper).
    pub fn hf_model_type(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma3 => "gemma3_text",
        }
    }

    /// Detects the family from `config.json`, looking at `architectures[0]` first (what
    /// llama.cpp dispatches on) and `model_type` as a fallback.
    pub fn from_hf_config(config: &Value) -> Result<Arch> {
        let class = config
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(Value::as_str);
        if let Some(class) = class {
            let arch = match class {
                "LlamaForCausalLM" | "LLaMAForCausalLM" | "MistralForCausalLM" | "LlamaModel" => {
                    Some(Arch::Llama)
                }
                "Qwen2ForCausalLM" | "Qwen2Model" => Some(Arch::Qwen2),
                "Qwen3ForCausalLM" | "Qwen3Model" => Some(Arch::Qwen3),
                "Gemma3ForCausalLM" | "Gemma3ForConditionalGeneration" => Some(Arch::Gemma3),
                _ => None,
            };
            if let Some(a) = arch {
                return Ok(a);
            }
        }
        let model_type = config.get("model_type").and_then(Value::as_str);
        match model_type {
            Some("llama" | "mistral") => Ok(Arch::Llama),
            Some("qwen2") => Ok(Arch::Qwen2),
            Some("qwen3") => Ok(Arch::Qwen3),
            Some("gemma3" | "gemma3_text") => Ok(Arch::Gemma3),
            _ => Err(ConvertError::UnsupportedArch(
                class.or(model_type).unwrap_or("<none>").to_string(),
            )),
        }
    }

    /// llama.cpp runs LLaMA with "normal" (interleaved-pair) RoPE, so HF's rotate-half Q/K rows
    /// must be permuted; Qwen and Gemma run NEOX RoPE, which matches HF's layout as is.
    pub fn permutes_qk(self) -> bool {
        matches!(self, Arch::Llama)
    }

    /// Gemma's RMSNorm multiplies by (1 + w); GGUF stores the effective scale w + 1.
    pub fn norm_shift(self) -> f32 {
        match self {
            Arch::Gemma3 => 1.0,
            _ => 0.0,
        }
    }
}

/// The text-model part of a config: multimodal wrappers (Gemma3ForConditionalGeneration) nest
/// it under `text_config`; its keys override the outer ones, as in llama.cpp.
pub fn text_config(config: &Value) -> Value {
    match (
        config.as_object(),
        config.get("text_config").and_then(Value::as_object),
    ) {
        (Some(outer), Some(inner)) => {
            let mut merged = outer.clone();
            for (k, v) in inner {
                merged.insert(k.clone(), v.clone());
            }
            Value::Object(merged)
        }
        _ => config.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_families() {
        let c = json!({"architectures": ["MistralForCausalLM"], "model_type": "mistral"});
        assert_eq!(Arch::from_hf_config(&c).unwrap(), Arch::Llama);
        let c = json!({"model_type": "gemma3_text"});
        assert_eq!(Arch::from_hf_config(&c).unwrap(), Arch::Gemma3);
        let c = json!({"architectures": ["Qwen3ForCausalLM"]});
        assert_eq!(Arch::from_hf_config(&c).unwrap(), Arch::Qwen3);
        assert!(Arch::from_hf_config(&json!({"model_type": "bert"})).is_err());
        for a in [Arch::Llama, Arch::Qwen2, Arch::Qwen3, Arch::Gemma3] {
            assert_eq!(Arch::from_gguf_name(a.gguf_name()).unwrap(), a);
        }
    }

    #[test]
    fn text_config_overrides_outer_keys() {
        let c = json!({"architectures": ["Gemma3ForConditionalGeneration"], "text_config": {"hidden_size": 8}});
        let t = text_config(&c);
        assert_eq!(t["hidden_size"], 8);
        assert_eq!(t["architectures"][0], "Gemma3ForConditionalGeneration");
    }
}
