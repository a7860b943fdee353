//! BERT's WordPiece tokenizer, read from a Hugging Face `tokenizer.json`.
//!
//! Three stages, each matching the `tokenizers` library's BERT pipeline so ids agree exactly:
//! the normalizer (drop control characters, spaces around CJK ideographs, NFD + drop
//! non-spacing marks, per-character lowercase), the pre-tokenizer (split on whitespace, every
//! punctuation character its own word) and greedy longest-match-first WordPiece with a `##`
//! continuation prefix. Special tokens written literally in the text (`[SEP]`) are kept whole,
//! as `tokenizers` does for its added tokens.

use super::error::{BertError, Result};
use regex::Regex;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::Path;
use unicode_normalization::UnicodeNormalization;

#[derive(Clone, Debug)]
pub struct WordPiece {
    vocab: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
    prefix: String,
    max_word_chars: usize,
    lowercase: bool,
    strip_accents: bool,
    clean_text: bool,
    chinese_chars: bool,
    /// Literal special tokens matched in raw text before normalization, longest first.
    specials: Vec<(String, u32)>,
    re: Patterns,
}

/// Character classes that need Unicode general categories, compiled once.
#[derive(Clone, Debug)]
struct Patterns {
    /// `\p{C}` minus tab/newline/return, plus NUL and U+FFFD: removed by `clean_text`.
    control: Regex,
    whitespace: Regex,
    cjk: Regex,
    nonspacing_mark: Regex,
    /// Pre-tokenization: one punctuation char, or a run of neither whitespace nor punctuation.
    words: Regex,
}

impl Patterns {
    fn new() -> Patterns {
        // BERT counts every non-alphanumeric ASCII printable as punctuation, besides Unicode's P*.
        const PUNCT: &str = r"\p{P}!-/:-@\[-`{-~";
        let re = |s: &str| Regex::new(s).expect("static pattern");
        Patterns {
            control: re(r"[\x00\x{FFFD}]|[\p{C}&&[^\t\n\r]]"),
            whitespace: re(r"\s"),
            cjk: re(concat!(
                r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}",
                r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
            )),
            nonspacing_mark: re(r"\p{Mn}"),
            words: re(&format!(r"[{PUNCT}]|[^\s{PUNCT}]+")),
        }
    }
}

fn bad(path: &Path, msg: impl Into<String>) -> BertError {
    BertError::invalid(path, msg)
}

impl WordPiece {
    /// Reads the normalizer flags, the vocabulary and the special tokens of a BERT
    /// `tokenizer.json`; anything but a BERT normalizer + WordPiece model is refused rather than
    /// tokenized differently.
    pub fn from_tokenizer_json(json: &Json, path: &Path) -> Result<WordPiece> {
        let model = json.get("model").ok_or_else(|| bad(path, "no 'model'"))?;
        if model.get("type").and_then(Json::as_str) != Some("WordPiece") {
            return Err(bad(path, "tokenizer model is not WordPiece"));
        }
        let vocab_json = model
            .get("vocab")
            .and_then(Json::as_object)
            .ok_or_else(|| bad(path, "no WordPiece vocab"))?;
        let mut vocab = HashMap::with_capacity(vocab_json.len());
        for (tok, id) in vocab_json {
            let id = id
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| bad(path, format!("vocab id of '{tok}' is not an integer")))?;
            vocab.insert(tok.clone(), id);
        }
        let str_of = |v: &Json, k: &str, d: &'static str| {
            v.get(k).and_then(Json::as_str).unwrap_or(d).to_string()
        };
        let unk_token = str_of(model, "unk_token", "[UNK]");
        let prefix = str_of(model, "continuing_subword_prefix", "##");
        let max_word_chars = model
            .get("max_input_chars_per_word")
            .and_then(Json::as_u64)
            .unwrap_or(100) as usize;

        let norm = json.get("normalizer").filter(|n| !n.is_null());
        let (clean_text, chinese_chars, lowercase, strip_accents) = match norm {
            None => (false, false, false, false),
            Some(n) if n.get("type").and_then(Json::as_str) == Some("BertNormalizer") => {
                let flag = |k: &str, d: bool| n.get(k).and_then(Json::as_bool).unwrap_or(d);
                let lowercase = flag("lowercase", true);
                // `strip_accents: null` means "whatever lowercase is", as in BERT's original code.
                (
                    flag("clean_text", true),
                    flag("handle_chinese_chars", true),
                    lowercase,
                    flag("strip_accents", lowercase),
                )
            }
            Some(n) => {
                let ty = n.get("type").and_then(Json::as_str).unwrap_or("?");
                return Err(bad(
                    path,
                    format!("normalizer '{ty}' is not supported (only BertNormalizer)"),
                ));
            }
        };
        if let Some(pre) = json.get("pre_tokenizer").filter(|p| !p.is_null()) {
            let ty = pre.get("type").and_then(Json::as_str).unwrap_or("?");
            if ty != "BertPreTokenizer" {
                return Err(bad(
                    path,
                    format!("pre_tokenizer '{ty}' is not supported (only BertPreTokenizer)"),
                ));
            }
        }
        let mut specials = Vec::new();
        for t in json
            .get("added_tokens")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let normalized = t.get("normalized").and_then(Json::as_bool).unwrap_or(true);
            if let (Some(content), Some(id), false) = (
                t.get("content").and_then(Json::as_str),
                t.get("id").and_then(Json::as_u64),
                normalized,
            ) {
                if !content.is_empty() {
                    specials.push((content.to_string(), id as u32));
                }
            }
        }
        let id_of = |tok: &str| {
            vocab
                .get(tok)
                .copied()
                .ok_or_else(|| bad(path, format!("vocabulary has no '{tok}'")))
        };
        Ok(WordPiece {
            unk: id_of(&unk_token)?,
            cls: id_of("[CLS]")?,
            sep: id_of("[SEP]")?,
            vocab,
            prefix,
            max_word_chars,
            lowercase,
            strip_accents,
            clean_text,
            chinese_chars,
            specials: sorted_specials(specials),
            re: Patterns::new(),
        })
    }

    /// An uncased BERT tokenizer over `tokens` (ids are positions); for tests and tools that
    /// only have a `vocab.txt`.
    pub fn uncased(tokens: &[&str]) -> Option<WordPiece> {
        let vocab: HashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), i as u32))
            .collect();
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .filter_map(|s| Some((s.to_string(), *vocab.get(*s)?)))
            .collect();
        Some(WordPiece {
            unk: *vocab.get("[UNK]")?,
            cls: *vocab.get("[CLS]")?,
            sep: *vocab.get("[SEP]")?,
            vocab,
            prefix: "##".into(),
            max_word_chars: 100,
            lowercase: true,
            strip_accents: true,
            clean_text: true,
            chinese_chars: true,
            specials: sorted_specials(specials),
            re: Patterns::new(),
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// `[CLS] pieces [SEP]`, the pieces truncated so the whole fits in `max_tokens` (≥ 2).
    pub fn encode(&self, text: &str, max_tokens: usize) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len() / 3 + 2);
        ids.push(self.cls);
        self.pieces_into(text, &mut ids);
        ids.truncate(max_tokens.max(2) - 1);
        ids.push(self.sep);
        ids
    }

    /// Appends the WordPiece ids of `text` (no [CLS]/[SEP]).
    pub fn pieces_into(&self, text: &str, out: &mut Vec<u32>) {
        let mut rest = text;
        while !rest.is_empty() {
            match self.next_special(rest) {
                Some((at, len, id)) => {
                    self.plain_into(&rest[..at], out);
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    self.plain_into(rest, out);
                    break;
                }
            }
        }
    }

    /// The leftmost literal special token in `text`: (byte offset, byte length, id).
    fn next_special(&self, text: &str) -> Option<(usize, usize, u32)> {
        let mut best: Option<(usize, usize, u32)> = None;
        for (s, id) in &self.specials {
            if let Some(at) = text.find(s.as_str()) {
                // Longest-first order means an earlier entry wins ties at the same offset.
                if best.map_or(true, |(b, _, _)| at < b) {
                    best = Some((at, s.len(), *id));
                }
            }
        }
        best
    }

    fn plain_into(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let normalized = self.normalize(text);
        let mut buf = String::new();
        for word in self.re.words.find_iter(&normalized) {
            self.word_into(word.as_str(), &mut buf, out);
        }
    }

    /// The normalizer stage alone.
    pub fn normalize(&self, text: &str) -> String {
        let mut s = text.to_string();
        if self.clean_text {
            s = self.re.control.replace_all(&s, "").into_owned();
            s = self.re.whitespace.replace_all(&s, " ").into_owned();
        }
        if self.chinese_chars {
            s = self.re.cjk.replace_all(&s, " $0 ").into_owned();
        }
        if self.strip_accents {
            let nfd: String = s.nfd().collect();
            s = self.re.nonspacing_mark.replace_all(&nfd, "").into_owned();
        }
        if self.lowercase {
            // Per character, like `tokenizers` (no context-dependent final sigma).
            s = s.chars().flat_map(char::to_lowercase).collect();
        }
        s
    }

    /// Greedy longest-match-first; a word with any unmatchable remainder is one [UNK].
    fn word_into(&self, word: &str, buf: &mut String, out: &mut Vec<u32>) {
        if word.chars().count() > self.max_word_chars {
            out.push(self.unk);
            return;
        }
        let first = out.len();
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let found = loop {
                buf.clear();
                if start > 0 {
                    buf.push_str(&self.prefix);
                }
                buf.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(buf.as_str()) {
                    break Some(id);
                }
                match word[start..end].char_indices().next_back() {
                    Some((i, _)) if i > 0 => end = start + i,
                    _ => break None,
                }
            };
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(first);
                    out.push(self.unk);
                    return;
                }
            }
        }
    }
}

fn sorted_specials(mut v: Vec<(String, u32)>) -> Vec<(String, u32)> {
    v.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> WordPiece {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "hello",
            "world", "!", ",", ".", "'", "s", "cafe", "naive", "中", "国", "a", "##b", "##c", "ab",
            "σ", "##σ", "οδο", "-", "x", "$",
        ];
        WordPiece::uncased(&vocab).unwrap()
    }

    fn ids(w: &WordPiece, t: &str) -> Vec<u32> {
        let mut v = Vec::new();
        w.pieces_into(t, &mut v);
        v
    }

    #[test]
    fn greedy_longest_match_with_continuations() {
        let w = tok();
        assert_eq!(ids(&w, "unaffable"), [5, 6, 7]);
        assert_eq!(ids(&w, "abc"), [22, 21]); // "ab" then "##c", not "a" "##b" "##c"
        assert_eq!(ids(&w, "abd"), [1]); // no piece for "##d": the whole word is [UNK]
        assert_eq!(ids(&w, "ab abd ab"), [22, 1, 22]);
    }

    #[test]
    fn punctuation_whitespace_and_case() {
        let w = tok();
        assert_eq!(ids(&w, "Hello,  WORLD!"), [8, 11, 9, 10]);
        assert_eq!(ids(&w, "world's"), [9, 13, 14]);
        assert_eq!(ids(&w, "\tx-x$\n"), [27, 26, 27, 28]);
        assert_eq!(ids(&w, "hello\u{00A0}world\u{3000}hello"), [8, 9, 8]);
    }

    #[test]
    fn accents_controls_and_cjk() {
        let w = tok();
        assert_eq!(ids(&w, "Café NAÏVE"), [15, 16]);
        assert_eq!(ids(&w, "ca\u{0301}fe"), [15]);
        assert_eq!(ids(&w, "hel\u{0000}lo\u{200B}"), [8]); // NUL and zero-width space (Cf) vanish
        assert_eq!(ids(&w, "中国hello"), [17, 18, 8]);
        // Per-character lowercase: the final capital sigma becomes σ, not ς.
        assert_eq!(ids(&w, "ΟΔΟΣ"), [25, 24]); // "οδο" "##σ"; a final "ς" would have been [UNK]
        assert_eq!(w.normalize("ΟΔΟΣ"), "οδοσ");
    }

    #[test]
    fn specials_in_text_and_truncation() {
        let w = tok();
        assert_eq!(ids(&w, "hello[SEP]world"), [8, 3, 9]);
        assert_eq!(ids(&w, "[sep]"), [1, 1, 1]); // only the literal "[SEP]" is special; "[", "sep", "]" are unknown here
        assert_eq!(w.encode("hello world hello", 4), [2, 8, 9, 3]);
        assert_eq!(w.encode("", 8), [2, 3]);
        assert_eq!(w.encode("hello", 0), [2, 3]);
        let long = "a".repeat(101);
        assert_eq!(ids(&w, &long), [1]);
        assert_eq!(ids(&w, &"a".repeat(100)), [1]); // fits the length limit, but "##a" is not a piece
    }
}
