//! Reading a Hugging Face folder's tokenizer into a GGUF [`Vocab`].

use super::special::{looks_special, read_specials};
use super::spm::{refine_types, scores_from_order};
use super::spm_proto::read_spm_model;
use super::{bpe, pretok, token_type, TokenizerModel, Vocab};
use crate::error::{ConvertError, Result};
use crate::Arch;
use serde_json::Value;
use std::path::Path;

/// A vocabulary read from an HF folder.
#[derive(Clone, Debug)]
pub struct HfVocab {
    pub vocab: Vocab,
    /// Tokens the tokenizer really defines (before padding to `config.vocab_size`); Gemma 3's
    /// embedding is cut to this many rows, as llama.cpp does.
    pub n_real: usize,
}

pub(crate) fn read_json_opt(path: &Path) -> Result<Option<Value>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| ConvertError::Json {
                    path: path.to_path_buf(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConvertError::io(path, e)),
    }
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConvertError::io(path, e)),
    }
}

fn chat_template_file(dir: &Path) -> Result<Option<String>> {
    if let Some(b) = read_opt(&dir.join("chat_template.jinja"))? {
        return Ok(Some(String::from_utf8_lossy(&b).into_owned()));
    }
    Ok(
        read_json_opt(&dir.join("chat_template.json"))?.and_then(|j| {
            j.get("chat_template")
                .and_then(Value::as_str)
                .map(str::to_string)
        }),
    )
}

/// Reads the tokenizer of an HF folder the way llama.cpp's converter does for this family:
/// `tokenizer.model` (SentencePiece) when present, otherwise `tokenizer.json`. `config` is the
/// merged text config; `name_hint` the model name (used to pick `tokenizer.ggml.pre`).
pub fn vocab_from_hf_dir(
    dir: &Path,
    arch: Arch,
    config: &Value,
    name_hint: &str,
) -> Result<HfVocab> {
    let tj = read_json_opt(&dir.join("tokenizer.json"))?;
    let tc = read_json_opt(&dir.join("tokenizer_config.json"))?;
    let template_file = chat_template_file(dir)?;
    let config_vocab = config
        .get("vocab_size")
        .and_then(Value::as_u64)
        .map(|v| v as usize);
    let tc_prefix = tc
        .as_ref()
        .and_then(|c| c.get("add_prefix_space"))
        .and_then(Value::as_bool);

    if let Some(model) = read_opt(&dir.join("tokenizer.model"))? {
        let pieces = read_spm_model(&model)?;
        let n = config_vocab.unwrap_or(pieces.len());
        let mut tokens: Vec<String> = (0..n).map(|i| format!("[PAD{i}]")).collect();
        let mut scores = vec![-10000f32; n];
        let mut types = vec![token_type::UNUSED; n];
        for (i, p) in pieces.iter().enumerate().take(n) {
            tokens[i] = p.piece.clone();
            scores[i] = p.score;
            // llama.cpp asks the processor IsUnknown/IsControl/IsUnused/IsByte; anything else,
            // user-defined pieces included, is NORMAL until tokenizer_config says otherwise.
            types[i] = match p.kind {
                token_type::UNKNOWN
                | token_type::CONTROL
                | token_type::UNUSED
                | token_type::BYTE => p.kind,
                _ => token_type::NORMAL,
            };
        }
        if let Some(added) = read_json_opt(&dir.join("added_tokens.json"))?
            .as_ref()
            .and_then(Value::as_object)
        {
            for (tok, id) in added {
                if let Some(id) = id.as_u64().map(|i| i as usize).filter(|&i| i < n) {
                    tokens[id] = tok.clone();
                    scores[id] = -1000.0;
                    types[id] = token_type::USER_DEFINED;
                }
            }
        }
        if let Some(dec) = tc
            .as_ref()
            .and_then(|c| c.get("added_tokens_decoder"))
            .and_then(Value::as_object)
        {
            for (id, data) in dec {
                let (Ok(id), Some(content)) = (
                    id.parse::<usize>(),
                    data.get("content").and_then(Value::as_str),
                ) else {
                    continue;
                };
                if id >= n {
                    continue;
                }
                let special = data
                    .get("special")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if special || looks_special(content) {
                    types[id] = token_type::CONTROL;
                    tokens[id] = content.to_string();
                } else {
                    types[id] = token_type::USER_DEFINED;
                    tokens[id] = content.replace('\u{2581}', " ");
                }
                scores[id] = -1000.0;
            }
        }
        let sp = read_specials(
            tj.as_ref(),
            tc.as_ref(),
            config,
            template_file,
            tokens.len(),
        );
        let add_space_prefix = if arch == Arch::Gemma3 {
            Some(false)
        } else {
            tc_prefix
        };
        let vocab = Vocab {
            model: TokenizerModel::Llama,
            pre: "default".into(),
            tokens,
            token_types: types,
            scores: Some(scores),
            merges: Vec::new(),
            special_ids: sp.ids,
            add_bos: sp.add_bos,
            add_eos: sp.add_eos,
            add_sep: sp.add_sep,
            add_space_prefix,
            chat_template: sp.chat_template,
        };
        return Ok(HfVocab {
            vocab,
            n_real: pieces.len().min(n),
        });
    }

    let tj = tj.ok_or_else(|| {
        ConvertError::Tokenizer(format!(
            "{} has neither tokenizer.model nor tokenizer.json",
            dir.display()
        ))
    })?;
    let model = tj.get("model").cloned().unwrap_or(Value::Null);
    if model.get("type").and_then(Value::as_str) != Some("BPE") {
        return Err(ConvertError::Tokenizer(
            "only BPE tokenizer.json models are supported".into(),
        ));
    }
    let n_real = model
        .get("vocab")
        .and_then(Value::as_object)
        .map_or(0, |v| v.len())
        + tj.get("added_tokens")
            .and_then(Value::as_array)
            .map_or(0, |a| a.len());
    let (tokens, mut types) = bpe::tokens_from_json(&tj, config_vocab)?;
    let sp = read_specials(Some(&tj), tc.as_ref(), config, template_file, tokens.len());
    let byte_fallback = model
        .get("byte_fallback")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let vocab = if byte_fallback {
        // SentencePiece-style BPE without tokenizer.model: scores reconstructed from order.
        refine_types(
            &tokens,
            &mut types,
            model.get("unk_token").and_then(Value::as_str),
        );
        let scores = scores_from_order(&types);
        Vocab {
            model: TokenizerModel::Llama,
            pre: "default".into(),
            tokens,
            token_types: types,
            scores: Some(scores),
            merges: Vec::new(),
            special_ids: sp.ids,
            add_bos: sp.add_bos,
            add_eos: sp.add_eos,
            add_sep: sp.add_sep,
            add_space_prefix: if arch == Arch::Gemma3 {
                Some(false)
            } else {
                tc_prefix
            },
            chat_template: sp.chat_template,
        }
    } else {
        let mut add_bos = sp.add_bos;
        // llama.cpp forces add_bos_token = false for 49152-token LLaMA vocabularies (SmolLM,
        // Granite small), overriding whatever the HF files say.
        if arch == Arch::Llama && config_vocab == Some(49152) {
            add_bos = Some(false);
        }
        Vocab {
            model: TokenizerModel::Gpt2,
            pre: pretok::detect_pre(arch, &tj, name_hint),
            tokens,
            token_types: types,
            scores: None,
            merges: bpe::merges_from_json(&model)?,
            special_ids: sp.ids,
            add_bos,
            add_eos: sp.add_eos,
            add_sep: sp.add_sep,
            add_space_prefix: if arch == Arch::Llama { tc_prefix } else { None },
            chat_template: sp.chat_template,
        }
    };
    Ok(HfVocab { vocab, n_real })
}
