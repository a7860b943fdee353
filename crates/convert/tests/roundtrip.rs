//! HF → GGUF → HF → GGUF on tiny synthetic models: tensors, config and tokenizer survive.

mod common;

use common::*;
use lowbit_convert::tokenizer::{token_type, TokenizerModel};
use lowbit_convert::{
    export_hf, hf_to_gguf_plan, write_gguf_f32, ExportDtype, MetaValue, Metadata,
};
use lowbit_files::{GgufFile, SafetensorsFile};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

fn tensors_f32(dir: &Path) -> BTreeMap<String, (Vec<u64>, Vec<f32>)> {
    let f = SafetensorsFile::open(dir.join("model.safetensors")).unwrap();
    f.tensors()
        .iter()
        .map(|t| (t.name.clone(), (t.shape.clone(), f.to_f32(t).unwrap())))
        .collect()
}

fn gguf_metadata(path: &Path) -> Metadata {
    Metadata::from_gguf(GgufFile::open(path).unwrap().metadata())
}

fn gguf_tensor(path: &Path, name: &str) -> (Vec<u64>, Vec<f32>) {
    let g = GgufFile::open(path).unwrap();
    let t = g.require_tensor(name).unwrap();
    let mut v = Vec::new();
    lowbit_convert::export::read_f32(&g, t, &mut v).unwrap();
    (t.dims.clone(), v)
}

/// HF dir → GGUF → HF dir → GGUF; returns (gguf1, hf2, gguf2) paths.
fn round_trip(
    root: &Path,
    hf: &Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let g1 = root.join("a.gguf");
    let (folder, plan) = hf_to_gguf_plan(hf).unwrap();
    write_gguf_f32(&folder, &plan, &g1).unwrap();
    let hf2 = root.join("exported");
    let summary = export_hf(&g1, &hf2, ExportDtype::F32).unwrap();
    assert!(summary.dequantized.is_empty());
    let g2 = root.join("b.gguf");
    let (folder2, plan2) = hf_to_gguf_plan(&hf2).unwrap();
    write_gguf_f32(&folder2, &plan2, &g2).unwrap();
    (g1, hf2, g2)
}

fn assert_same_metadata(a: &Metadata, b: &Metadata) {
    let ka: Vec<&str> = a.keys().collect();
    let kb: Vec<&str> = b.keys().collect();
    let mut sa = ka.clone();
    sa.sort();
    let mut sb = kb.clone();
    sb.sort();
    assert_eq!(sa, sb);
    for k in ka {
        assert_eq!(a.get(k), b.get(k), "metadata key {k}");
    }
}

fn permute_ref(w: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    // reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)
    let hd = rows / n_head;
    let mut out = vec![0.0; w.len()];
    for h in 0..n_head {
        for i in 0..hd / 2 {
            for j in 0..2 {
                let src = h * hd + j * (hd / 2) + i;
                let dst = h * hd + 2 * i + j;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

#[test]
fn llama_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let hf = root.path().join("smollm-tiny");
    std::fs::create_dir(&hf).unwrap();
    let config = json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 20,
        "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2,
    });
    write_json(&hf.join("config.json"), &config);
    write_bpe_tokenizer(&hf, Some(true));
    let tensors = llama_tensors(2, 8, 16, 20, 8, 4, false, false, None, true);
    write_safetensors(&hf.join("model.safetensors"), &tensors);

    let (g1, hf2, g2) = round_trip(root.path(), &hf);

    // GGUF facts llama.cpp would write.
    let md = gguf_metadata(&g1);
    assert_eq!(md.str("general.architecture"), Some("llama"));
    assert_eq!(md.u64("llama.block_count"), Some(2));
    assert_eq!(md.u64("llama.attention.head_count_kv"), Some(1));
    assert_eq!(md.u64("llama.rope.dimension_count"), Some(4));
    assert_eq!(md.u64("llama.vocab_size"), Some(20));
    assert_eq!(
        md.get("llama.attention.layer_norm_rms_epsilon"),
        Some(&MetaValue::F32(1e-5))
    );
    assert_eq!(md.str("tokenizer.ggml.model"), Some("gpt2"));
    assert_eq!(md.str("tokenizer.ggml.pre"), Some("smollm"));
    assert_eq!(md.u64("tokenizer.ggml.bos_token_id"), Some(1));
    assert_eq!(md.u64("tokenizer.ggml.padding_token_id"), Some(2));
    assert_eq!(md.u64("tokenizer.ggml.unknown_token_id"), Some(0));
    assert_eq!(md.bool("tokenizer.ggml.add_bos_token"), Some(true));
    assert_eq!(md.bool("tokenizer.ggml.add_space_prefix"), Some(false));
    assert!(md.str("tokenizer.chat_template").is_some());
    match md.get("tokenizer.ggml.merges") {
        Some(MetaValue::StrArray(m)) => assert_eq!(m[0], "a b"),
        other => panic!("merges: {other:?}"),
    }
    match md.get("tokenizer.ggml.token_type") {
        Some(MetaValue::I32Array(t)) => {
            assert_eq!(
                &t[..4],
                &[
                    token_type::CONTROL,
                    token_type::CONTROL,
                    token_type::CONTROL,
                    token_type::NORMAL
                ]
            )
        }
        other => panic!("token types: {other:?}"),
    }

    // Q is permuted with n_head, K with n_kv; shapes reversed.
    let orig = tensors_f32(&hf);
    let (dims, q) = gguf_tensor(&g1, "blk.1.attn_q.weight");
    assert_eq!(dims, vec![8, 8]);
    let hf_q = &orig["model.layers.1.self_attn.q_proj.weight"].1;
    assert_eq!(q, permute_ref(hf_q, 8, 8, 2));
    let (dims, k) = gguf_tensor(&g1, "blk.0.attn_k.weight");
    assert_eq!(dims, vec![8, 4]);
    assert_eq!(
        k,
        permute_ref(&orig["model.layers.0.self_attn.k_proj.weight"].1, 4, 8, 1)
    );

    // HF → GGUF → HF: identical tensors (names, shapes, values).
    let back = tensors_f32(&hf2);
    assert_eq!(orig.len(), back.len());
    for (name, (shape, vals)) in &orig {
        let (s2, v2) = &back[name];
        assert_eq!(shape, s2, "{name}");
        assert_eq!(vals, v2, "{name}");
    }
    // Config fields that matter.
    let c2: Value =
        serde_json::from_slice(&std::fs::read(hf2.join("config.json")).unwrap()).unwrap();
    for k in [
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
        "max_position_embeddings",
        "rms_norm_eps",
        "rope_theta",
        "tie_word_embeddings",
        "bos_token_id",
        "eos_token_id",
    ] {
        assert_eq!(config[k].as_f64(), c2[k].as_f64(), "config {k}");
        assert_eq!(config[k].as_bool(), c2[k].as_bool(), "config {k}");
    }
    assert_eq!(c2["architectures"][0], "LlamaForCausalLM");
    // Tokenizer: same vocab and merges.
    let t1: Value =
        serde_json::from_slice(&std::fs::read(hf.join("tokenizer.json")).unwrap()).unwrap();
    let t2: Value =
        serde_json::from_slice(&std::fs::read(hf2.join("tokenizer.json")).unwrap()).unwrap();
    assert_eq!(t1["model"]["vocab"], t2["model"]["vocab"]);
    assert_eq!(t1["model"]["merges"], t2["model"]["merges"]);
    assert_eq!(t1["pre_tokenizer"], t2["pre_tokenizer"]);
    // And GGUF → HF → GGUF: identical metadata and tensors.
    assert_same_metadata(&md, &gguf_metadata(&g2));
    let a = GgufFile::open(&g1).unwrap();
    for t in a.tensors() {
        assert_eq!(
            gguf_tensor(&g1, &t.name),
            gguf_tensor(&g2, &t.name),
            "{}",
            t.name
        );
    }
}

#[test]
fn qwen2_bias_and_tied_head() {
    let root = tempfile::tempdir().unwrap();
    let hf = root.path().join("qwen-tiny");
    std::fs::create_dir(&hf).unwrap();
    write_json(
        &hf.join("config.json"),
        &json!({
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
            "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "num_key_value_heads": 2, "vocab_size": 24,
            "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "tie_word_embeddings": true,
        }),
    );
    write_bpe_tokenizer(&hf, None);
    let tensors = llama_tensors(1, 8, 16, 24, 8, 8, true, false, None, false);
    write_safetensors(&hf.join("model.safetensors"), &tensors);
    let (g1, hf2, g2) = round_trip(root.path(), &hf);
    let md = gguf_metadata(&g1);
    assert_eq!(md.str("tokenizer.ggml.pre"), Some("qwen2"));
    assert!(md.get("qwen2.vocab_size").is_none());
    // Vocabulary padded to config.vocab_size with UNUSED [PADn] tokens, as llama.cpp does.
    match md.get("tokenizer.ggml.tokens") {
        Some(MetaValue::StrArray(t)) => assert_eq!((t.len(), t[23].as_str()), (24, "[PAD23]")),
        other => panic!("{other:?}"),
    }
    // Qwen runs NEOX RoPE: no permutation.
    let orig = tensors_f32(&hf);
    assert_eq!(
        gguf_tensor(&g1, "blk.0.attn_q.weight").1,
        orig["model.layers.0.self_attn.q_proj.weight"].1
    );
    assert!(GgufFile::open(&g1)
        .unwrap()
        .tensor("output.weight")
        .is_none());
    assert!(GgufFile::open(&g1)
        .unwrap()
        .tensor("blk.0.attn_k.bias")
        .is_some());
    assert_eq!(orig, tensors_f32(&hf2));
    assert_same_metadata(&md, &gguf_metadata(&g2));
}

#[test]
fn gemma3_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let hf = root.path().join("gemma-tiny");
    std::fs::create_dir(&hf).unwrap();
    let n_tok = write_spm_tokenizer(&hf);
    write_json(
        &hf.join("config.json"),
        &json!({
            "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
            "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "vocab_size": n_tok,
            "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "rope_local_base_freq": 10000.0, "sliding_window": 16, "sliding_window_pattern": 6,
            "query_pre_attn_scalar": 4, "rope_scaling": null,
        }),
    );
    let tensors = llama_tensors(2, 8, 16, n_tok as u64, 8, 4, false, true, Some(4), false);
    write_safetensors(&hf.join("model.safetensors"), &tensors);
    let (g1, hf2, g2) = round_trip(root.path(), &hf);

    let md = gguf_metadata(&g1);
    assert_eq!(md.str("general.architecture"), Some("gemma3"));
    assert_eq!(md.u64("gemma3.attention.key_length"), Some(4));
    assert_eq!(md.u64("gemma3.attention.sliding_window"), Some(16));
    assert!(md.get("gemma3.rope.freq_base_swa").is_none());
    assert!(md.get("gemma3.rope.dimension_count").is_none());
    assert_eq!(md.str("tokenizer.ggml.model"), Some("llama"));
    assert_eq!(md.bool("tokenizer.ggml.add_bos_token"), Some(true));
    assert_eq!(md.bool("tokenizer.ggml.add_space_prefix"), Some(false));
    match (
        md.get("tokenizer.ggml.token_type"),
        md.get("tokenizer.ggml.tokens"),
        md.get("tokenizer.ggml.scores"),
    ) {
        (
            Some(MetaValue::I32Array(ty)),
            Some(MetaValue::StrArray(tok)),
            Some(MetaValue::F32Array(sc)),
        ) => {
            assert_eq!(ty[3], token_type::CONTROL); // <unk> marked special in tokenizer_config
            assert_eq!(ty[6], token_type::BYTE);
            assert_eq!(
                (ty[7], tok[7].as_str(), sc[7]),
                (token_type::USER_DEFINED, "  ", -1000.0)
            );
            assert_eq!((ty[9], sc[9]), (token_type::NORMAL, -1.0));
        }
        other => panic!("{other:?}"),
    }
    // Norms are stored as 1 + w; other tensors untouched.
    let orig = tensors_f32(&hf);
    let (_, n) = gguf_tensor(&g1, "blk.1.post_ffw_norm.weight");
    let w = &orig["model.layers.1.post_feedforward_layernorm.weight"].1;
    assert_eq!(n, w.iter().map(|x| x + 1.0).collect::<Vec<_>>());
    let (_, qn) = gguf_tensor(&g1, "blk.0.attn_q_norm.weight");
    assert_eq!(
        qn[0],
        orig["model.layers.0.self_attn.q_norm.weight"].1[0] + 1.0
    );
    assert_eq!(
        gguf_tensor(&g1, "blk.0.attn_q.weight").1,
        orig["model.layers.0.self_attn.q_proj.weight"].1
    );
    assert!(GgufFile::open(&g1)
        .unwrap()
        .tensor("output.weight")
        .is_none());

    let back = tensors_f32(&hf2);
    assert_eq!(orig, back);
    let c2: Value =
        serde_json::from_slice(&std::fs::read(hf2.join("config.json")).unwrap()).unwrap();
    assert_eq!(c2["model_type"], "gemma3_text");
    assert_eq!(c2["layer_types"][1], "sliding_attention");
    assert_eq!(c2["query_pre_attn_scalar"], 4);
    assert_same_metadata(&md, &gguf_metadata(&g2));

    // The exported tokenizer.json is SentencePiece-style BPE with merges derived from scores.
    let t2: Value =
        serde_json::from_slice(&std::fs::read(hf2.join("tokenizer.json")).unwrap()).unwrap();
    assert_eq!(t2["model"]["byte_fallback"], true);
    assert_eq!(t2["model"]["merges"][0], json!(["▁", "a"]));
    assert_eq!(
        t2["post_processor"]["single"][0]["SpecialToken"]["id"],
        "<bos>"
    );
}

#[test]
fn export_refuses_non_empty_output() {
    let root = tempfile::tempdir().unwrap();
    let hf = root.path().join("m");
    std::fs::create_dir(&hf).unwrap();
    write_json(
        &hf.join("config.json"),
        &json!({
            "architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 20,
        }),
    );
    write_bpe_tokenizer(&hf, None);
    write_safetensors(
        &hf.join("model.safetensors"),
        &llama_tensors(1, 8, 16, 20, 8, 8, false, false, None, true),
    );
    let g = root.path().join("m.gguf");
    let (folder, plan) = hf_to_gguf_plan(&hf).unwrap();
    assert_eq!(plan.vocab.model, TokenizerModel::Gpt2);
    write_gguf_f32(&folder, &plan, &g).unwrap();
    let out = root.path().join("busy");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), b"x").unwrap();
    assert!(export_hf(&g, &out, ExportDtype::F32).is_err());
    assert_eq!(std::fs::read(out.join("keep.txt")).unwrap(), b"x");
    // Nothing left behind beside it.
    let leftovers: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
    // An empty directory is fine.
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    export_hf(&g, &empty, ExportDtype::Bf16).unwrap();
    assert!(empty.join("model.safetensors").exists());
}
