//! Tokenizers over tiny vocabularies built here, so that each rule is checked in isolation.

use super::bpe::Bpe;
use super::bytes::byte_to_char;
use super::native::{Algorithm, GgufTokenizer};
use super::pretok::PreTokenizer;
use super::vocab::{Vocab, VocabParts};
use super::Tokenizer;

const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const BYTE: i32 = 6;

fn parts(tokens: &[(&str, i32, f32)]) -> VocabParts {
    VocabParts {
        texts: tokens.iter().map(|t| t.0.to_owned()).collect(),
        types: Some(tokens.iter().map(|t| t.1).collect()),
        scores: Some(tokens.iter().map(|t| t.2).collect()),
        bos: None,
        eos: None,
        unk: None,
        eot: None,
        eom: None,
        fim: [None; 3],
        add_bos: false,
        add_eos: false,
    }
}

/// A byte-level BPE vocabulary: the 256 byte characters, then `extra` tokens.
fn bpe(extra: &[(&str, i32)], merges: &[&str], pre: PreTokenizer) -> Tokenizer {
    let mut tokens: Vec<(String, i32, f32)> = (0..=255u8)
        .map(|b| (byte_to_char(b).to_string(), NORMAL, 0.0))
        .collect();
    tokens.extend(extra.iter().map(|&(t, ty)| (t.to_owned(), ty, 0.0)));
    let refs: Vec<(&str, i32, f32)> = tokens
        .iter()
        .map(|(t, ty, s)| (t.as_str(), *ty, *s))
        .collect();
    let vocab = Vocab::new(parts(&refs));
    let bpe = Bpe::new(&vocab, merges.iter().copied(), false);
    Tokenizer::Gguf(Box::new(GgufTokenizer::new(
        vocab,
        Algorithm::Bpe { bpe, pre },
    )))
}

fn texts(t: &Tokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&id| String::from_utf8_lossy(&t.token_to_piece(id, true).unwrap()).into_owned())
        .collect()
}

fn enc(t: &Tokenizer, text: &str, parse_special: bool) -> Vec<String> {
    texts(t, &t.encode(text, false, parse_special).unwrap())
}

#[test]
fn bpe_applies_merges_by_rank() {
    let extra = [("ab", NORMAL), ("bc", NORMAL), ("abc", NORMAL)];
    let t = bpe(&extra, &["b c", "a b", "a bc"], PreTokenizer::Gpt2);
    assert_eq!(t.encode("abc", false, false).unwrap(), [256 + 2]);
    // Through "bc": with "ab c" missing, "ab" must not be formed first.
    let t = bpe(&extra, &["b c", "a b", "ab c"], PreTokenizer::Gpt2);
    assert_eq!(enc(&t, "abc", false), ["a", "bc"]);
    let t = bpe(&extra, &["a b", "b c", "ab c"], PreTokenizer::Gpt2);
    assert_eq!(enc(&t, "abc", false), ["abc"]);
}

#[test]
fn bpe_equal_ranks_merge_leftmost() {
    let t = bpe(&[("aa", NORMAL)], &["a a"], PreTokenizer::Gpt2);
    assert_eq!(enc(&t, "aaa", false), ["aa", "a"]);
    assert_eq!(enc(&t, "aaaa", false), ["aa", "aa"]);
}

#[test]
fn bpe_words_do_not_merge_across_pre_tokenizer_cuts() {
    let t = bpe(
        &[("Ġa", NORMAL), ("a1", NORMAL)],
        &["Ġ a", "a 1"],
        PreTokenizer::SmolLm,
    );
    // SmolLM isolates digits, so "a1" cannot form; " a" can.
    assert_eq!(enc(&t, " a1", false), [" a", "1"]);
    let t = bpe(
        &[("Ġa", NORMAL), ("a1", NORMAL)],
        &["Ġ a", "a 1"],
        PreTokenizer::Gpt2,
    );
    assert_eq!(enc(&t, "a1", false), ["a", "1"]);
}

#[test]
fn bpe_bytes_round_trip() {
    let t = bpe(&[], &[], PreTokenizer::Gpt2);
    let text = "héllo wörld 😀\n\tend  ";
    let ids = t.encode(text, false, false).unwrap();
    assert_eq!(ids.len(), text.len());
    assert_eq!(t.decode(&ids).unwrap(), text);
}

#[test]
fn special_tokens_parse_only_when_asked() {
    let extra = [("<|im_start|>", CONTROL), ("<|im_end|>", CONTROL)];
    let t = bpe(&extra, &[], PreTokenizer::Gpt2);
    let (start, end) = (256, 257);
    let ids = t.encode("<|im_start|>hi<|im_end|>", false, true).unwrap();
    assert_eq!(ids[0], start);
    assert_eq!(*ids.last().unwrap(), end);
    assert_eq!(ids.len(), 4);
    let plain = t.encode("<|im_start|>hi", false, false).unwrap();
    assert!(!plain.contains(&start));
    assert_eq!(t.decode(&plain).unwrap(), "<|im_start|>hi");
    // Control tokens decode to nothing unless asked.
    assert_eq!(t.decode(&ids).unwrap(), "hi");
    assert_eq!(t.token_to_piece(start, true).unwrap(), b"<|im_start|>");
}

#[test]
fn user_defined_tokens_always_split_longest_first() {
    let extra = [
        ("\n", USER_DEFINED),
        ("\n\n", USER_DEFINED),
        ("<c>", CONTROL),
    ];
    let t = bpe(&extra, &[], PreTokenizer::Gpt2);
    let (nl, nl2) = (256, 257);
    let ids = t.encode("a\n\n\nb", false, false).unwrap();
    assert_eq!(ids, [b'a' as u32, nl2, nl, b'b' as u32]);
}

#[test]
fn add_special_adds_bos_eos_as_configured() {
    let mut p = parts(&[
        ("<s>", CONTROL, 0.0),
        ("</s>", CONTROL, 0.0),
        ("▁", NORMAL, 0.0),
    ]);
    p.bos = Some(0);
    p.eos = Some(1);
    p.add_bos = true;
    p.add_eos = true;
    let t = Tokenizer::Gguf(Box::new(GgufTokenizer::new(
        Vocab::new(p),
        Algorithm::Spm {
            add_space_prefix: false,
        },
    )));
    assert_eq!(t.encode(" ", true, false).unwrap(), [0, 2, 1]);
    assert_eq!(t.encode(" ", false, false).unwrap(), [2]);
    assert_eq!(t.encode("", true, false).unwrap(), [0, 1]);
    assert!(t.is_eog(1));
    assert!(!t.is_eog(0));
}

/// SPM vocabulary: `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then `extra` with scores.
fn spm(extra: &[(&str, f32)], add_space_prefix: bool) -> Tokenizer {
    let mut tokens: Vec<(String, i32, f32)> = vec![
        ("<unk>".into(), 2, 0.0),
        ("<s>".into(), CONTROL, 0.0),
        ("</s>".into(), CONTROL, 0.0),
    ];
    tokens.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), BYTE, 0.0)));
    tokens.extend(extra.iter().map(|&(t, s)| (t.to_owned(), NORMAL, s)));
    let refs: Vec<(&str, i32, f32)> = tokens
        .iter()
        .map(|(t, ty, s)| (t.as_str(), *ty, *s))
        .collect();
    let mut p = parts(&refs);
    p.bos = Some(1);
    p.eos = Some(2);
    p.unk = Some(0);
    p.add_bos = true;
    Tokenizer::Gguf(Box::new(GgufTokenizer::new(
        Vocab::new(p),
        Algorithm::Spm { add_space_prefix },
    )))
}

#[test]
fn spm_merges_by_score_and_falls_back_to_bytes() {
    let extra = [
        ("▁", -1.0),
        ("h", -2.0),
        ("e", -2.0),
        ("l", -2.0),
        ("o", -2.0),
        ("he", -3.0),
        ("ll", -1.5),
        ("hell", -4.0),
        ("hello", -5.0),
        ("▁hello", -6.0),
        ("lo", -0.5),
    ];
    let t = spm(&extra, true);
    // "lo" outscores "ll", so "hel"+"lo" cannot become "hello".
    assert_eq!(enc(&t, "hello", false), [" ", "he", "l", "lo"]);
    let t = spm(&extra[..10], true);
    assert_eq!(enc(&t, "hello", false), [" hello"]);
    // 'é' is no token: its UTF-8 bytes come out as byte tokens.
    let ids = t.encode("hello é", true, false).unwrap();
    assert_eq!(ids[0], 1);
    let pieces = texts(&t, &ids[1..]);
    assert_eq!(pieces[..2], [" hello", " "]);
    assert_eq!(ids[3..], [3 + 0xC3, 3 + 0xA9]);
    assert_eq!(t.decode(&ids).unwrap(), "hello é");
}

#[test]
fn spm_space_prefix_only_when_configured() {
    let extra = [("▁", -1.0), ("a", -1.0), ("▁a", -0.5)];
    assert_eq!(enc(&spm(&extra, true), "a", false), [" a"]);
    assert_eq!(enc(&spm(&extra, false), "a", false), ["a"]);
    assert_eq!(enc(&spm(&extra, false), " a", false), [" a"]);
}

#[test]
fn out_of_range_ids_are_errors() {
    let t = spm(&[], false);
    assert!(t.decode(&[1_000_000]).is_err());
    assert!(t.token_to_piece(1_000_000, false).is_err());
}
