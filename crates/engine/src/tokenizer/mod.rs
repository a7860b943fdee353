//! Text ↔ token ids, exactly as llama.cpp produces them for GGUF models (perplexity is only
//! comparable when the ids are the same), and as Hugging Face's `tokenizers` does for HF
//! folders.
//!
//! GGUF files carry their tokenizer in `tokenizer.ggml.*`: byte-level BPE (`gpt2`: SmolLM2,
//! LLaMA-3, Qwen2, …) with the pre-tokenizer `tokenizer.ggml.pre` names, or SentencePiece-style
//! merging by score (`llama`: LLaMA-2, Gemma). Special tokens in text are cut out first,
//! as llama.cpp's `llama_tokenize` does.

mod bpe;
mod bytes;
mod error;
mod gguf;
mod hash;
mod hf;
mod native;
mod pretok;
mod special;
mod spm;
mod unicode;
mod vocab;

#[cfg(test)]
mod tests;

use std::path::Path;

use lowbit_files::GgufFile;

pub use error::TokenizerError;
pub use hf::HfTokenizer;
pub use native::GgufTokenizer;
pub use pretok::PreTokenizer;

/// A tokenizer the engine and CLI use without caring where it came from.
pub enum Tokenizer {
    /// From GGUF metadata, matching llama.cpp.
    Gguf(Box<GgufTokenizer>),
    /// From an HF folder's `tokenizer.json`.
    Hf(Box<HfTokenizer>),
}

impl Tokenizer {
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        Ok(Tokenizer::Gguf(Box::new(gguf::load(file)?)))
    }

    /// Reads `dir/tokenizer.json` (and `tokenizer_config.json` / `config.json` for the special
    /// ids when present).
    pub fn from_hf_dir(dir: impl AsRef<Path>) -> Result<Tokenizer, TokenizerError> {
        Ok(Tokenizer::Hf(Box::new(HfTokenizer::from_dir(
            dir.as_ref(),
        )?)))
    }

    /// Like `llama_tokenize`: `add_special` adds BOS/EOS as the model asks (for HF folders: the
    /// post-processor's tokens, e.g. `[CLS] … [SEP]`); `parse_special` lets control tokens
    /// written in the text (`<|im_start|>`) become their ids instead of being spelled out.
    pub fn encode(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        match self {
            Tokenizer::Gguf(t) => Ok(t.encode(text, add_special, parse_special)),
            Tokenizer::Hf(t) => t.encode(text, add_special, parse_special),
        }
    }

    /// The text of `ids`, control tokens left out. Invalid UTF-8 (a sequence cut inside a
    /// character) becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.check_ids(ids)?;
        match self {
            Tokenizer::Gguf(t) => {
                Ok(String::from_utf8_lossy(&t.decode_bytes(ids, false)).into_owned())
            }
            Tokenizer::Hf(t) => t.decode(ids, false),
        }
    }

    /// The bytes one token stands for (`llama_token_to_piece`); a multi-byte character may be
    /// split across tokens, hence bytes. `special` renders control tokens' text.
    pub fn token_to_piece(&self, id: u32, special: bool) -> Result<Vec<u8>, TokenizerError> {
        self.check_ids(&[id])?;
        match self {
            Tokenizer::Gguf(t) => {
                let mut out = Vec::new();
                t.append_piece(id, special, &mut out);
                Ok(out)
            }
            Tokenizer::Hf(t) => Ok(t.piece(id, special)?.into_bytes()),
        }
    }

    fn check_ids(&self, ids: &[u32]) -> Result<(), TokenizerError> {
        let n = self.vocab_size();
        match ids.iter().find(|&&id| id as usize >= n) {
            Some(&id) => Err(TokenizerError::BadId { id, n_vocab: n }),
            None => Ok(()),
        }
    }

    pub fn bos(&self) -> Option<u32> {
        match self {
            Tokenizer::Gguf(t) => t.vocab().bos,
            Tokenizer::Hf(t) => t.bos,
        }
    }

    pub fn eos(&self) -> Option<u32> {
        match self {
            Tokenizer::Gguf(t) => t.vocab().eos,
            Tokenizer::Hf(t) => t.eos,
        }
    }

    /// Whether BOS is prepended when encoding with `add_special`.
    pub fn adds_bos(&self) -> bool {
        match self {
            Tokenizer::Gguf(t) => t.vocab().add_bos,
            Tokenizer::Hf(t) => t.bos.is_some(),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Gguf(t) => t.vocab().len(),
            Tokenizer::Hf(t) => t.vocab_size(),
        }
    }

    /// Whether generation stops at `id` (EOS, end-of-turn and similar).
    pub fn is_eog(&self, id: u32) -> bool {
        match self {
            Tokenizer::Gguf(t) => t.vocab().is_eog(id),
            Tokenizer::Hf(t) => t.is_eog(id),
        }
    }
}
