//! A tiny random BERT folder written to disk, loaded through `HfModel`, and run against a naive
//! padded-and-masked f64 reference written out here independently of the engine's code.

use lowbit_engine::bert::{cosine, SentenceEncoder};
use lowbit_files::{Dtype, HfModel, SafeTensorSpec, SafetensorsWriter};
use lowbit_formats::GgmlType;
use std::collections::HashMap;
use std::path::Path;

const H: usize = 64;
const HEADS: usize = 4;
const LAYERS: usize = 2;
const INTER: usize = 128;
const MAX_POS: usize = 32;
const VOCAB: [&str; 16] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", ".",
    "a", "dog", "run", "##ning",
];

fn rand_vec(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * scale
        })
        .collect()
}

/// name → (shape, values)
type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn tensors() -> Tensors {
    let mut t: Tensors = Vec::new();
    let mut seed = 1;
    let mut add = |name: String, shape: Vec<usize>, scale: f32, offset: f32| {
        seed += 1;
        let n = shape.iter().product();
        let v = rand_vec(n, seed, scale)
            .into_iter()
            .map(|x| x + offset)
            .collect();
        t.push((name, shape, v));
    };
    add(
        "embeddings.word_embeddings.weight".into(),
        vec![VOCAB.len(), H],
        1.0,
        0.0,
    );
    add(
        "embeddings.position_embeddings.weight".into(),
        vec![MAX_POS, H],
        0.3,
        0.0,
    );
    add(
        "embeddings.token_type_embeddings.weight".into(),
        vec![2, H],
        0.3,
        0.0,
    );
    add("embeddings.LayerNorm.weight".into(), vec![H], 0.2, 1.0);
    add("embeddings.LayerNorm.bias".into(), vec![H], 0.1, 0.0);
    for l in 0..LAYERS {
        let p = format!("encoder.layer.{l}.");
        for (n, rows, cols) in [
            ("attention.self.query", H, H),
            ("attention.self.key", H, H),
            ("attention.self.value", H, H),
            ("attention.output.dense", H, H),
            ("intermediate.dense", INTER, H),
            ("output.dense", H, INTER),
        ] {
            add(format!("{p}{n}.weight"), vec![rows, cols], 0.25, 0.0);
            add(format!("{p}{n}.bias"), vec![rows], 0.1, 0.0);
        }
        for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
            add(format!("{p}{n}.weight"), vec![H], 0.2, 1.0);
            add(format!("{p}{n}.bias"), vec![H], 0.1, 0.0);
        }
    }
    t
}

fn write_folder(dir: &Path, t: &Tensors) {
    let config = serde_json::json!({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu", "hidden_size": H,
        "num_attention_heads": HEADS, "num_hidden_layers": LAYERS, "intermediate_size": INTER,
        "max_position_embeddings": MAX_POS, "type_vocab_size": 2, "vocab_size": VOCAB.len(), "layer_norm_eps": 1e-12
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let vocab: serde_json::Map<String, serde_json::Value> = VOCAB
        .iter()
        .enumerate()
        .map(|(i, s)| (s.to_string(), i.into()))
        .collect();
    let tok = serde_json::json!({
        "added_tokens": [{"id": 3, "content": "[SEP]", "normalized": false}],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}
    });
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
    let modules = r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
        {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
        {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#;
    std::fs::write(dir.join("modules.json"), modules).unwrap();
    let specs = t
        .iter()
        .map(|(n, s, _)| {
            SafeTensorSpec::new(
                n.clone(),
                Dtype::F32,
                &s.iter().map(|&d| d as u64).collect::<Vec<_>>(),
            )
        })
        .collect();
    let mut w = SafetensorsWriter::create(dir.join("model.safetensors"), vec![], specs).unwrap();
    for (n, _, v) in t {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.write_tensor(n, &bytes).unwrap();
    }
    w.finish().unwrap();
}

/// The textbook computation: pad every sequence to the longest, mask pad keys, f64 throughout.
fn reference(t: &Tensors, seqs: &[Vec<u32>]) -> Vec<Vec<f64>> {
    let w: HashMap<&str, &Vec<f32>> = t.iter().map(|(n, _, v)| (n.as_str(), v)).collect();
    let g = |n: &str| -> Vec<f64> { w[n].iter().map(|&x| x as f64).collect() };
    let len = seqs.iter().map(Vec::len).max().unwrap();
    let d = H / HEADS;
    let ln = |x: &mut [f64], p: &str| {
        let (gm, bt) = (g(&format!("{p}.weight")), g(&format!("{p}.bias")));
        let mean = x.iter().sum::<f64>() / H as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / H as f64;
        for i in 0..H {
            x[i] = (x[i] - mean) / (var + 1e-12).sqrt() * gm[i] + bt[i];
        }
    };
    let linear = |x: &[f64], p: &str, rows: usize, cols: usize| -> Vec<f64> {
        let (wm, b) = (g(&format!("{p}.weight")), g(&format!("{p}.bias")));
        (0..rows)
            .map(|r| b[r] + (0..cols).map(|c| wm[r * cols + c] * x[c]).sum::<f64>())
            .collect()
    };
    let erf = |x: f64| {
        // Maclaurin series, all terms positive: 2/√π e^{-x²} Σ 2ⁿ x^{2n+1} / (2n+1)!!
        let (mut term, mut sum) = (x, x);
        for n in 0..300 {
            term *= 2.0 * x * x / (2 * n + 3) as f64;
            sum += term;
        }
        2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
    };
    seqs.iter()
        .map(|seq| {
            let mask: Vec<bool> = (0..len).map(|i| i < seq.len()).collect();
            let ids: Vec<usize> = (0..len)
                .map(|i| seq.get(i).copied().unwrap_or(0) as usize)
                .collect();
            let (we, pe, te) = (
                g("embeddings.word_embeddings.weight"),
                g("embeddings.position_embeddings.weight"),
                g("embeddings.token_type_embeddings.weight"),
            );
            let mut x: Vec<Vec<f64>> = (0..len)
                .map(|i| {
                    let mut r: Vec<f64> = (0..H)
                        .map(|j| we[ids[i] * H + j] + pe[i * H + j] + te[j])
                        .collect();
                    ln(&mut r, "embeddings.LayerNorm");
                    r
                })
                .collect();
            for l in 0..LAYERS {
                let p = format!("encoder.layer.{l}.");
                let q: Vec<Vec<f64>> = x
                    .iter()
                    .map(|r| linear(r, &format!("{p}attention.self.query"), H, H))
                    .collect();
                let k: Vec<Vec<f64>> = x
                    .iter()
                    .map(|r| linear(r, &format!("{p}attention.self.key"), H, H))
                    .collect();
                let v: Vec<Vec<f64>> = x
                    .iter()
                    .map(|r| linear(r, &format!("{p}attention.self.value"), H, H))
                    .collect();
                let mut ctx = vec![vec![0f64; H]; len];
                for hd in 0..HEADS {
                    for i in 0..len {
                        let s: Vec<f64> = (0..len)
                            .map(|j| {
                                let dot: f64 = (0..d)
                                    .map(|e| q[i][hd * d + e] * k[j][hd * d + e])
                                    .sum::<f64>()
                                    / (d as f64).sqrt();
                                if mask[j] {
                                    dot
                                } else {
                                    f64::NEG_INFINITY
                                }
                            })
                            .collect();
                        let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                        let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
                        let z: f64 = e.iter().sum();
                        for j in 0..len {
                            for t in 0..d {
                                ctx[i][hd * d + t] += e[j] / z * v[j][hd * d + t];
                            }
                        }
                    }
                }
                for i in 0..len {
                    let o = linear(&ctx[i], &format!("{p}attention.output.dense"), H, H);
                    let mut r: Vec<f64> = (0..H).map(|j| x[i][j] + o[j]).collect();
                    ln(&mut r, &format!("{p}attention.output.LayerNorm"));
                    let up: Vec<f64> = linear(&r, &format!("{p}intermediate.dense"), INTER, H)
                        .into_iter()
                        .map(|u| 0.5 * u * (1.0 + erf(u / 2f64.sqrt())))
                        .collect();
                    let down = linear(&up, &format!("{p}output.dense"), H, INTER);
                    let mut y: Vec<f64> = (0..H).map(|j| r[j] + down[j]).collect();
                    ln(&mut y, &format!("{p}output.LayerNorm"));
                    x[i] = y;
                }
            }
            let n = seq.len() as f64;
            let mean: Vec<f64> = (0..H)
                .map(|j| (0..len).filter(|&i| mask[i]).map(|i| x[i][j]).sum::<f64>() / n)
                .collect();
            let norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
            mean.iter().map(|v| v / norm).collect()
        })
        .collect()
}

#[test]
fn tiny_bert_matches_a_naive_padded_reference() {
    let dir = tempfile::tempdir().unwrap();
    let t = tensors();
    write_folder(dir.path(), &t);
    let hf = HfModel::open(dir.path()).unwrap();
    let enc = SentenceEncoder::load(&hf, None).unwrap();
    assert!(enc.sentence.normalize);
    let texts = [
        "The cats sat on a mat.",
        "dog",
        "a dog running[SEP]the XYZ mat",
        "",
    ];
    let ids: Vec<Vec<u32>> = texts.iter().map(|s| enc.tokenize(s)).collect();
    assert_eq!(ids[0], [2, 5, 6, 10, 7, 8, 12, 9, 11, 3]);
    assert_eq!(ids[2], [2, 12, 13, 14, 15, 3, 5, 1, 9, 3]);
    assert_eq!(ids[3], [2, 3]);
    let got = enc.embed(&texts).unwrap();
    let want = reference(&t, &ids);
    for (g, w) in got.iter().zip(&want) {
        let max_err = g
            .iter()
            .zip(w)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(max_err < 2e-5, "max abs error {max_err}");
    }
    // Batching must not change a sentence's embedding.
    let alone = enc.embed(&texts[1..2]).unwrap();
    assert!(alone[0]
        .iter()
        .zip(&got[1])
        .all(|(a, b)| (a - b).abs() < 1e-6));
}

/// A stand-in for lowbit-quant's quantizer (the engine only sees the trait): every matrix to one
/// block type, row by row.
struct OneType(GgmlType);

impl lowbit_engine::tensor::WeightQuantizer for OneType {
    fn quantize(
        &self,
        _name: &str,
        values: &[f32],
        _rows: usize,
        cols: usize,
    ) -> Result<(GgmlType, Vec<u8>), String> {
        let f = lowbit_formats::block_format(self.0).unwrap();
        let rb = self.0.row_bytes(cols as u64).ok_or("rows do not split")? as usize;
        let mut out = vec![0u8; values.len() / cols * rb];
        for (d, s) in out.chunks_exact_mut(rb).zip(values.chunks_exact(cols)) {
            f.quantize_row(s, None, d).map_err(|e| e.to_string())?;
        }
        Ok((self.0, out))
    }
}

#[test]
fn quantized_tiny_bert_uses_the_given_quantizer_and_stays_close() {
    let dir = tempfile::tempdir().unwrap();
    let t = tensors();
    write_folder(dir.path(), &t);
    let hf = HfModel::open(dir.path()).unwrap();
    let f32_enc = SentenceEncoder::load(&hf, None).unwrap();
    let texts = ["The cats sat on a mat.", "a dog running"];
    let base = f32_enc.embed(&texts).unwrap();

    let q = OneType(GgmlType::Q8_0);
    let q8 = SentenceEncoder::load(&hf, Some(&q)).unwrap();
    assert!(q8.weights.types.iter().all(|(_, ty)| *ty == GgmlType::Q8_0));
    assert!(q8.weights.matrix_bytes() * 3 < f32_enc.weights.matrix_bytes());
    for (a, b) in q8.embed(&texts).unwrap().iter().zip(&base) {
        assert!(cosine(a, b) > 0.999, "Q8_0 cosine {}", cosine(a, b));
    }
    // A quantizer that fails names the tensor instead of panicking.
    let bad = OneType(GgmlType::Q4_K);
    let err = SentenceEncoder::load(&hf, Some(&bad)).err().expect("rows of 64 cannot hold Q4_K");
    assert!(err.to_string().contains("weight"), "{err}");
}
