use super::{key, rope_params, GEMMA3_DEFAULT_SWA_FREQ_BASE};
use crate::error::{ConvertError, Result};
use crate::value::{MetaValue, Metadata};
use crate::Arch;
use serde_json::Value;

fn get_u64(config: &Value, name: &str) -> Option<u64> {
    config.get(name).and_then(Value::as_u64)
}

fn get_f64(config: &Value, name: &str) -> Option<f64> {
    config.get(name).and_then(Value::as_f64)
}

fn u32_of(field: &'static str, v: u64) -> Result<MetaValue> {
    u32::try_from(v)
        .map(MetaValue::U32)
        .map_err(|_| ConvertError::MissingConfig(field))
}

/// `{arch}.*` keys for a text-model `config.json` (already merged with `text_config`), with the
/// keys, value types and defaults that llama.cpp's converter produces for this family. The
/// `general.*` and `tokenizer.*` keys are produced elsewhere.
pub fn config_to_metadata(arch: Arch, config: &Value) -> Result<Metadata> {
    let mut md = Metadata::new();
    let k = |s: &str| key(arch, s);
    let n_layer = get_u64(config, "num_hidden_layers")
        .ok_or(ConvertError::MissingConfig("num_hidden_layers"))?;
    let n_embd =
        get_u64(config, "hidden_size").ok_or(ConvertError::MissingConfig("hidden_size"))?;
    let n_ff = get_u64(config, "intermediate_size")
        .ok_or(ConvertError::MissingConfig("intermediate_size"))?;
    let rope = rope_params(config);
    let head_dim = get_u64(config, "head_dim");

    if arch == Arch::Gemma3 {
        // Gemma 3 always writes these, with transformers' Gemma3TextConfig defaults.
        let n_head = get_u64(config, "num_attention_heads").unwrap_or(8);
        let ctx = get_u64(config, "max_position_embeddings").unwrap_or(131_072);
        let eps = get_f64(config, "rms_norm_eps").unwrap_or(1e-6);
        let hd = head_dim.unwrap_or(256);
        let theta = rope
            .get("rope_theta")
            .and_then(Value::as_f64)
            .unwrap_or(1_000_000.0);
        md.set(k("context_length"), u32_of("max_position_embeddings", ctx)?);
        md.set(k("embedding_length"), u32_of("hidden_size", n_embd)?);
        md.set(k("block_count"), u32_of("num_hidden_layers", n_layer)?);
        md.set(k("feed_forward_length"), u32_of("intermediate_size", n_ff)?);
        md.set(
            k("attention.head_count"),
            u32_of("num_attention_heads", n_head)?,
        );
        md.set(
            k("attention.layer_norm_rms_epsilon"),
            MetaValue::F32(eps as f32),
        );
        md.set(k("attention.key_length"), u32_of("head_dim", hd)?);
        md.set(k("attention.value_length"), u32_of("head_dim", hd)?);
        md.set(k("rope.freq_base"), MetaValue::F32(theta as f32));
        if let Some(cap) = get_f64(config, "final_logit_softcapping").filter(|c| *c != 0.0) {
            md.set(k("final_logit_softcapping"), MetaValue::F32(cap as f32));
        }
        if get_u64(config, "sliding_window_pattern") != Some(1) {
            if let Some(w) = get_u64(config, "sliding_window") {
                md.set(k("attention.sliding_window"), u32_of("sliding_window", w)?);
            }
        }
        md.set(
            k("attention.head_count_kv"),
            u32_of(
                "num_key_value_heads",
                get_u64(config, "num_key_value_heads").unwrap_or(4),
            )?,
        );
        // Only written when it differs from the value llama.cpp assumes, so a stock Gemma 3
        // converts to exactly the keys of llama.cpp-made files.
        let swa_theta = config
            .get("rope_parameters")
            .and_then(|p| p.get("sliding_attention"))
            .and_then(|p| p.get("rope_theta"))
            .and_then(Value::as_f64)
            .or_else(|| get_f64(config, "rope_local_base_freq"));
        if let Some(t) = swa_theta.filter(|t| *t != GEMMA3_DEFAULT_SWA_FREQ_BASE) {
            md.set(k("rope.freq_base_swa"), MetaValue::F32(t as f32));
        }
        rope_scaling(arch, &rope, &mut md)?;
        return Ok(md);
    }

    md.set(k("block_count"), u32_of("num_hidden_layers", n_layer)?);
    if let Some(ctx) = get_u64(config, "max_position_embeddings") {
        md.set(k("context_length"), u32_of("max_position_embeddings", ctx)?);
    }
    md.set(k("embedding_length"), u32_of("hidden_size", n_embd)?);
    md.set(k("feed_forward_length"), u32_of("intermediate_size", n_ff)?);
    let n_head = get_u64(config, "num_attention_heads")
        .ok_or(ConvertError::MissingConfig("num_attention_heads"))?;
    md.set(
        k("attention.head_count"),
        u32_of("num_attention_heads", n_head)?,
    );
    if let Some(kv) = get_u64(config, "num_key_value_heads") {
        md.set(
            k("attention.head_count_kv"),
            u32_of("num_key_value_heads", kv)?,
        );
    }
    rope_scaling(arch, &rope, &mut md)?;
    if let Some(theta) = rope.get("rope_theta").and_then(Value::as_f64) {
        md.set(k("rope.freq_base"), MetaValue::F32(theta as f32));
    }
    if let Some(eps) = get_f64(config, "rms_norm_eps") {
        md.set(
            k("attention.layer_norm_rms_epsilon"),
            MetaValue::F32(eps as f32),
        );
    }
    if let Some(hd) = head_dim {
        md.set(k("attention.key_length"), u32_of("head_dim", hd)?);
        md.set(k("attention.value_length"), u32_of("head_dim", hd)?);
    }
    if arch == Arch::Llama {
        let vocab =
            get_u64(config, "vocab_size").ok_or(ConvertError::MissingConfig("vocab_size"))?;
        md.set(k("vocab_size"), u32_of("vocab_size", vocab)?);
        let rope_dim = match head_dim {
            Some(hd) => hd,
            None if n_head > 0 => n_embd / n_head,
            None => return Err(ConvertError::MissingConfig("num_attention_heads")),
        };
        md.set(k("rope.dimension_count"), u32_of("head_dim", rope_dim)?);
    }
    Ok(md)
}

/// Linear and YaRN scaling become keys; `llama3` scaling becomes the `rope_freqs` tensor instead
/// (see [`crate::plan::llama3_rope_freqs`]).
fn rope_scaling(
    arch: Arch,
    rope: &serde_json::Map<String, Value>,
    md: &mut Metadata,
) -> Result<()> {
    let k = |s: &str| key(arch, s);
    let Some(kind) = rope.get("rope_type").and_then(Value::as_str) else {
        return Ok(());
    };
    let factor = rope.get("factor").and_then(Value::as_f64);
    let f = |name: &str| rope.get(name).and_then(Value::as_f64);
    match (kind, factor) {
        ("linear", Some(factor)) => {
            md.set(k("rope.scaling.type"), MetaValue::Str("linear".into()));
            md.set(k("rope.scaling.factor"), MetaValue::F32(factor as f32));
        }
        ("yarn", Some(factor)) => {
            md.set(k("rope.scaling.type"), MetaValue::Str("yarn".into()));
            md.set(k("rope.scaling.factor"), MetaValue::F32(factor as f32));
            let orig = rope
                .get("original_max_position_embeddings")
                .and_then(Value::as_u64)
                .ok_or(ConvertError::MissingConfig(
                    "rope_scaling.original_max_position_embeddings",
                ))?;
            md.set(
                k("rope.scaling.original_context_length"),
                u32_of("original_max_position_embeddings", orig)?,
            );
            for (hf, gguf) in [
                ("extrapolation_factor", "rope.scaling.yarn_ext_factor"),
                ("attention_factor", "rope.scaling.yarn_attn_factor"),
                ("attn_factor", "rope.scaling.yarn_attn_factor"),
                ("beta_fast", "rope.scaling.yarn_beta_fast"),
                ("beta_slow", "rope.scaling.yarn_beta_slow"),
            ] {
                if let Some(v) = f(hf) {
                    if md.get(&k(gguf)).is_none() {
                        md.set(k(gguf), MetaValue::F32(v as f32));
                    }
                }
            }
        }
        ("longrope" | "su", _) => {
            md.set(k("rope.scaling.type"), MetaValue::Str("longrope".into()));
        }
        _ => {}
    }
    Ok(())
}
