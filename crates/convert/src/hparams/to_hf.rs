use super::{f32_json, key, GEMMA3_DEFAULT_SWA_FREQ_BASE, GEMMA3_DEFAULT_SWA_PATTERN};
use crate::error::{ConvertError, Result};
use crate::value::Metadata;
use crate::Arch;
use serde_json::{json, Map, Value};

/// Facts a `config.json` needs that GGUF keeps outside the `{arch}.*` keys: they come from the
/// tensor list and the tokenizer.
#[derive(Clone, Debug, Default)]
pub struct HfConfigInfo {
    /// Rows of `token_embd` (GGUF's `vocab_size` key is optional and LLaMA-only).
    pub vocab_size: u64,
    /// No `output.weight` in the GGUF: the LM head is the embedding.
    pub tie_word_embeddings: bool,
    /// Q/K/V carry biases (Qwen 2 always, LLaMA variants sometimes).
    pub attention_bias: bool,
    pub bos_token_id: Option<u64>,
    pub eos_token_id: Option<u64>,
    pub pad_token_id: Option<u64>,
    /// `bfloat16` or `float32`: the dtype the exported safetensors hold.
    pub torch_dtype: String,
    /// Largest value of the `rope_freqs` tensor (LLaMA 3.x RoPE scaling), if the GGUF has one.
    pub llama3_rope_factor: Option<f32>,
}

/// Builds a `config.json` that transformers loads as the same model.
pub fn metadata_to_config(arch: Arch, md: &Metadata, info: &HfConfigInfo) -> Result<Value> {
    let k = |s: &str| key(arch, s);
    let req = |s: &str| {
        md.u64(&k(s))
            .ok_or_else(|| ConvertError::MissingMetadata(k(s)))
    };
    let n_layer = req("block_count")?;
    let n_embd = req("embedding_length")?;
    let n_ff = req("feed_forward_length")?;
    let n_head = req("attention.head_count")?;
    let n_head_kv = md.u64(&k("attention.head_count_kv")).unwrap_or(n_head);
    let f32_of = |s: &str| md.f64(&k(s)).map(|v| f32_json(v as f32));

    let mut c = Map::new();
    c.insert("architectures".into(), json!([arch.hf_class()]));
    c.insert("model_type".into(), json!(arch.hf_model_type()));
    c.insert("num_hidden_layers".into(), json!(n_layer));
    c.insert("hidden_size".into(), json!(n_embd));
    c.insert("intermediate_size".into(), json!(n_ff));
    c.insert("num_attention_heads".into(), json!(n_head));
    c.insert("num_key_value_heads".into(), json!(n_head_kv));
    c.insert("vocab_size".into(), json!(info.vocab_size));
    c.insert(
        "tie_word_embeddings".into(),
        json!(info.tie_word_embeddings),
    );
    c.insert("torch_dtype".into(), json!(info.torch_dtype));
    c.insert("attention_dropout".into(), json!(0.0));
    for (name, id) in [
        ("bos_token_id", info.bos_token_id),
        ("eos_token_id", info.eos_token_id),
        ("pad_token_id", info.pad_token_id),
    ] {
        if let Some(id) = id {
            c.insert(name.into(), json!(id));
        }
    }
    if let Some(ctx) = md.u64(&k("context_length")) {
        c.insert("max_position_embeddings".into(), json!(ctx));
    }
    if let Some(eps) = f32_of("attention.layer_norm_rms_epsilon") {
        c.insert("rms_norm_eps".into(), eps);
    }
    if let Some(theta) = f32_of("rope.freq_base") {
        c.insert("rope_theta".into(), theta);
    }
    // head_dim only when the GGUF states it, so a re-import produces the same key set.
    let key_len = md.u64(&k("attention.key_length"));
    if let Some(hd) = key_len {
        c.insert("head_dim".into(), json!(hd));
    }
    c.insert("rope_scaling".into(), rope_scaling(arch, md, info)?);

    match arch {
        Arch::Llama | Arch::Qwen2 | Arch::Qwen3 => {
            c.insert("hidden_act".into(), json!("silu"));
            c.insert("initializer_range".into(), json!(0.02));
            c.insert("use_cache".into(), json!(true));
            if arch == Arch::Llama {
                c.insert("attention_bias".into(), json!(info.attention_bias));
                c.insert("mlp_bias".into(), json!(false));
                c.insert("pretraining_tp".into(), json!(1));
            } else {
                c.insert("use_sliding_window".into(), json!(false));
                c.insert("max_window_layers".into(), json!(n_layer));
                if arch == Arch::Qwen3 {
                    c.insert("attention_bias".into(), json!(info.attention_bias));
                }
            }
            if arch == Arch::Llama {
                if let Some(rd) = md.u64(&k("rope.dimension_count")) {
                    let default = n_embd.checked_div(n_head).unwrap_or(0);
                    if rd != default && key_len.is_none() {
                        c.insert("head_dim".into(), json!(rd));
                    }
                }
            }
        }
        Arch::Gemma3 => {
            let head_dim = key_len.unwrap_or(256);
            c.insert("head_dim".into(), json!(head_dim));
            c.insert("hidden_activation".into(), json!("gelu_pytorch_tanh"));
            c.insert("attention_bias".into(), json!(false));
            c.insert("attn_logit_softcapping".into(), Value::Null);
            c.insert(
                "final_logit_softcapping".into(),
                f32_of("final_logit_softcapping").unwrap_or(Value::Null),
            );
            // llama.cpp scales queries by 1/sqrt(n_embd/n_head) for the 27B (62 layers) and by
            // 1/sqrt(head_dim) otherwise; transformers expresses that as query_pre_attn_scalar.
            let scalar = if n_layer == 62 && n_head > 0 {
                n_embd / n_head
            } else {
                head_dim
            };
            c.insert("query_pre_attn_scalar".into(), json!(scalar));
            let swa_theta = md
                .f64(&k("rope.freq_base_swa"))
                .unwrap_or(GEMMA3_DEFAULT_SWA_FREQ_BASE);
            c.insert("rope_local_base_freq".into(), f32_json(swa_theta as f32));
            let window = md.u64(&k("attention.sliding_window"));
            let pattern = if window.is_some() {
                GEMMA3_DEFAULT_SWA_PATTERN
            } else {
                1
            };
            c.insert("sliding_window".into(), json!(window.unwrap_or(4096)));
            c.insert("sliding_window_pattern".into(), json!(pattern));
            let layer_types: Vec<&str> = (0..n_layer)
                .map(|i| {
                    if window.is_some() && (i + 1) % pattern != 0 {
                        "sliding_attention"
                    } else {
                        "full_attention"
                    }
                })
                .collect();
            c.insert("layer_types".into(), json!(layer_types));
            c.insert("use_bidirectional_attention".into(), json!(false));
            if !c.contains_key("rope_theta") {
                c.insert("rope_theta".into(), json!(1_000_000.0));
            }
        }
    }
    Ok(Value::Object(c))
}

fn rope_scaling(arch: Arch, md: &Metadata, info: &HfConfigInfo) -> Result<Value> {
    let k = |s: &str| key(arch, s);
    let f = |s: &str| md.f64(&k(s)).map(|v| f32_json(v as f32));
    if let Some(factor) = info.llama3_rope_factor {
        // The tensor only keeps the resulting factors; these are the LLaMA 3.1 constants that
        // produce them. See the crate docs.
        return Ok(json!({
            "rope_type": "llama3",
            "factor": f32_json(factor),
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        }));
    }
    let Some(kind) = md.str(&k("rope.scaling.type")) else {
        return Ok(Value::Null);
    };
    let mut m = Map::new();
    match kind {
        "linear" | "yarn" => {
            m.insert("rope_type".into(), json!(kind));
            m.insert("type".into(), json!(kind));
            if let Some(v) = f("rope.scaling.factor") {
                m.insert("factor".into(), v);
            }
            if let Some(v) = md.u64(&k("rope.scaling.original_context_length")) {
                m.insert("original_max_position_embeddings".into(), json!(v));
            }
            for (gguf, hf) in [
                ("rope.scaling.yarn_ext_factor", "extrapolation_factor"),
                ("rope.scaling.yarn_attn_factor", "attention_factor"),
                ("rope.scaling.yarn_beta_fast", "beta_fast"),
                ("rope.scaling.yarn_beta_slow", "beta_slow"),
            ] {
                if let Some(v) = f(gguf) {
                    m.insert(hf.into(), v);
                }
            }
            Ok(Value::Object(m))
        }
        _ => Ok(Value::Null),
    }
}
