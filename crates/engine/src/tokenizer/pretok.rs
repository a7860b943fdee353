//! Pre-tokenizers of byte-level BPE models: they cut text into words before merging, and ids
//! only match llama.cpp's when the cuts do. Each `tokenizer.ggml.pre` name selects an ordered
//! list of passes; every pass refines the previous pass's segments (a segment is never merged
//! with its neighbour), as llama.cpp applies its list of regexes.
//!
//! The passes are hand-written scanners over codepoints. For the GPT-2 and LLaMA-3 patterns
//! they reproduce llama.cpp's own scanners, which differ from a regex engine in corner cases
//! (e.g. where a lone space before punctuation at the end of a segment goes), because matching
//! llama.cpp is the point.

use std::ops::Range;

use super::unicode::{self, LETTER, NUMBER, PUNCTUATION, WHITESPACE};

/// The pre-tokenizer families llama.cpp implements for the names we accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// `'s|'t|…| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
    Gpt2,
    /// StarCoder / SmolLM: every digit alone, then GPT-2.
    SmolLm,
    /// LLaMA-3: case-insensitive contractions, digits in threes, newline-aware spaces.
    Llama3,
    /// Qwen2: LLaMA-3 with single digits.
    Qwen2,
    /// llama.cpp's fallback for `default`: punctuation runs, GPT-2, number runs, digit triples.
    Default,
}

impl PreTokenizer {
    /// The family for a `tokenizer.ggml.pre` value, with whether llama.cpp looks a whole word
    /// up in the vocabulary before merging (`ignore_merges`).
    pub fn from_name(name: &str) -> Option<(PreTokenizer, bool)> {
        let p = match name {
            "" | "default" => (PreTokenizer::Default, false),
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" | "jina-v5-nano" => (PreTokenizer::Llama3, true),
            "dbrx" | "smaug-bpe" => (PreTokenizer::Llama3, false),
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
            | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en"
            | "jina-v2-code" | "roberta-bpe" | "mpt" | "olmo" | "jais" | "exaone4" => {
                (PreTokenizer::Gpt2, false)
            }
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2" => {
                (PreTokenizer::Qwen2, false)
            }
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva-7b" => (PreTokenizer::SmolLm, false),
            _ => return None,
        };
        Some(p)
    }

    /// Appends the byte ranges of `text`'s words to `words`.
    pub fn split(self, text: &str, scratch: &mut Scratch, words: &mut Vec<Range<usize>>) {
        scratch.load(text);
        let passes: &[Pass] = match self {
            PreTokenizer::Gpt2 => &[Pass::Gpt2],
            PreTokenizer::SmolLm => &[Pass::EachNumber, Pass::Gpt2],
            PreTokenizer::Llama3 => &[Pass::Llama3 { digit_group: 3 }],
            PreTokenizer::Qwen2 => &[Pass::Llama3 { digit_group: 1 }],
            PreTokenizer::Default => &[
                Pass::PunctRuns,
                Pass::Gpt2,
                Pass::NumberRuns,
                Pass::AsciiDigitTriples,
            ],
        };
        for &pass in passes {
            scratch.run(pass);
        }
        scratch.emit(words);
    }
}

#[derive(Clone, Copy)]
enum Pass {
    Gpt2,
    Llama3 { digit_group: usize },
    EachNumber,
    NumberRuns,
    PunctRuns,
    AsciiDigitTriples,
}

/// Marks an in-segment position, so that an unclassified codepoint ("other") is told apart
/// from a position past the segment's end.
const IN: u8 = 0x80;

/// Reusable buffers, so that splitting many fragments allocates once.
#[derive(Default)]
pub struct Scratch {
    cpts: Vec<char>,
    flags: Vec<u8>,
    /// Byte offset of each codepoint, plus the text's length.
    offsets: Vec<usize>,
    /// Segment lengths in codepoints, covering the text in order.
    segs: Vec<usize>,
    next: Vec<usize>,
}

impl Scratch {
    fn load(&mut self, text: &str) {
        self.cpts.clear();
        self.flags.clear();
        self.offsets.clear();
        for (i, c) in text.char_indices() {
            self.cpts.push(c);
            self.flags.push(unicode::flags(c) | IN);
            self.offsets.push(i);
        }
        self.offsets.push(text.len());
        self.segs.clear();
        if !self.cpts.is_empty() {
            self.segs.push(self.cpts.len());
        }
    }

    fn run(&mut self, pass: Pass) {
        self.next.clear();
        let mut start = 0;
        for &len in &self.segs {
            let seg = Segment {
                cpts: &self.cpts[start..start + len],
                flags: &self.flags[start..start + len],
                prev_end: 0,
                out: &mut self.next,
            };
            match pass {
                Pass::Gpt2 => seg.gpt2(),
                Pass::Llama3 { digit_group } => seg.llama3(digit_group),
                Pass::EachNumber => seg.isolate(|_, f| f & NUMBER != 0, false),
                Pass::NumberRuns => seg.isolate(|_, f| f & NUMBER != 0, true),
                Pass::PunctRuns => seg.isolate(is_default_punct, true),
                Pass::AsciiDigitTriples => seg.ascii_digit_triples(),
            }
            start += len;
        }
        std::mem::swap(&mut self.segs, &mut self.next);
    }

    fn emit(&self, words: &mut Vec<Range<usize>>) {
        let mut start = 0;
        for &len in &self.segs {
            words.push(self.offsets[start]..self.offsets[start + len]);
            start += len;
        }
    }
}

/// `[\p{P}\$\+<=>\^~\|]` as llama.cpp evaluates it: ASCII punctuation and symbols except the
/// backtick, and non-ASCII punctuation.
fn is_default_punct(c: char, f: u8) -> bool {
    if c.is_ascii() {
        c.is_ascii_punctuation() && c != '`'
    } else {
        f & PUNCTUATION != 0
    }
}

/// One segment being cut; positions are relative to its start.
struct Segment<'a> {
    cpts: &'a [char],
    flags: &'a [u8],
    prev_end: usize,
    out: &'a mut Vec<usize>,
}

impl Segment<'_> {
    #[inline]
    fn end(&self) -> usize {
        self.cpts.len()
    }

    /// Flags at `pos`, 0 past the end.
    #[inline]
    fn fl(&self, pos: usize) -> u8 {
        self.flags.get(pos).copied().unwrap_or(0)
    }

    #[inline]
    fn cpt(&self, pos: usize) -> Option<char> {
        self.cpts.get(pos).copied()
    }

    /// Closes a word at `end` (if non-empty).
    #[inline]
    fn cut(&mut self, end: usize) {
        if end > self.prev_end {
            self.out.push(end - self.prev_end);
        }
        self.prev_end = end;
    }

    /// Contraction at `pos` (`'s`, `'t`, `'m`, `'d`, `'re`, `'ve`, `'ll`): its length.
    fn contraction(&self, pos: usize, fold_case: bool) -> Option<usize> {
        if self.cpts[pos] != '\'' || pos + 1 >= self.end() {
            return None;
        }
        let low = |c: char| if fold_case { c.to_ascii_lowercase() } else { c };
        let n1 = low(self.cpts[pos + 1]);
        if matches!(n1, 's' | 't' | 'm' | 'd') {
            return Some(2);
        }
        if pos + 2 < self.end() {
            let n2 = low(self.cpts[pos + 2]);
            if matches!((n1, n2), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                return Some(3);
            }
        }
        None
    }

    /// Length of the white-space run at `pos`.
    fn whitespace_run(&self, pos: usize) -> usize {
        let mut n = 0;
        while self.fl(pos + n) & WHITESPACE != 0 {
            n += 1;
        }
        n
    }

    fn gpt2(mut self) {
        let end = self.end();
        let mut pos = 0;
        const WLN: u8 = WHITESPACE | LETTER | NUMBER;
        while pos < end {
            let c = self.cpts[pos];
            if let Some(n) = self.contraction(pos, false) {
                pos += n;
                self.cut(pos);
                continue;
            }
            let lead = usize::from(c == ' ');
            let f2 = if c == ' ' {
                self.fl(pos + 1)
            } else {
                self.fl(pos)
            };
            // ` ?\p{L}+`, ` ?\p{N}+`
            let class = if f2 & LETTER != 0 {
                Some(LETTER)
            } else if f2 & NUMBER != 0 {
                Some(NUMBER)
            } else {
                None
            };
            if let Some(class) = class {
                pos += lead;
                while self.fl(pos) & class != 0 {
                    pos += 1;
                }
                self.cut(pos);
                continue;
            }
            // ` ?[^\s\p{L}\p{N}]+`
            if f2 & WLN == 0 && f2 != 0 {
                pos += lead;
                while self.fl(pos) & WLN == 0 && self.fl(pos) != 0 {
                    pos += 1;
                }
                self.cut(pos);
                continue;
            }
            let nws = self.whitespace_run(pos);
            // `\s+(?!\S)`: leave the last space to the next word.
            if nws > 1 && pos + nws < end {
                pos += nws - 1;
                self.cut(pos);
                continue;
            }
            pos += nws.max(1);
            self.cut(pos);
        }
    }

    fn llama3(mut self, digit_group: usize) {
        let end = self.end();
        let mut pos = 0;
        const WLN: u8 = WHITESPACE | LETTER | NUMBER;
        while pos < end {
            let c = self.cpts[pos];
            let f = self.fl(pos);
            if let Some(n) = self.contraction(pos, true) {
                pos += n;
                self.cut(pos);
                continue;
            }
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if !(c == '\r' || c == '\n' || f & NUMBER != 0)
                && (f & LETTER != 0 || self.fl(pos + 1) & LETTER != 0)
            {
                pos += 1;
                while self.fl(pos) & LETTER != 0 {
                    pos += 1;
                }
                self.cut(pos);
                continue;
            }
            // `\p{N}{1,digit_group}`
            if f & NUMBER != 0 {
                let mut ini = pos;
                while self.fl(pos) & NUMBER != 0 {
                    pos += 1;
                    if pos - ini >= digit_group {
                        self.cut(pos);
                        ini = pos;
                    }
                }
                self.cut(pos);
                continue;
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let f2 = if c == ' ' { self.fl(pos + 1) } else { f };
            if f2 & WLN == 0 && f != 0 {
                pos += usize::from(c == ' ');
                while self.fl(pos) & WLN == 0 && self.fl(pos) != 0 {
                    pos += 1;
                }
                while matches!(self.cpt(pos), Some('\r' | '\n')) {
                    pos += 1;
                }
                self.cut(pos);
                continue;
            }
            let nws = self.whitespace_run(pos);
            // `\s*[\r\n]+`: up to the run's last line break.
            if let Some(k) = (0..nws)
                .rev()
                .find(|&k| matches!(self.cpts[pos + k], '\r' | '\n'))
            {
                pos += k + 1;
                self.cut(pos);
                continue;
            }
            if nws > 1 && pos + nws < end {
                pos += nws - 1;
                self.cut(pos);
                continue;
            }
            pos += nws.max(1);
            self.cut(pos);
        }
    }

    /// Cuts out codepoints satisfying `pred`, singly or as maximal runs (`[…]` or `[…]+`),
    /// leaving the gaps between them as words.
    fn isolate(mut self, pred: impl Fn(char, u8) -> bool, runs: bool) {
        let end = self.end();
        let mut pos = 0;
        while pos < end {
            if pred(self.cpts[pos], self.flags[pos]) {
                self.cut(pos);
                pos += 1;
                while runs && pos < end && pred(self.cpts[pos], self.flags[pos]) {
                    pos += 1;
                }
                self.cut(pos);
            } else {
                pos += 1;
            }
        }
        self.cut(end);
    }

    /// `[0-9][0-9][0-9]`: leftmost non-overlapping ASCII digit triples.
    fn ascii_digit_triples(mut self) {
        let end = self.end();
        let mut pos = 0;
        while pos + 3 <= end {
            if self.cpts[pos..pos + 3].iter().all(char::is_ascii_digit) {
                self.cut(pos);
                pos += 3;
                self.cut(pos);
            } else {
                pos += 1;
            }
        }
        self.cut(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(p: PreTokenizer, text: &str) -> Vec<&str> {
        let mut words = Vec::new();
        p.split(text, &mut Scratch::default(), &mut words);
        words.into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn gpt2_words_spaces_contractions() {
        assert_eq!(
            split(PreTokenizer::Gpt2, "Hello world's  end!! 123abc\n\n x"),
            ["Hello", " world", "'s", " ", " end", "!!", " 123", "abc", "\n\n", " x"]
        );
        // Case-sensitive contractions; trailing spaces stay together.
        assert_eq!(
            split(PreTokenizer::Gpt2, "I'M ok  "),
            ["I", "'", "M", " ok", "  "]
        );
        assert_eq!(split(PreTokenizer::Gpt2, "naïve café"), ["naïve", " café"]);
        assert_eq!(split(PreTokenizer::Gpt2, "中文 ½"), ["中文", " ½"]);
    }

    #[test]
    fn smollm_isolates_digits() {
        assert_eq!(
            split(PreTokenizer::SmolLm, "in 2024, x1"),
            ["in", " ", "2", "0", "2", "4", ",", " x", "1"]
        );
    }

    #[test]
    fn llama3_digits_and_newlines() {
        assert_eq!(
            split(PreTokenizer::Llama3, "I'M 1234567 ok\n\n  (hi)"),
            ["I", "'M", " ", "123", "456", "7", " ok", "\n\n", " ", " (", "hi", ")"]
        );
        assert_eq!(split(PreTokenizer::Llama3, "a ,\nb"), ["a", " ,\n", "b"]);
        assert_eq!(split(PreTokenizer::Qwen2, "x 12"), ["x", " ", "1", "2"]);
    }

    #[test]
    fn default_passes() {
        assert_eq!(
            split(PreTokenizer::Default, "a+b=12345 `x`"),
            ["a", "+", "b", "=", "123", "45", " `", "x", "`"]
        );
    }

    #[test]
    fn empty_text() {
        assert!(split(PreTokenizer::Gpt2, "").is_empty());
    }
}
