//! Builders for tiny synthetic HF folders.

#![allow(dead_code)]

use lowbit_convert::tokenizer::{write_spm_model, SpmPiece};
use lowbit_files::safetensors::Dtype;
use lowbit_files::{SafeTensorSpec, SafetensorsWriter};
use serde_json::{json, Value};
use std::path::Path;

pub fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// Deterministic bf16-representable values (HF checkpoints are bf16).
pub fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((s >> 40) as f32) / ((1u64 << 24) as f32) - 0.5;
            half::bf16::from_f32(u * 0.5).to_f32()
        })
        .collect()
}

pub fn write_safetensors(path: &Path, tensors: &[(String, Vec<u64>)]) {
    let specs = tensors
        .iter()
        .map(|(n, s)| SafeTensorSpec::new(n.clone(), Dtype::BF16, s))
        .collect();
    let mut w = SafetensorsWriter::create(path, vec![], specs).unwrap();
    for (i, (n, s)) in tensors.iter().enumerate() {
        let count: u64 = s.iter().product();
        let bytes: Vec<u8> = values(i as u64 + 1, count as usize)
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        w.write_tensor(n, &bytes).unwrap();
    }
    w.finish().unwrap();
}

/// Tensor list of a LLaMA-shaped model.
pub fn llama_tensors(
    layers: usize,
    hidden: u64,
    ff: u64,
    vocab: u64,
    q_out: u64,
    kv_out: u64,
    bias: bool,
    gemma: bool,
    qk_norm: Option<u64>,
    lm_head: bool,
) -> Vec<(String, Vec<u64>)> {
    let mut t = vec![("model.embed_tokens.weight".to_string(), vec![vocab, hidden])];
    for l in 0..layers {
        let p = format!("model.layers.{l}.");
        t.push((format!("{p}input_layernorm.weight"), vec![hidden]));
        t.push((format!("{p}self_attn.q_proj.weight"), vec![q_out, hidden]));
        t.push((format!("{p}self_attn.k_proj.weight"), vec![kv_out, hidden]));
        t.push((format!("{p}self_attn.v_proj.weight"), vec![kv_out, hidden]));
        if bias {
            t.push((format!("{p}self_attn.q_proj.bias"), vec![q_out]));
            t.push((format!("{p}self_attn.k_proj.bias"), vec![kv_out]));
            t.push((format!("{p}self_attn.v_proj.bias"), vec![kv_out]));
        }
        if let Some(hd) = qk_norm {
            t.push((format!("{p}self_attn.q_norm.weight"), vec![hd]));
            t.push((format!("{p}self_attn.k_norm.weight"), vec![hd]));
        }
        t.push((format!("{p}self_attn.o_proj.weight"), vec![hidden, q_out]));
        t.push((format!("{p}mlp.gate_proj.weight"), vec![ff, hidden]));
        t.push((format!("{p}mlp.up_proj.weight"), vec![ff, hidden]));
        t.push((format!("{p}mlp.down_proj.weight"), vec![hidden, ff]));
        t.push((format!("{p}post_attention_layernorm.weight"), vec![hidden]));
        if gemma {
            t.push((format!("{p}pre_feedforward_layernorm.weight"), vec![hidden]));
            t.push((
                format!("{p}post_feedforward_layernorm.weight"),
                vec![hidden],
            ));
        }
    }
    t.push(("model.norm.weight".to_string(), vec![hidden]));
    if lm_head {
        t.push(("lm_head.weight".to_string(), vec![vocab, hidden]));
    }
    t
}

/// A 20-token byte-level BPE tokenizer (3 specials, 17 normal tokens).
pub fn write_bpe_tokenizer(dir: &Path, add_bos: Option<bool>) {
    let normal = [
        "a", "b", "c", "d", "e", "Ġ", "ab", "cd", "Ġa", "abcd", "Ġab", "de", "ee", "Ġb", "ba",
        "dc", "Ġabcd",
    ];
    let mut vocab = serde_json::Map::new();
    for (i, s) in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .iter()
        .enumerate()
    {
        vocab.insert(s.to_string(), json!(i));
    }
    for (i, s) in normal.iter().enumerate() {
        vocab.insert(s.to_string(), json!(i + 3));
    }
    let added: Vec<Value> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"id": i, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    let tj = json!({
        "version": "1.0",
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "vocab": vocab, "merges": [["a", "b"], ["c", "d"], ["Ġ", "a"], ["ab", "cd"], ["Ġa", "b"], ["d", "e"], ["e", "e"], ["Ġ", "b"], ["b", "a"], ["d", "c"], ["Ġab", "cd"]]},
    });
    write_json(&dir.join("tokenizer.json"), &tj);
    let mut tc = json!({
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|im_end|>",
        "add_prefix_space": false,
        "chat_template": "{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}",
    });
    if let Some(b) = add_bos {
        tc["add_bos_token"] = json!(b);
    }
    write_json(&dir.join("tokenizer_config.json"), &tc);
}

/// A 24-piece SentencePiece tokenizer (Gemma-style specials, user-defined whitespace piece).
pub fn write_spm_tokenizer(dir: &Path) -> usize {
    let specials = [
        "<pad>",
        "<eos>",
        "<bos>",
        "<unk>",
        "<start_of_turn>",
        "<end_of_turn>",
    ];
    let normal = [
        "▁", "a", "b", "c", "▁a", "ab", "▁ab", "bc", "abc", "▁abc", "ca", "cc", "▁b", "▁c", "aa",
        "bb",
    ];
    let mut pieces: Vec<SpmPiece> = specials
        .iter()
        .enumerate()
        .map(|(i, s)| SpmPiece {
            piece: s.to_string(),
            score: 0.0,
            kind: if i == 3 { 2 } else { 3 },
        })
        .collect();
    pieces.push(SpmPiece {
        piece: "<0x0A>".into(),
        score: 0.0,
        kind: 6,
    });
    pieces.push(SpmPiece {
        piece: "▁▁".into(),
        score: 0.0,
        kind: 4,
    });
    for (i, s) in normal.iter().enumerate() {
        pieces.push(SpmPiece {
            piece: s.to_string(),
            score: -(i as f32),
            kind: 1,
        });
    }
    let ids = lowbit_convert::tokenizer::SpmIds {
        unk: 3,
        bos: 2,
        eos: 1,
        pad: 0,
    };
    std::fs::write(
        dir.join("tokenizer.model"),
        write_spm_model(&pieces, ids, false, false),
    )
    .unwrap();
    let mut dec = serde_json::Map::new();
    for (i, s) in specials.iter().enumerate() {
        dec.insert(i.to_string(), json!({"content": s, "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false}));
    }
    dec.insert("7".into(), json!({"content": "▁▁", "special": false, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false}));
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>",
                "add_bos_token": true, "add_eos_token": false, "added_tokens_decoder": dec}),
    );
    let added: Vec<Value> = specials
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"id": i, "content": s, "special": true}))
        .collect();
    write_json(
        &dir.join("tokenizer.json"),
        &json!({"added_tokens": added, "model": {"type": "BPE", "vocab": {}, "merges": []}}),
    );
    pieces.len()
}
