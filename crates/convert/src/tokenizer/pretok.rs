//! `tokenizer.ggml.pre` ↔ the HF pre-tokenizer.
//!
//! llama.cpp picks the pre-tokenizer by hashing the token ids of a fixed test string, which needs
//! the tokenizer itself. We instead recognise the pre-tokenizer *definition* in `tokenizer.json`
//! (the regex is what the hash ends up identifying), using the model identity only to break the
//! one tie that matters here (Digits + ByteLevel is SmolLM's `smollm`). Unknown definitions map
//! to `default`, which llama.cpp treats as LLaMA-style splitting.

use crate::Arch;
use serde_json::{json, Value};

/// LLaMA 3's split regex as written in its tokenizer.json.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2/3's split regex (digits one at a time).
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn flatten(pre: &Value) -> Vec<&Value> {
    match pre.get("pretokenizers").and_then(Value::as_array) {
        Some(list) => list.iter().collect(),
        None if pre.is_object() => vec![pre],
        None => vec![],
    }
}

fn split_regex(v: &Value) -> Option<&str> {
    (v.get("type")?.as_str()? == "Split").then_some(())?;
    v.get("pattern")?.get("Regex")?.as_str()
}

/// Chooses `tokenizer.ggml.pre` for a byte-level BPE tokenizer. `name_hint` is the model's name
/// (`_name_or_path` or folder name), lower-cased by the caller or not.
pub fn detect_pre(arch: Arch, tokenizer_json: &Value, name_hint: &str) -> String {
    let parts = tokenizer_json
        .get("pre_tokenizer")
        .map(flatten)
        .unwrap_or_default();
    let types: Vec<&str> = parts
        .iter()
        .filter_map(|p| p.get("type").and_then(Value::as_str))
        .collect();
    let regex = parts.iter().find_map(|p| split_regex(p));
    let pre = match (regex, types.as_slice()) {
        (Some(r), _) if r == LLAMA3_REGEX => "llama-bpe",
        (Some(r), _) if r == QWEN2_REGEX => "qwen2",
        (None, ["Digits", "ByteLevel"])
            if arch == Arch::Llama || name_hint.to_lowercase().contains("smollm") =>
        {
            "smollm"
        }
        (None, ["ByteLevel"]) => "gpt-2",
        _ if matches!(arch, Arch::Qwen2 | Arch::Qwen3) => "qwen2",
        _ if name_hint.to_lowercase().contains("smollm") => "smollm",
        _ => "default",
    };
    pre.to_string()
}

fn byte_level(use_regex: bool, trim_offsets: bool) -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": trim_offsets, "use_regex": use_regex})
}

fn split(regex: &str) -> Value {
    json!({"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": false})
}

/// `(normalizer, pre_tokenizer)` for tokenizer.json that reproduce llama.cpp's pre-tokenizer
/// `pre` (regexes from llama-vocab.cpp, in the spelling the original tokenizer.json files use).
pub(crate) fn hf_pre_tokenizer(pre: &str) -> (Value, Value) {
    match pre {
        "smollm" => (
            Value::Null,
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true},
                byte_level(true, true),
            ]}),
        ),
        "llama-bpe" | "llama3" => (
            Value::Null,
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_REGEX), byte_level(false, true)]}),
        ),
        "qwen2" => (
            json!({"type": "NFC"}),
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_REGEX), byte_level(false, false)]}),
        ),
        // gpt-2 and anything we do not know: plain GPT-2 byte-level splitting.
        _ => (Value::Null, byte_level(true, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_pre_tokenizers_are_recognised() {
        for (pre, arch) in [
            ("smollm", Arch::Llama),
            ("llama-bpe", Arch::Llama),
            ("qwen2", Arch::Qwen2),
            ("gpt-2", Arch::Llama),
        ] {
            let (_, p) = hf_pre_tokenizer(pre);
            let tj = json!({ "pre_tokenizer": p });
            assert_eq!(detect_pre(arch, &tj, "x"), pre);
        }
        assert_eq!(detect_pre(Arch::Qwen3, &json!({}), "x"), "qwen2");
        assert_eq!(
            detect_pre(Arch::Llama, &json!({}), "HuggingFaceTB/SmolLM2-135M"),
            "smollm"
        );
        assert_eq!(detect_pre(Arch::Llama, &json!({}), "x"), "default");
    }
}
