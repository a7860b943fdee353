//! Tensor names: Hugging Face ↔ GGUF (facts from gguf-py's tensor_mapping.py).

use crate::arch::Arch;
use crate::error::{ConvertError, Result};

/// Per-block tensor stems (no `.weight` / `.bias`) shared by every family here.
const BLOCK_COMMON: &[(&str, &str)] = &[
    ("input_layernorm", "attn_norm"),
    ("self_attn.q_proj", "attn_q"),
    ("self_attn.k_proj", "attn_k"),
    ("self_attn.v_proj", "attn_v"),
    ("self_attn.o_proj", "attn_output"),
    ("self_attn.q_norm", "attn_q_norm"),
    ("self_attn.k_norm", "attn_k_norm"),
    ("mlp.gate_proj", "ffn_gate"),
    ("mlp.up_proj", "ffn_up"),
    ("mlp.down_proj", "ffn_down"),
];

/// LLaMA / Qwen: one norm before attention, one before the MLP.
const BLOCK_LLAMA: &[(&str, &str)] = &[("post_attention_layernorm", "ffn_norm")];

/// Gemma 3 "sandwich" norms: HF's `post_attention_layernorm` is a real post-norm here, and the
/// pre-MLP norm is `pre_feedforward_layernorm`.
const BLOCK_GEMMA3: &[(&str, &str)] = &[
    ("post_attention_layernorm", "post_attention_norm"),
    ("pre_feedforward_layernorm", "ffn_norm"),
    ("post_feedforward_layernorm", "post_ffw_norm"),
];

const GLOBAL: &[(&str, &str)] = &[
    ("model.embed_tokens", "token_embd"),
    ("model.norm", "output_norm"),
    ("lm_head", "output"),
];

/// GGUF tensors with no HF counterpart: llama.cpp computes `rope_freqs` from `rope_scaling`.
const GGUF_ONLY: &[&str] = &["rope_freqs.weight"];

fn block_table(arch: Arch) -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    let specific = match arch {
        Arch::Gemma3 => BLOCK_GEMMA3,
        _ => BLOCK_LLAMA,
    };
    BLOCK_COMMON.iter().chain(specific.iter())
}

fn split_suffix(name: &str) -> (&str, &str) {
    for suffix in [".weight", ".bias"] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return (stem, suffix);
        }
    }
    (name, "")
}

/// Brings wrapper-model spellings (multimodal Gemma 3, SmolVLM) back to the plain causal-LM names.
fn normalize_hf(name: &str) -> std::borrow::Cow<'_, str> {
    for (from, to) in [
        ("model.language_model.", "model."),
        ("language_model.model.", "model."),
        ("language_model.lm_head", "lm_head"),
        ("model.text_model.", "model."),
    ] {
        if let Some(rest) = name.strip_prefix(from) {
            return format!("{to}{rest}").into();
        }
    }
    name.into()
}

/// True for HF tensors that are deliberately not converted (vision towers of multimodal
/// checkpoints, buffers older checkpoints saved by accident).
pub fn hf_is_ignored(name: &str) -> bool {
    name.ends_with("rotary_emb.inv_freq")
        || [
            "vision_tower.",
            "multi_modal_projector.",
            "model.vision_tower.",
            "model.multi_modal_projector.",
        ]
        .iter()
        .any(|p| name.starts_with(p))
}

/// GGUF name for an HF tensor. `Ok(None)` for tensors that are intentionally dropped
/// ([`hf_is_ignored`]); an error for tensors this family does not know.
pub fn hf_to_gguf(arch: Arch, hf_name: &str) -> Result<Option<String>> {
    if hf_is_ignored(hf_name) {
        return Ok(None);
    }
    let name = normalize_hf(hf_name);
    let (stem, suffix) = split_suffix(&name);
    if let Some((_, g)) = GLOBAL.iter().find(|(h, _)| *h == stem) {
        return Ok(Some(format!("{g}{suffix}")));
    }
    if let Some(rest) = stem.strip_prefix("model.layers.") {
        if let Some((idx, part)) = rest.split_once('.') {
            if idx.parse::<u32>().is_ok() {
                if let Some((_, g)) = block_table(arch).find(|(h, _)| *h == part) {
                    return Ok(Some(format!("blk.{idx}.{g}{suffix}")));
                }
            }
        }
    }
    Err(ConvertError::UnknownTensor {
        name: hf_name.to_string(),
        arch: arch.gguf_name(),
    })
}

/// HF name for a GGUF tensor. `Ok(None)` for GGUF-only tensors (`rope_freqs`).
pub fn gguf_to_hf(arch: Arch, gguf_name: &str) -> Result<Option<String>> {
    if GGUF_ONLY.contains(&gguf_name) {
        return Ok(None);
    }
    let (stem, suffix) = split_suffix(gguf_name);
    if let Some((h, _)) = GLOBAL.iter().find(|(_, g)| *g == stem) {
        return Ok(Some(format!("{h}{suffix}")));
    }
    if let Some(rest) = stem.strip_prefix("blk.") {
        if let Some((idx, part)) = rest.split_once('.') {
            if idx.parse::<u32>().is_ok() {
                if let Some((h, _)) = block_table(arch).find(|(_, g)| *g == part) {
                    return Ok(Some(format!("model.layers.{idx}.{h}{suffix}")));
                }
            }
        }
    }
    Err(ConvertError::UnknownTensor {
        name: gguf_name.to_string(),
        arch: arch.gguf_name(),
    })
}

/// The block index of a GGUF (`blk.N.`) or HF (`model.layers.N.`) tensor name.
pub fn block_index(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix("blk.")
        .or_else(|| name.strip_prefix("model.layers."))?;
    rest.split_once('.')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_names_round_trip() {
        let cases = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
            (
                "model.layers.3.self_attn.q_proj.weight",
                "blk.3.attn_q.weight",
            ),
            ("model.layers.3.self_attn.k_proj.bias", "blk.3.attn_k.bias"),
            (
                "model.layers.12.mlp.down_proj.weight",
                "blk.12.ffn_down.weight",
            ),
            (
                "model.layers.0.input_layernorm.weight",
                "blk.0.attn_norm.weight",
            ),
            (
                "model.layers.0.post_attention_layernorm.weight",
                "blk.0.ffn_norm.weight",
            ),
            (
                "model.layers.1.self_attn.k_norm.weight",
                "blk.1.attn_k_norm.weight",
            ),
        ];
        for (h, g) in cases {
            assert_eq!(hf_to_gguf(Arch::Llama, h).unwrap().as_deref(), Some(g));
            assert_eq!(gguf_to_hf(Arch::Llama, g).unwrap().as_deref(), Some(h));
        }
    }

    #[test]
    fn gemma3_norms() {
        let cases = [
            (
                "model.layers.0.input_layernorm.weight",
                "blk.0.attn_norm.weight",
            ),
            (
                "model.layers.0.post_attention_layernorm.weight",
                "blk.0.post_attention_norm.weight",
            ),
            (
                "model.layers.0.pre_feedforward_layernorm.weight",
                "blk.0.ffn_norm.weight",
            ),
            (
                "model.layers.0.post_feedforward_layernorm.weight",
                "blk.0.post_ffw_norm.weight",
            ),
            (
                "model.layers.0.self_attn.q_norm.weight",
                "blk.0.attn_q_norm.weight",
            ),
        ];
        for (h, g) in cases {
            assert_eq!(hf_to_gguf(Arch::Gemma3, h).unwrap().as_deref(), Some(g));
            assert_eq!(gguf_to_hf(Arch::Gemma3, g).unwrap().as_deref(), Some(h));
        }
        assert_eq!(
            hf_to_gguf(
                Arch::Gemma3,
                "language_model.model.layers.2.mlp.up_proj.weight"
            )
            .unwrap()
            .as_deref(),
            Some("blk.2.ffn_up.weight")
        );
    }

    #[test]
    fn unknown_and_ignored() {
        assert!(hf_to_gguf(Arch::Llama, "model.layers.0.mystery.weight").is_err());
        assert!(hf_to_gguf(Arch::Llama, "model.layers.x.mlp.up_proj.weight").is_err());
        assert_eq!(
            hf_to_gguf(Arch::Llama, "model.layers.0.self_attn.rotary_emb.inv_freq").unwrap(),
            None
        );
        assert_eq!(
            hf_to_gguf(Arch::Gemma3, "vision_tower.blocks.0.weight").unwrap(),
            None
        );
        assert_eq!(gguf_to_hf(Arch::Llama, "rope_freqs.weight").unwrap(), None);
        assert!(gguf_to_hf(Arch::Llama, "blk.0.post_ffw_norm.weight").is_err());
        assert_eq!(block_index("blk.17.attn_q.weight"), Some(17));
        assert_eq!(block_index("token_embd.weight"), None);
    }
}
