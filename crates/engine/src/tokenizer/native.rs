//! The tokenizer a GGUF file describes, behaving as llama.cpp's `llama_tokenize` and
//! `llama_token_to_piece` do for the same file.

use std::cell::RefCell;

use super::bpe::{Bpe, BpeScratch};
use super::bytes::char_to_byte;
use super::pretok::{PreTokenizer, Scratch};
use super::special::{Fragment, SpecialTokens};
use super::spm::{self, SpmScratch};
use super::unicode;
use super::vocab::{attr, Vocab};

pub enum Algorithm {
    /// `tokenizer.ggml.model = gpt2`.
    Bpe { bpe: Bpe, pre: PreTokenizer },
    /// `tokenizer.ggml.model = llama`.
    Spm { add_space_prefix: bool },
}

pub struct GgufTokenizer {
    pub(super) vocab: Vocab,
    pub(super) specials: SpecialTokens,
    pub(super) algo: Algorithm,
}

#[derive(Default)]
struct Scratches {
    pre: Scratch,
    bpe: BpeScratch,
    spm: SpmScratch,
    words: Vec<std::ops::Range<usize>>,
}

thread_local! {
    static SCRATCH: RefCell<Scratches> = RefCell::new(Scratches::default());
}

impl GgufTokenizer {
    pub fn new(vocab: Vocab, algo: Algorithm) -> GgufTokenizer {
        if matches!(algo, Algorithm::Bpe { .. }) {
            unicode::init();
        }
        let specials = SpecialTokens::new(&vocab);
        GgufTokenizer {
            vocab,
            specials,
            algo,
        }
    }

    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// llama.cpp's `llama_tokenize(text, add_special, parse_special)`.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let frags = self.specials.partition(&self.vocab, text, parse_special);
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        let v = &self.vocab;
        if add_special && v.add_bos {
            out.extend(v.bos);
        }
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let s = &mut *guard;
            match &self.algo {
                Algorithm::Bpe { bpe, pre } => {
                    for f in &frags {
                        match f {
                            Fragment::Token(id) => out.push(*id),
                            Fragment::Text(r) => {
                                let frag = &text[r.clone()];
                                s.words.clear();
                                pre.split(frag, &mut s.pre, &mut s.words);
                                for w in &s.words {
                                    bpe.encode_word(
                                        v,
                                        frag[w.clone()].as_bytes(),
                                        &mut s.bpe,
                                        &mut out,
                                    );
                                }
                            }
                        }
                    }
                }
                Algorithm::Spm { add_space_prefix } => {
                    // The first text, and any text right after a special token, gets a space.
                    let mut prev_special = true;
                    let mut buf = String::new();
                    for f in &frags {
                        match f {
                            Fragment::Token(id) => {
                                out.push(*id);
                                prev_special = true;
                            }
                            Fragment::Text(r) => {
                                let frag = &text[r.clone()];
                                if *add_space_prefix && prev_special {
                                    buf.clear();
                                    buf.push(' ');
                                    buf.push_str(frag);
                                    spm::encode(v, &buf, &mut s.spm, &mut out);
                                } else {
                                    spm::encode(v, frag, &mut s.spm, &mut out);
                                }
                                prev_special = false;
                            }
                        }
                    }
                }
            }
        });
        if add_special && v.add_eos {
            out.extend(v.eos);
        }
        out
    }

    /// Appends the bytes token `id` stands for. Control and unknown tokens are empty unless
    /// `special`; ids outside the vocabulary are empty.
    pub fn append_piece(&self, id: u32, special: bool, out: &mut Vec<u8>) {
        let v = &self.vocab;
        let Some(text) = v.texts.get(id as usize) else {
            return;
        };
        let a = v.attr(id);
        if a & (attr::UNKNOWN | attr::CONTROL) != 0 && !special {
            return;
        }
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            out.extend_from_slice(text.as_bytes());
        } else if a & attr::NORMAL != 0 {
            match self.algo {
                Algorithm::Spm { .. } => {
                    let mut buf = [0u8; 4];
                    for c in text.chars() {
                        let c = if c == '▁' { ' ' } else { c };
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
                Algorithm::Bpe { .. } => {
                    let mut buf = [0u8; 4];
                    for c in text.chars() {
                        match char_to_byte(c) {
                            Some(b) => out.push(b),
                            None => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
                        }
                    }
                }
            }
        } else if a & attr::BYTE != 0 {
            if let Some(b) = parse_byte_token(text) {
                out.push(b);
            }
        }
    }

    /// llama.cpp's `llama_detokenize(remove_special = false, unparse_special = special)`
    /// without its space clean-up, so that decoding inverts encoding.
    pub fn decode_bytes(&self, ids: &[u32], special: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        // The space prefix added at encode time comes off the first piece of text (llama.cpp
        // strips it from the first token even when that is BOS, which does not invert encode).
        let mut strip = matches!(
            self.algo,
            Algorithm::Spm {
                add_space_prefix: true
            }
        );
        for &id in ids {
            let start = out.len();
            self.append_piece(id, special, &mut out);
            if strip && self.vocab.attr(id) & attr::CONTROL == 0 {
                if out.get(start) == Some(&b' ') {
                    out.remove(start);
                }
                strip = false;
            }
        }
        out
    }
}

/// `<0xXX>` → the byte.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}
