//! Calibration text → token windows, cut the way llama-imatrix (and llama-perplexity) cut their
//! text: the whole file tokenized once, then consecutive chunks of `n_ctx` tokens, each chunk's
//! first token replaced by BOS when the vocabulary adds one, so every window starts like a
//! sequence the model was trained on.

use crate::error::CalibError;
use lowbit_engine::tokenizer::Tokenizer;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct CalibWindows {
    pub path: PathBuf,
    pub n_ctx: usize,
    pub windows: Vec<Vec<u32>>,
    /// Tokens in the whole text (the windows use `n_windows · n_ctx` of them).
    pub text_tokens: usize,
}

impl CalibWindows {
    /// At most `max_windows` windows of `n_ctx` tokens from `path` (all that fit when None).
    pub fn from_file(
        path: &Path,
        tokenizer: &Tokenizer,
        n_ctx: usize,
        max_windows: Option<usize>,
    ) -> Result<CalibWindows, CalibError> {
        let err = |why: String| CalibError::Text {
            path: path.to_path_buf(),
            why,
        };
        let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read it: {e}")))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            err(format!(
                "not UTF-8 text (invalid byte at offset {}); give a plain-text file",
                e.valid_up_to()
            ))
        })?;
        Self::from_text(path, text, tokenizer, n_ctx, max_windows)
    }

    pub fn from_text(
        path: &Path,
        text: &str,
        tokenizer: &Tokenizer,
        n_ctx: usize,
        max_windows: Option<usize>,
    ) -> Result<CalibWindows, CalibError> {
        let err = |why: String| CalibError::Text {
            path: path.to_path_buf(),
            why,
        };
        if n_ctx < 2 {
            return Err(err(format!("windows of {n_ctx} tokens are too short (use 512)")));
        }
        if max_windows == Some(0) {
            return Err(err("asked for 0 calibration windows".into()));
        }
        let tokens = tokenizer.encode(text, true, false)?;
        let bos = tokenizer.adds_bos().then(|| tokenizer.bos()).flatten();
        let mut w = Self::from_tokens(path, &tokens, n_ctx, bos)?;
        if let Some(m) = max_windows {
            w.windows.truncate(m);
        }
        Ok(w)
    }

    /// Windows cut from token ids directly (tests, and callers that tokenized already).
    pub fn from_tokens(path: &Path, tokens: &[u32], n_ctx: usize, bos: Option<u32>) -> Result<CalibWindows, CalibError> {
        if n_ctx < 2 || tokens.len() < n_ctx {
            return Err(CalibError::Text {
                path: path.to_path_buf(),
                why: format!(
                    "{} tokens, shorter than one window of {n_ctx} (give more text or a smaller --calib-ctx)",
                    tokens.len()
                ),
            });
        }
        let windows = tokens
            .chunks_exact(n_ctx)
            .map(|c| {
                let mut t = c.to_vec();
                if let Some(b) = bos {
                    t[0] = b;
                }
                t
            })
            .collect();
        Ok(CalibWindows {
            path: path.to_path_buf(),
            n_ctx,
            windows,
            text_tokens: tokens.len(),
        })
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Tokens over all windows.
    pub fn tokens(&self) -> usize {
        self.windows.len() * self.n_ctx
    }
}
