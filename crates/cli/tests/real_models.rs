//! The binary on the real models (fetched by scripts/fetch-models.sh; each test says it skipped
//! when its model is absent): inspect, dequantize, requantize to every type, the HF round trip.

mod common;
use common::*;
use serde_json::Value as Json;
use std::path::Path;

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

/// Every type a user can ask for, as single types (`--pure`) so each is exercised on every matrix.
const EVERY_TYPE: &[&str] = &[
    "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS",
    "TQ1_0", "TQ2_0", "MXFP4",
];

fn json(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Json {
    serde_json::from_str(&ok(args)).unwrap()
}

fn requantize_to_every_type(model: &Path, f32: &Path, dir: &Path) {
    for ty in EVERY_TYPE {
        let out = dir.join(format!("{ty}.gguf"));
        let r = json(&[&"quantize", &f32, &out, &"--type", ty, &"--pure", &"--json"]);
        let elements = r["elements"].as_u64().unwrap();
        assert!(elements > 100_000_000, "{ty}: {elements}");
        for (t, s) in r["types"].as_object().unwrap() {
            if let Some(rel) = s["relative_rmse"].as_f64() {
                // Ternary types are 1.6–2 bits for weights that are not ternary: error is large by design.
                let bound = if t.starts_with("TQ") { 0.9 } else { 0.35 };
                assert!(rel < bound, "{}: {ty} -> {t}: relative RMSE {rel}", model.display());
            }
        }
        let back = json(&[&"inspect", &out, &"--json", &"--no-tensors"]);
        assert_eq!(back["architecture"], json(&[&"inspect", &model, &"--json", &"--no-tensors"])["architecture"]);
        std::fs::remove_file(&out).unwrap();
    }
}

fn hf_round_trip(model: &Path, f32: &Path, dir: &Path) {
    let hf = dir.join("hf");
    ok(&[&"export-hf", &model, &hf]);
    let back = dir.join("from-hf.gguf");
    ok(&[&"quantize", &hf, &back, &"--type", &"F32"]);
    let cmp = json(&[&"compare", &f32, &back, &"--json"]);
    assert_eq!(cmp["rmse"].as_f64(), Some(0.0), "GGUF -> HF -> GGUF changed tensor values");
    let a = json(&[&"inspect", &f32, &"--json"]);
    let b = json(&[&"inspect", &back, &"--json"]);
    assert_eq!(a["hyperparameters"], b["hyperparameters"]);
    for key in ["ggml.model", "ggml.pre", "ggml.tokens", "ggml.merges", "ggml.scores", "ggml.token_type", "ggml.bos_token_id", "ggml.eos_token_id"] {
        assert_eq!(a["tokenizer"][key], b["tokenizer"][key], "tokenizer.{key}");
    }
    let names = |j: &Json| j["tensors"].as_array().unwrap().iter().map(|t| (t["name"].clone(), t["dims"].clone())).collect::<Vec<_>>();
    let (mut na, mut nb) = (names(&a), names(&b));
    na.sort_by_key(|x| x.0.to_string());
    nb.sort_by_key(|x| x.0.to_string());
    assert_eq!(na, nb);
    std::fs::remove_dir_all(&hf).unwrap();
}

fn exercise(name: &str, arch: &str) {
    let Some(model) = real_model(name) else { return };
    let info = json(&[&"inspect", &model, &"--json"]);
    assert_eq!(info["architecture"], arch);
    let dir = tempfile::tempdir().unwrap();
    let f32 = dir.path().join("f32.gguf");
    ok(&[&"dequantize", &model, &f32]);
    // Requantizing to the original types (same tensor types as the file) is lossless in values.
    let same = dir.path().join("same.gguf");
    let mut args: Vec<String> = vec!["quantize".into(), f32.display().to_string(), same.display().to_string(), "--type".into(), "F32".into(), "--pure".into()];
    for t in info["tensors"].as_array().unwrap() {
        args.push("--tensor-type".into());
        args.push(format!("^{}$={}", regex_escape(t["name"].as_str().unwrap()), t["type"].as_str().unwrap()));
    }
    let argv: Vec<&dyn AsRef<std::ffi::OsStr>> = args.iter().map(|s| s as &dyn AsRef<std::ffi::OsStr>).collect();
    ok(&argv);
    let cmp = json(&[&"compare", &model, &same, &"--json"]);
    for (ty, s) in cmp["types"].as_object().unwrap() {
        let rel = s["relative_rmse"].as_f64().unwrap();
        assert!(rel < 1e-3, "{name}: requantizing {ty} tensors to {ty} changed them: relative RMSE {rel}");
    }
    hf_round_trip(&model, &f32, dir.path());
    requantize_to_every_type(&model, &f32, dir.path());
}

fn regex_escape(s: &str) -> String {
    s.chars().flat_map(|c| if c == '.' { vec!['\\', '.'] } else { vec![c] }).collect()
}

#[test]
fn smollm2_end_to_end() {
    exercise(SMOLLM2, "llama");
}

#[test]
fn gemma3_end_to_end() {
    exercise(GEMMA3, "gemma3");
}
