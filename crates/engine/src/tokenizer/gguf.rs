//! Reading a tokenizer from GGUF metadata (`tokenizer.ggml.*`) with llama.cpp's defaults for
//! keys a file leaves out.

use lowbit_files::{GgufFile, Value};

use super::bpe::Bpe;
use super::error::TokenizerError;
use super::native::{Algorithm, GgufTokenizer};
use super::pretok::PreTokenizer;
use super::vocab::{Vocab, VocabParts};

const P: &str = "tokenizer.ggml.";

fn opt_u32(f: &GgufFile, key: &str) -> Option<u32> {
    f.get(&format!("{P}{key}"))
        .and_then(Value::to_u64)
        .and_then(|x| u32::try_from(x).ok())
}

fn opt_bool(f: &GgufFile, key: &str) -> Option<bool> {
    f.get(&format!("{P}{key}")).and_then(Value::as_bool)
}

fn int_array(v: &Value) -> Option<Vec<i32>> {
    if let Some(a) = v.as_i32_array() {
        return Some(a.to_vec());
    }
    if let Some(a) = v.as_u32_array() {
        return Some(a.iter().map(|&x| x as i32).collect());
    }
    if let Some(a) = v.as_u8_array() {
        return Some(a.iter().map(|&x| x as i32).collect());
    }
    v.as_i64_array()
        .map(|a| a.iter().map(|&x| x as i32).collect())
}

pub fn load(f: &GgufFile) -> Result<GgufTokenizer, TokenizerError> {
    let model = f.get_str(&format!("{P}model"))?.to_owned();
    let bad = |what: String| TokenizerError::BadVocab {
        path: f.path().to_owned(),
        what,
    };
    let texts: Vec<String> = f
        .get_str_array(&format!("{P}tokens"))?
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.is_empty() {
                format!("[EMPTY_{i}]")
            } else {
                t.to_owned()
            }
        })
        .collect();
    let n = texts.len();
    let types = match f.get(&format!("{P}token_type")) {
        Some(v) => {
            let t = int_array(v).ok_or_else(|| bad("token_type is not an integer array".into()))?;
            if t.len() < n {
                return Err(bad(format!("{} token types for {n} tokens", t.len())));
            }
            Some(t)
        }
        None => None,
    };
    let scores = match f.get(&format!("{P}scores")) {
        Some(v) => {
            let s = v
                .as_f32_array()
                .ok_or_else(|| bad("scores is not an f32 array".into()))?;
            if s.len() < n {
                return Err(bad(format!("{} scores for {n} tokens", s.len())));
            }
            Some(s.to_vec())
        }
        None => None,
    };
    let pre_name = f
        .get(&format!("{P}pre"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();

    // llama.cpp's per-model defaults, then the file's keys.
    let (def_bos, def_eos, def_unk, mut add_bos) = match model.as_str() {
        "llama" => (Some(1), Some(2), Some(0), true),
        "gpt2" => (Some(11), Some(11), None, false),
        _ => return Err(TokenizerError::UnsupportedModel(model)),
    };
    let mut pre = None;
    if model == "gpt2" {
        let (p, ignore_merges) = PreTokenizer::from_name(&pre_name)
            .ok_or_else(|| TokenizerError::UnsupportedPre(pre_name.clone()))?;
        if p == PreTokenizer::Llama3 && ignore_merges {
            add_bos = true;
        }
        pre = Some((p, ignore_merges));
    }
    let id = |key: &str, def: Option<u32>| opt_u32(f, key).filter(|&i| (i as usize) < n).or(def);
    let parts = VocabParts {
        texts,
        types,
        scores,
        bos: id("bos_token_id", def_bos),
        eos: id("eos_token_id", def_eos),
        unk: id("unknown_token_id", def_unk),
        eot: id("eot_token_id", None),
        eom: id("eom_token_id", None),
        fim: [
            id("fim_pad_token_id", None),
            id("fim_rep_token_id", None),
            id("fim_sep_token_id", None),
        ],
        add_bos: opt_bool(f, "add_bos_token").unwrap_or(add_bos),
        add_eos: opt_bool(f, "add_eos_token").unwrap_or(false),
    };
    let vocab = Vocab::new(parts);
    let algo = match pre {
        Some((pre, ignore_merges)) => {
            let merges = f.get_str_array(&format!("{P}merges"))?;
            Algorithm::Bpe {
                bpe: Bpe::new(&vocab, merges.iter(), ignore_merges),
                pre,
            }
        }
        None => Algorithm::Spm {
            add_space_prefix: opt_bool(f, "add_space_prefix").unwrap_or(true),
        },
    };
    Ok(GgufTokenizer::new(vocab, algo))
}
