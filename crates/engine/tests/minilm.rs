//! all-MiniLM-L6-v2 against the committed reference embeddings (see fixtures/minilm/README.md).
//! A missing model folder fails (CI fetches it); skipped only under LOWBIT_OFFLINE=1.

use lowbit_engine::bert::{cosine, SentenceEncoder};
use lowbit_files::HfModel;
use std::path::{Path, PathBuf};

const MODEL: &str = "all-MiniLM-L6-v2";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/minilm")
        .join(name)
}

#[path = "../../../tests/support/real_data.rs"]
mod real_data;

fn model() -> Option<HfModel> {
    let dir = match std::env::var_os("LOWBIT_MINILM") {
        Some(d) => PathBuf::from(d),
        None => real_data::models_dir().join(MODEL),
    };
    let dir = real_data::present(dir.join("model.safetensors"), "all-MiniLM-L6-v2")?
        .parent()
        .map(Path::to_path_buf)?;
    Some(HfModel::open(&dir).expect("model folder opens"))
}

fn sentences() -> Vec<String> {
    std::fs::read_to_string(fixture("sentences.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

fn reference(n: usize, dim: usize) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(fixture("embeddings.f32")).unwrap();
    assert_eq!(bytes.len(), n * dim * 4, "fixture size");
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    v.chunks(dim).map(<[f32]>::to_vec).collect()
}

#[test]
fn minilm_f32_matches_reference() {
    let Some(hf) = model() else { return };
    let enc = SentenceEncoder::load(&hf, None).unwrap();
    let lines = sentences();
    let texts: Vec<&str> = lines.iter().map(String::as_str).collect();

    let want_ids: Vec<Vec<u32>> =
        serde_json::from_slice(&std::fs::read(fixture("token_ids.json")).unwrap()).unwrap();
    for (t, want) in texts.iter().zip(&want_ids) {
        assert_eq!(&enc.tokenize(t), want, "token ids of {t:?}");
    }

    let got = enc.embed(&texts).unwrap();
    let want = reference(texts.len(), enc.dim());
    for ((g, w), t) in got.iter().zip(&want).zip(&texts) {
        let c = cosine(g, w);
        assert!(c >= 0.99999, "cosine {c} for {t:?}");
    }
    let min = got
        .iter()
        .zip(&want)
        .map(|(g, w)| cosine(g, w))
        .fold(1.0, f64::min);
    eprintln!(
        "f32 vs reference: min cosine {min:.9} (1 - min = {:.2e})",
        1.0 - min
    );

}
