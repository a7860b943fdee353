//! Token ids on the real models equal llama.cpp's (fixture made by
//! `scripts/gen_tokenizer_fixture.py`). A missing model or WikiText-2 fails (CI fetches them), skipped only under LOWBIT_OFFLINE=1.

use std::path::PathBuf;
use std::time::Instant;

use lowbit_engine::tokenizer::Tokenizer;
use lowbit_files::GgufFile;
use serde_json::Value;

#[path = "../../../tests/support/real_data.rs"]
mod real_data;
use real_data::{models_dir, present};

fn wikitext() -> Option<PathBuf> {
    real_data::wikitext("test")
}

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tokenizer_llama.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn load(fx: &Value, name: &str) -> Option<(Tokenizer, Value)> {
    let m = fx["models"][name].clone();
    let path = present(models_dir().join(m["file"].as_str().unwrap()), "the real model")?;
    let file = GgufFile::open(&path).unwrap();
    Some((Tokenizer::from_gguf(&file).unwrap(), m))
}

fn check_cases(name: &str) {
    let fx = fixture();
    let Some((tok, m)) = load(&fx, name) else {
        return;
    };
    let cases = fx["cases"].as_array().unwrap();
    for (case, want) in cases.iter().zip(m["ids"].as_array().unwrap()) {
        let text = case["text"].as_str().unwrap();
        let parse = case["parse_special"].as_bool().unwrap();
        let got = tok.encode(text, true, parse).unwrap();
        assert_eq!(got, ids(want), "{name}: {text:?}");
        if !parse {
            assert_eq!(tok.decode(&got).unwrap(), text, "{name}: round trip");
        }
    }
}

fn check_wikitext(name: &str) {
    let fx = fixture();
    let Some((tok, m)) = load(&fx, name) else {
        return;
    };
    let Some(path) = wikitext() else { return };
    let text = std::fs::read_to_string(path).unwrap();
    let t0 = Instant::now();
    let got = tok.encode(&text, true, false).unwrap();
    eprintln!(
        "{name}: {} tokens in {:.3} s",
        got.len(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(
        got.len() as u64,
        m["wikitext_tokens"].as_u64().unwrap(),
        "{name}: token count"
    );
    let first = ids(&m["wikitext_first"]);
    let last = ids(&m["wikitext_last"]);
    assert_eq!(got[..first.len()], first[..], "{name}: first ids");
    assert_eq!(got[got.len() - last.len()..], last[..], "{name}: last ids");
    assert_eq!(tok.decode(&got).unwrap(), text, "{name}: round trip");
}

#[test]
fn smollm2_cases_match_llama_cpp() {
    check_cases("smollm2");
}

#[test]
fn gemma3_cases_match_llama_cpp() {
    check_cases("gemma3");
}

#[test]
fn smollm2_wikitext_matches_llama_cpp() {
    check_wikitext("smollm2");
}

#[test]
fn gemma3_wikitext_matches_llama_cpp() {
    check_wikitext("gemma3");
}

#[test]
fn special_ids() {
    let fx = fixture();
    if let Some((tok, _)) = load(&fx, "smollm2") {
        assert_eq!(
            (tok.bos(), tok.eos(), tok.adds_bos()),
            (Some(1), Some(2), false)
        );
        assert_eq!(tok.vocab_size(), 49152);
        // llama.cpp's end-of-generation set: <|endoftext|>, <|im_end|>, <reponame>.
        let eog: Vec<u32> = (0..64).filter(|&i| tok.is_eog(i)).collect();
        assert_eq!(eog, [0, 2, 4]);
    }
    if let Some((tok, _)) = load(&fx, "gemma3") {
        assert_eq!(
            (tok.bos(), tok.eos(), tok.adds_bos()),
            (Some(2), Some(1), true)
        );
        assert_eq!(tok.vocab_size(), 262144);
        // <eos>, <end_of_turn>, </s>.
        let eog: Vec<u32> = (0..1000).filter(|&i| tok.is_eog(i)).collect();
        assert_eq!(eog, [1, 106, 212]);
    }
}

#[test]
fn minilm_wordpiece_from_hf_folder() {
    let Some(dir) = present(models_dir().join("all-MiniLM-L6-v2"), "all-MiniLM-L6-v2") else {
        return;
    };
    let tok = Tokenizer::from_hf_dir(&dir).unwrap();
    // BERT uncased: [CLS] hello world [SEP].
    let ids = tok.encode("Hello world", true, true).unwrap();
    assert_eq!(ids, [101, 7592, 2088, 102]);
    assert_eq!(
        tok.encode("Hello world", false, true).unwrap(),
        [7592, 2088]
    );
    assert_eq!(tok.decode(&ids).unwrap(), "hello world");
    assert_eq!((tok.bos(), tok.eos()), (Some(101), Some(102)));
    assert!(tok.is_eog(102));
    assert_eq!(tok.vocab_size(), 30522);
    // Special tokens in text are split out only when asked.
    assert_eq!(tok.encode("[SEP]", false, true).unwrap(), [102]);
    assert_ne!(tok.encode("[SEP]", false, false).unwrap(), [102]);
}
