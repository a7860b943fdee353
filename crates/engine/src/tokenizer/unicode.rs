//! Codepoint classes the byte-level pre-tokenizers split on: letter (`\p{L}`), number (`\p{N}`),
//! punctuation (`\p{P}`) and white space (`\s`).
//!
//! llama.cpp classifies with tables generated from Unicode 15.1; regex-syntax ships a newer
//! Unicode. Codepoints assigned after 15.1 are therefore left unclassified ("other"), as
//! llama.cpp sees them, so that ids match on text from any script. The tables come from
//! regex-syntax's own Unicode data rather than a copy kept here.

use std::sync::OnceLock;

use regex_syntax::hir::{Class, HirKind};

pub const LETTER: u8 = 1;
pub const NUMBER: u8 = 2;
pub const WHITESPACE: u8 = 4;
pub const PUNCTUATION: u8 = 8;

const N_CODEPOINTS: usize = 0x11_0000;

/// The Unicode version llama.cpp's classification tables were generated from.
const LLAMA_UNICODE_AGE: &str = "15.1";

static TABLE: OnceLock<Box<[u8]>> = OnceLock::new();

fn table() -> &'static [u8] {
    TABLE.get_or_init(build_table)
}

fn build_table() -> Box<[u8]> {
    let mut t = vec![0u8; N_CODEPOINTS].into_boxed_slice();
    let classes = [
        ("L", LETTER),
        ("N", NUMBER),
        ("P", PUNCTUATION),
        ("White_Space", WHITESPACE),
    ];
    for (prop, bit) in classes {
        let pattern = format!(r"[\p{{{prop}}}&&\p{{Age={LLAMA_UNICODE_AGE}}}]");
        for (lo, hi) in unicode_ranges(&pattern) {
            for f in &mut t[lo as usize..=hi as usize] {
                *f |= bit;
            }
        }
    }
    t
}

/// The codepoint ranges of a class expression, via regex-syntax's Unicode tables. The
/// expressions are constants of this module, so a failure is a programming error caught by the
/// unit tests.
fn unicode_ranges(pattern: &str) -> Vec<(u32, u32)> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .unwrap_or_else(|e| panic!("unicode class {pattern}: {e}"));
    match hir.kind() {
        HirKind::Class(Class::Unicode(c)) => c
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        _ => panic!("unicode class {pattern} did not parse to a class"),
    }
}

/// Class bits of `c`.
#[inline]
pub fn flags(c: char) -> u8 {
    table()[c as usize]
}

/// Forces the lazy table, so that timing a first call does not include building it.
pub fn init() {
    let _ = table();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(flags('a'), LETTER);
        assert_eq!(flags('É'), LETTER);
        assert_eq!(flags('中'), LETTER);
        assert_eq!(flags('7'), NUMBER);
        assert_eq!(flags('½'), NUMBER);
        assert_eq!(flags('٣'), NUMBER);
        assert_eq!(flags(' '), WHITESPACE);
        assert_eq!(flags('\n'), WHITESPACE);
        assert_eq!(flags('\u{3000}'), WHITESPACE);
        assert_eq!(flags('\u{a0}'), WHITESPACE);
        assert_eq!(flags('.'), PUNCTUATION);
        assert_eq!(flags('«'), PUNCTUATION);
        assert_eq!(flags('$'), 0);
        assert_eq!(flags('€'), 0);
        // Combining marks are neither letters nor numbers.
        assert_eq!(flags('\u{301}'), 0);
        // U+1C89 (Cyrillic, Unicode 16.0) is unclassified, as in llama.cpp's 15.1 tables.
        assert_eq!(flags('\u{1c89}'), 0);
        // U+31EF (Unicode 15.1) is a symbol: known, but none of our classes.
        assert_eq!(flags('\u{31ef}'), 0);
        assert_eq!(flags('\u{2ebf0}'), LETTER); // CJK extension I, Unicode 15.1
    }
}
