//! Tokenizers of Hugging Face folders (`tokenizer.json`: WordPiece for BERT-style encoders such
//! as MiniLM, BPE and Unigram for decoders), through the `tokenizers` crate so that ids match
//! the reference Python implementation.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::error::TokenizerError;

pub struct HfTokenizer {
    /// Splits added/special tokens out of the text.
    parsing: tokenizers::Tokenizer,
    /// Treats special-token texts as plain text (`parse_special = false`).
    literal: tokenizers::Tokenizer,
    pub(super) bos: Option<u32>,
    pub(super) eos: Option<u32>,
    /// Sorted.
    pub(super) eog: Vec<u32>,
    path: PathBuf,
}

/// A special token in `tokenizer_config.json`: a string or `{"content": …}`.
fn token_text(v: &Json) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("content").and_then(Json::as_str))
}

fn read_json(path: &Path) -> Option<Json> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

impl HfTokenizer {
    pub fn from_dir(dir: &Path) -> Result<HfTokenizer, TokenizerError> {
        let path = dir.join("tokenizer.json");
        let parsing = tokenizers::Tokenizer::from_file(&path).map_err(|e| TokenizerError::Hf {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut literal = parsing.clone();
        literal.set_encode_special_tokens(true);

        let config = read_json(&dir.join("tokenizer_config.json")).unwrap_or(Json::Null);
        let special = |keys: &[&str]| {
            keys.iter()
                .filter_map(|k| config.get(*k).and_then(token_text))
                .find_map(|t| parsing.token_to_id(t))
        };
        let bos = special(&["bos_token", "cls_token"]);
        let eos = special(&["eos_token", "sep_token"]);
        let mut eog: Vec<u32> = eos.into_iter().collect();
        // A model's config.json may list further end ids (a number or a list).
        if let Some(ids) =
            read_json(&dir.join("config.json")).and_then(|c| c.get("eos_token_id").cloned())
        {
            let ids = match ids {
                Json::Array(a) => a,
                v => vec![v],
            };
            eog.extend(
                ids.iter()
                    .filter_map(Json::as_u64)
                    .filter_map(|x| u32::try_from(x).ok()),
            );
        }
        eog.sort_unstable();
        eog.dedup();
        Ok(HfTokenizer {
            parsing,
            literal,
            bos,
            eos,
            eog,
            path,
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> TokenizerError {
        TokenizerError::Hf {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// `add_special` applies the tokenizer's post-processor (e.g. BERT's `[CLS] … [SEP]`).
    pub fn encode(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        let tok = if parse_special {
            &self.parsing
        } else {
            &self.literal
        };
        let enc = tok.encode(text, add_special).map_err(|e| self.err(e))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], special: bool) -> Result<String, TokenizerError> {
        self.parsing.decode(ids, !special).map_err(|e| self.err(e))
    }

    /// The token's own text, decoded on its own (word-piece markers and byte-level characters
    /// resolved by the tokenizer's decoder).
    pub fn piece(&self, id: u32, special: bool) -> Result<String, TokenizerError> {
        self.decode(&[id], special)
    }

    pub fn vocab_size(&self) -> usize {
        self.parsing.get_vocab_size(true)
    }

    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }
}
