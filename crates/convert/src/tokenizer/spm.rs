//! SentencePiece vocabularies (`tokenizer.ggml.model = llama`, Gemma) ↔ HF files.
//!
//! llama.cpp's SentencePiece tokenizer repeatedly merges the adjacent pair whose concatenation is
//! the highest-scoring vocabulary piece. A HF BPE model with merges ranked by that score and
//! byte fallback performs the same merges, so that is what we export (as HF's own Gemma
//! tokenizer.json does); the exact scores travel in `tokenizer.model`.

use super::bpe::post_processor;
use super::special::{added_token_json, is_added};
use super::spm_proto::{write_spm_model, SpmIds, SpmPiece};
use super::{token_type, SpecialKind, Vocab};
use crate::error::{ConvertError, Result};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Merges implied by scores: every split `(left, right)` of a NORMAL piece into two NORMAL
/// pieces, ordered by the merged piece's score (best first), ties by the parts' ids.
pub fn derive_merges(tokens: &[String], types: &[i32], scores: &[f32]) -> Vec<(u32, u32)> {
    let normal =
        |i: usize| types.get(i).copied().unwrap_or(token_type::NORMAL) == token_type::NORMAL;
    let mut ids: HashMap<&str, u32> = HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if normal(i) {
            ids.entry(t.as_str()).or_insert(i as u32);
        }
    }
    let mut merges: Vec<(f32, u32, u32)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if !normal(i) {
            continue;
        }
        for (cut, _) in t.char_indices().skip(1) {
            if let (Some(&l), Some(&r)) = (ids.get(&t[..cut]), ids.get(&t[cut..])) {
                merges.push((scores.get(i).copied().unwrap_or(0.0), l, r));
            }
        }
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    merges.into_iter().map(|(_, l, r)| (l, r)).collect()
}

fn unk_token(v: &Vocab) -> Option<&str> {
    let id = v
        .special_id(SpecialKind::Unk)
        .map(|i| i as usize)
        .or_else(|| v.token_types.iter().position(|&t| t == token_type::UNKNOWN))?;
    v.tokens.get(id).map(String::as_str)
}

/// tokenizer.json: BPE with byte fallback, spaces normalized to '▁'.
pub(crate) fn tokenizer_json(v: &Vocab) -> Result<Value> {
    let scores = v
        .scores
        .as_ref()
        .ok_or_else(|| ConvertError::Tokenizer("SentencePiece vocabulary without scores".into()))?;
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (id, tok) in v.tokens.iter().enumerate() {
        let ty = v.token_type(id);
        if is_added(ty) || ty == token_type::UNKNOWN {
            added.push(added_token_json(
                id,
                tok,
                if ty == token_type::UNKNOWN {
                    token_type::CONTROL
                } else {
                    ty
                },
            ));
        }
        vocab.entry(tok.clone()).or_insert(json!(id));
    }
    let merges: Vec<Value> = derive_merges(&v.tokens, &v.token_types, scores)
        .into_iter()
        .map(|(l, r)| json!([v.tokens[l as usize], v.tokens[r as usize]]))
        .collect();
    let prefix = v.add_space_prefix.unwrap_or(false);
    let replace_space =
        json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"});
    let normalizer = if prefix {
        json!({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u{2581}"}, replace_space]})
    } else {
        replace_space
    };
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if prefix {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": normalizer,
        "pre_tokenizer": null,
        "post_processor": post_processor(v, Value::Null),
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "BPE",
            "dropout": null,
            "unk_token": unk_token(v),
            "continuing_subword_prefix": null,
            "end_of_word_suffix": null,
            "fuse_unk": true,
            "byte_fallback": true,
            "ignore_merges": false,
            "vocab": vocab,
            "merges": merges,
        },
    }))
}

/// `tokenizer.model` carrying the exact pieces, scores and types.
pub(crate) fn spm_model(v: &Vocab) -> Result<Vec<u8>> {
    let scores = v
        .scores
        .as_ref()
        .ok_or_else(|| ConvertError::Tokenizer("SentencePiece vocabulary without scores".into()))?;
    let unk = v.special_id(SpecialKind::Unk).map(|i| i as usize);
    let pieces: Vec<SpmPiece> = v
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| SpmPiece {
            piece: t.clone(),
            score: scores[i],
            // sentencepiece refuses a model without an UNKNOWN piece; llama.cpp's converter
            // often retypes it CONTROL, which tokenizer_config.json restores on re-import.
            kind: if Some(i) == unk {
                token_type::UNKNOWN
            } else {
                v.token_type(i)
            },
        })
        .collect();
    let id = |k| v.special_id(k).map_or(-1, |i| i as i32);
    let ids = SpmIds {
        unk: id(SpecialKind::Unk),
        bos: id(SpecialKind::Bos),
        eos: id(SpecialKind::Eos),
        pad: id(SpecialKind::Pad),
    };
    let byte_fallback = v
        .token_types
        .iter()
        .filter(|&&t| t == token_type::BYTE)
        .count()
        == 256;
    Ok(write_spm_model(
        &pieces,
        ids,
        v.add_space_prefix.unwrap_or(false),
        byte_fallback,
    ))
}

/// Scores for a SentencePiece vocabulary known only from tokenizer.json (no tokenizer.model):
/// BPE vocabularies list pieces in merge order, so `-(rank among normal pieces)` reproduces the
/// merge priorities (the exact values of the original model are not recoverable). Control and
/// user-defined pieces get llama.cpp's -1000, bytes 0.
pub(crate) fn scores_from_order(types: &[i32]) -> Vec<f32> {
    let mut rank = 0f32;
    types
        .iter()
        .map(|&t| match t {
            token_type::NORMAL => {
                let s = -rank;
                rank += 1.0;
                s
            }
            token_type::CONTROL | token_type::USER_DEFINED | token_type::UNUSED => -1000.0,
            _ => 0.0,
        })
        .collect()
}

/// Marks `<0xXX>` pieces as BYTE and the unknown piece as UNKNOWN (types tokenizer.json lacks).
pub(crate) fn refine_types(tokens: &[String], types: &mut [i32], unk: Option<&str>) {
    for (t, ty) in tokens.iter().zip(types.iter_mut()) {
        if *ty != token_type::NORMAL {
            continue;
        }
        let is_byte = t.len() == 6
            && t.starts_with("<0x")
            && t.ends_with('>')
            && u8::from_str_radix(&t[3..5], 16).is_ok();
        if is_byte {
            *ty = token_type::BYTE;
        } else if Some(t.as_str()) == unk {
            *ty = token_type::UNKNOWN;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_follow_scores() {
        let toks: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let types = vec![1; 6];
        let scores = vec![0.0, 0.0, 0.0, -2.0, -1.0, -3.0];
        let m = derive_merges(&toks, &types, &scores);
        // bc (-1) before ab (-2) before the two ways to make abc (-3).
        assert_eq!(m, vec![(1, 2), (0, 1), (0, 4), (3, 2)]);
    }
}
