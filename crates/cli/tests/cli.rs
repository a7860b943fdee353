//! The binary end to end on a tiny generated model: every command, every writable type, and the
//! failure paths a user hits.

mod common;
use common::*;
use serde_json::Value as Json;

const TYPES: &[&str] = &[
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S",
    "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4",
];

#[test]
fn quantizes_to_every_type_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny_model(dir.path());
    for ty in TYPES {
        let out = dir.path().join(format!("{ty}.gguf"));
        let report: Json = serde_json::from_str(&ok(&[&"quantize", &src, &out, &"--type", ty, &"--json"])).unwrap();
        assert_eq!(report["preset"], *ty);
        let info: Json = serde_json::from_str(&ok(&[&"inspect", &out, &"--json"])).unwrap();
        assert_eq!(info["tensors"].as_array().unwrap().len(), 10, "{ty}");
        assert_eq!(info["architecture"], "llama");
        // Norms stay F32; the 96-wide ffn_down cannot hold 256-blocks and must have fallen back.
        let t = |name: &str| info["tensors"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()["type"].clone();
        assert_eq!(t("blk.0.attn_norm.weight"), "F32");
        let down1 = t("blk.1.ffn_down.weight");
        assert!(["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "IQ4_NL", "MXFP4"].contains(&down1.as_str().unwrap()), "{ty}: {down1}");
        let back = dir.path().join(format!("{ty}-f32.gguf"));
        ok(&[&"dequantize", &out, &back]);
        let cmp: Json = serde_json::from_str(&ok(&[&"compare", &src, &back, &"--json"])).unwrap();
        let rel = cmp["relative_rmse"].as_f64().unwrap();
        assert!(rel < 0.6, "{ty}: relative RMSE {rel}");
    }
}

#[test]
fn q4_k_m_mix_and_fallbacks_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny_model(dir.path());
    let out = dir.path().join("q4km.gguf");
    let r: Json = serde_json::from_str(&ok(&[&"quantize", &src, &out, &"--type", &"Q4_K_M", &"--json"])).unwrap();
    let fell: Vec<&str> = r["fell_back"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(fell, vec!["blk.1.ffn_down.weight: Q6_K -> Q8_0"]);
    let target = |name: &str| r["tensors"].as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()["target"].clone();
    assert_eq!(target("output.weight"), "Q6_K");
    assert_eq!(target("blk.0.attn_q.weight"), "Q4_K");
    // With 2 layers, only the last is a "more bits" layer (the last eighth).
    assert_eq!(target("blk.0.attn_v.weight"), "Q4_K");
    assert_eq!(target("blk.1.attn_v.weight"), "Q6_K");
    assert_eq!(target("token_embd.weight"), "Q4_K");
    assert_eq!(r["types"]["Q4_K"]["tensors"], 5);
}

#[test]
fn refuses_to_overwrite_its_input_and_leaves_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny_model(dir.path());
    let before = std::fs::read(&src).unwrap();
    let err = fails(&[&"quantize", &src, &src, &"--type", &"Q8_0"]);
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(std::fs::read(&src).unwrap(), before);

    let out = dir.path().join("out.gguf");
    let err = fails(&[&"quantize", &src, &out, &"--type", &"Q9_9"]);
    assert!(err.contains("unknown --type"), "{err}");
    let err = fails(&[&"quantize", &src, &out, &"--type", &"Q8_0", &"--tensor-type", &"attn=Q7"]);
    assert!(err.contains("unknown type"), "{err}");
    let err = fails(&[&"quantize", &src, &out, &"--type", &"Q4_0", &"--tensor-type", &"attn_q=IQ2_XXS"]);
    assert!(err.contains("attn_q") && err.contains("cannot quantize to it"), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "a failed run left files behind: {leftovers:?}");
}

#[test]
fn truncated_and_corrupt_inputs_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let src = tiny_model(dir.path());
    let bytes = std::fs::read(&src).unwrap();
    let bad = dir.path().join("bad.gguf");
    let out = dir.path().join("never.gguf");
    for cut in [0, 3, 4, 8, 16, 24, 40, 100, 300, 700, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        let err = fails(&[&"inspect", &bad]);
        assert!(err.contains("bad.gguf"), "error does not name the file: {err}");
        fails(&[&"quantize", &bad, &out, &"--type", &"Q8_0"]);
        assert!(!out.exists());
    }
    let mut corrupt = bytes.clone();
    corrupt[0] = b'X';
    std::fs::write(&bad, &corrupt).unwrap();
    let err = fails(&[&"inspect", &bad]);
    assert!(err.to_lowercase().contains("magic"), "{err}");
    fails(&[&"inspect", &dir.path().join("missing.gguf")]);
    fails(&[&"dequantize", &src, &out, &"--type", &"Q4_0"]);
}
