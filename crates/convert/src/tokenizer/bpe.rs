//! Byte-level BPE (`tokenizer.ggml.model = gpt2`) ↔ tokenizer.json.

use super::special::{added_token_json, is_added, looks_special};
use super::{pretok, token_type, SpecialKind, TokenizerModel, Vocab};
use crate::error::{ConvertError, Result};
use serde_json::{json, Map, Value};

/// GPT-2 byte-level spelling of a space inside a merge part (U+0120, 'Ġ'), used by llama.cpp
/// when tokenizer.json writes merges as pairs that contain real spaces.
const SPACE_IN_MERGE: char = '\u{120}';

/// Merges from tokenizer.json, in either the old `"a b"` or the new `["a", "b"]` spelling,
/// as GGUF `"a b"` strings.
pub(crate) fn merges_from_json(model: &Value) -> Result<Vec<String>> {
    let Some(list) = model.get("merges").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(list.len());
    for m in list {
        match m {
            Value::String(s) => out.push(s.clone()),
            Value::Array(pair) if pair.len() == 2 => {
                let (Some(a), Some(b)) = (pair[0].as_str(), pair[1].as_str()) else {
                    return Err(ConvertError::Tokenizer(
                        "merge pair is not two strings".into(),
                    ));
                };
                let enc = |s: &str| s.replace(' ', &SPACE_IN_MERGE.to_string());
                out.push(format!("{} {}", enc(a), enc(b)));
            }
            _ => return Err(ConvertError::Tokenizer("unknown merges format".into())),
        }
    }
    Ok(out)
}

/// Token strings by id for a vocabulary of `vocab_size`: `model.vocab` plus `added_tokens`; ids
/// nobody claims become `[PAD{id}]` UNUSED tokens, as llama.cpp pads them.
pub(crate) fn tokens_from_json(
    tj: &Value,
    vocab_size: Option<usize>,
) -> Result<(Vec<String>, Vec<i32>)> {
    let vocab = tj
        .get("model")
        .and_then(|m| m.get("vocab"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ConvertError::Tokenizer("tokenizer.json has no model.vocab object".into())
        })?;
    let added: Vec<(usize, &str, bool)> = tj
        .get("added_tokens")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|t| {
                    Some((
                        t.get("id")?.as_u64()? as usize,
                        t.get("content")?.as_str()?,
                        t.get("special").and_then(Value::as_bool).unwrap_or(false),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let max_id = vocab
        .values()
        .filter_map(Value::as_u64)
        .map(|i| i as usize)
        .chain(added.iter().map(|a| a.0))
        .max()
        .map_or(0, |m| m + 1);
    let n = vocab_size.unwrap_or(max_id).max(max_id);
    if n > 16 << 20 {
        return Err(ConvertError::Tokenizer(format!(
            "implausible vocabulary size {n}"
        )));
    }
    let mut tokens: Vec<Option<String>> = vec![None; n];
    let mut types = vec![token_type::NORMAL; n];
    for (tok, id) in vocab {
        let id = id.as_u64().ok_or_else(|| {
            ConvertError::Tokenizer(format!("token {tok:?} has a non-integer id"))
        })?;
        tokens[id as usize] = Some(tok.clone());
    }
    for (id, content, special) in added {
        let (text, ty) = if special || looks_special(content) {
            (content.to_string(), token_type::CONTROL)
        } else {
            // llama.cpp stores user-defined tokens pre-normalized (SentencePiece spaces undone).
            (content.replace('\u{2581}', " "), token_type::USER_DEFINED)
        };
        tokens[id] = Some(text);
        types[id] = ty;
    }
    let tokens = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.unwrap_or_else(|| {
                types[i] = token_type::UNUSED;
                format!("[PAD{i}]")
            })
        })
        .collect();
    Ok((tokens, types))
}

fn is_padding(tok: &str, id: usize, ty: i32) -> bool {
    ty == token_type::UNUSED
        && tok.strip_prefix("[PAD").and_then(|r| r.strip_suffix(']')) == Some(&id.to_string())
}

/// tokenizer.json for a byte-level BPE vocabulary.
pub(crate) fn tokenizer_json(v: &Vocab) -> Result<Value> {
    debug_assert_eq!(v.model, TokenizerModel::Gpt2);
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (id, tok) in v.tokens.iter().enumerate() {
        let ty = v.token_type(id);
        if is_padding(tok, id, ty) {
            continue;
        }
        if is_added(ty) {
            added.push(added_token_json(id, tok, ty));
        }
        // The first id of a duplicated string wins, as in a JSON object that HF wrote.
        vocab.entry(tok.clone()).or_insert(json!(id));
    }
    let mut merges = Vec::with_capacity(v.merges.len());
    for m in &v.merges {
        let (a, b) = m.split_once(' ').ok_or_else(|| {
            ConvertError::Tokenizer(format!("merge {m:?} has no separating space"))
        })?;
        merges.push(json!([a, b]));
    }
    let (normalizer, pre_tokenizer) = pretok::hf_pre_tokenizer(&v.pre);
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor(v, json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true})),
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": null,
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": false,
            "byte_fallback": false,
            "ignore_merges": v.pre == "llama-bpe",
            "vocab": vocab,
            "merges": merges,
        },
    }))
}

/// Adds BOS/EOS the way the GGUF says (`add_bos_token`), so HF's encoder and llama.cpp agree;
/// `fallback` is the post-processor used when nothing is added.
pub(crate) fn post_processor(v: &Vocab, fallback: Value) -> Value {
    let bos = v
        .add_bos
        .unwrap_or(false)
        .then(|| v.special_id(SpecialKind::Bos))
        .flatten();
    let eos = v
        .add_eos
        .unwrap_or(false)
        .then(|| v.special_id(SpecialKind::Eos))
        .flatten();
    if bos.is_none() && eos.is_none() {
        return fallback;
    }
    let mut single = Vec::new();
    let mut pair = Vec::new();
    let mut specials = Map::new();
    let mut special = |id: u32, type_id: u32| {
        let tok = v.tokens.get(id as usize).cloned().unwrap_or_default();
        specials.insert(
            tok.clone(),
            json!({"id": tok, "ids": [id], "tokens": [tok]}),
        );
        json!({"SpecialToken": {"id": tok, "type_id": type_id}})
    };
    if let Some(b) = bos {
        single.push(special(b, 0));
        pair.push(special(b, 0));
    }
    single.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
    pair.push(json!({"Sequence": {"id": "A", "type_id": 0}}));
    // No separator between A and B: a middle token would read back as an add_sep flag.
    pair.push(json!({"Sequence": {"id": "B", "type_id": 1}}));
    if let Some(e) = eos {
        single.push(special(e, 0));
        pair.push(special(e, 1));
    }
    json!({"type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials})
}
