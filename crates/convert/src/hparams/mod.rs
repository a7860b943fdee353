//! Hyper-parameters: `config.json` ↔ `{arch}.*` GGUF keys.

mod to_gguf;
mod to_hf;

pub use to_gguf::config_to_metadata;
pub use to_hf::{metadata_to_config, HfConfigInfo};

use serde_json::Value;

/// llama.cpp's default local (sliding-window) RoPE base for Gemma 3 when the key is absent.
pub(crate) const GEMMA3_DEFAULT_SWA_FREQ_BASE: f64 = 10_000.0;
/// llama.cpp's default Gemma 3 sliding-window pattern (every 6th layer is global).
pub(crate) const GEMMA3_DEFAULT_SWA_PATTERN: u64 = 6;

/// GGUF key `{arch}.{suffix}`.
pub(crate) fn key(arch: crate::Arch, suffix: &str) -> String {
    format!("{}.{suffix}", arch.gguf_name())
}

/// The shortest decimal that reads back as the same f32, so `1e-5` stays `1e-5` in
/// config.json instead of becoming `9.999999747378752e-06`.
pub(crate) fn f32_json(x: f32) -> Value {
    let shortest: f64 = format!("{x}").parse().unwrap_or(x as f64);
    serde_json::Number::from_f64(shortest)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// RoPE parameters: transformers ≥ 4.5x writes `rope_parameters` (maybe split per attention
/// type), older configs `rope_scaling` plus a top-level `rope_theta`.
pub(crate) fn rope_params(config: &Value) -> serde_json::Map<String, Value> {
    let raw = config
        .get("rope_parameters")
        .filter(|v| v.is_object())
        .or_else(|| config.get("rope_scaling"));
    let mut params = raw.and_then(Value::as_object).cloned().unwrap_or_default();
    if let Some(full) = params
        .get("full_attention")
        .and_then(Value::as_object)
        .cloned()
    {
        params = full;
    }
    if !params.contains_key("rope_theta") {
        if let Some(t) = config.get("rope_theta") {
            params.insert("rope_theta".into(), t.clone());
        }
    }
    if !params.contains_key("rope_type") {
        if let Some(t) = params.get("type").cloned() {
            params.insert("rope_type".into(), t);
        }
    }
    params
}
