//! Cutting special tokens out of text before the model's tokenizer sees it.
//!
//! llama.cpp takes special tokens one at a time, longest text first, and splits every
//! remaining text fragment at that token's non-overlapping occurrences. The order matters when
//! occurrences overlap (a later, shorter token cannot match inside an earlier one's match), so
//! that is reproduced here. Control and unknown tokens only count when the caller asks for
//! special parsing; user-defined tokens (e.g. Gemma's runs of spaces and newlines) always do.
//! An Aho-Corasick pass first finds which special tokens occur at all, so that a vocabulary
//! with thousands of them costs one scan of the text rather than one per token.

use std::ops::Range;

use aho_corasick::AhoCorasick;

use super::vocab::{attr, Vocab};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fragment {
    Text(Range<usize>),
    Token(u32),
}

pub struct SpecialTokens {
    /// Special token ids in matching order: longest text first, then lowest id.
    order: Vec<u32>,
    /// Pattern i of `finder` is the text of `order[i]`.
    finder: Option<AhoCorasick>,
}

impl SpecialTokens {
    pub fn new(vocab: &Vocab) -> SpecialTokens {
        let mut order: Vec<u32> = (0..vocab.len() as u32)
            .filter(|&id| {
                vocab.attr(id) & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
                    && !vocab.texts[id as usize].is_empty()
            })
            .collect();
        order.sort_by_key(|&id| std::cmp::Reverse(vocab.texts[id as usize].len()));
        let finder = AhoCorasick::new(order.iter().map(|&id| &vocab.texts[id as usize])).ok();
        SpecialTokens { order, finder }
    }

    /// Splits `text` into text fragments and special tokens.
    pub fn partition(&self, vocab: &Vocab, text: &str, parse_special: bool) -> Vec<Fragment> {
        let mut frags = Vec::new();
        if text.is_empty() {
            return frags;
        }
        frags.push(Fragment::Text(0..text.len()));
        let Some(finder) = &self.finder else {
            return frags;
        };
        let mut present = vec![false; self.order.len()];
        let mut any = false;
        for m in finder.find_overlapping_iter(text) {
            present[m.pattern().as_usize()] = true;
            any = true;
        }
        if !any {
            return frags;
        }
        let mut next = Vec::new();
        for (k, &id) in self.order.iter().enumerate() {
            if !present[k] {
                continue;
            }
            if !parse_special && vocab.attr(id) & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let needle = vocab.texts[id as usize].as_str();
            next.clear();
            for f in frags.drain(..) {
                let Fragment::Text(r) = f else {
                    next.push(f);
                    continue;
                };
                let mut start = r.start;
                for (at, _) in text[r.clone()].match_indices(needle) {
                    let at = r.start + at;
                    if at > start {
                        next.push(Fragment::Text(start..at));
                    }
                    next.push(Fragment::Token(id));
                    start = at + needle.len();
                }
                if start < r.end {
                    next.push(Fragment::Text(start..r.end));
                }
            }
            std::mem::swap(&mut frags, &mut next);
        }
        frags
    }
}
