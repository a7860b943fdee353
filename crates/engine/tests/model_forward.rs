//! The engine's forward pass against a plain reference written here from the model definitions
//! (f64, one token at a time, no cache), on tiny random GGUF models of both families; plus the
//! loader's and evaluator's error paths.

use lowbit_engine::eval::{evaluate, EvalError, EvalOptions};
use lowbit_engine::model::{InputSite, LinearId, LinearObserver, Model, ModelError};
use lowbit_engine::tensor::Matrix;
use lowbit_files::gguf::{GgufFile, GgufWriter, TensorSpec, Value};
use lowbit_formats::GgmlType;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const D: usize = 32;
const N_HEAD: usize = 4;
const N_KV: usize = 2;
const N_FF: usize = 48;
const VOCAB: usize = 40;
const N_LAYER: usize = 2;
const EPS: f32 = 1e-5;

#[derive(Clone, Copy, PartialEq)]
enum Family {
    Llama,
    Gemma3,
}

struct Spec {
    fam: Family,
    hd: usize,
    window: usize,
    base: f64,
    base_swa: f64,
}

fn spec(fam: Family) -> Spec {
    match fam {
        // Llama: heads of D / N_HEAD; Gemma: wider heads than D / N_HEAD, a window of 3 on layer
        // 0 (pattern 2: layer 1 is global) and different rope bases per layer kind.
        Family::Llama => Spec {
            fam,
            hd: D / N_HEAD,
            window: 0,
            base: 10000.0,
            base_swa: 10000.0,
        },
        Family::Gemma3 => Spec {
            fam,
            hd: 16,
            window: 3,
            base: 1_000_000.0,
            base_swa: 10000.0,
        },
    }
}

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

/// Tensor name → (GGUF dims, values).
fn tensors(sp: &Spec) -> BTreeMap<String, (Vec<u64>, Vec<f32>)> {
    let mut t = BTreeMap::new();
    let mut seed = 1;
    let mut add = |name: String, dims: Vec<u64>, scale: f32, offset: f32| {
        seed += 1;
        let n = dims.iter().product::<u64>() as usize;
        let v = rand_vec(n, seed, scale)
            .into_iter()
            .map(|x| x + offset)
            .collect();
        t.insert(name, (dims, v));
    };
    let (hd, d) = (sp.hd as u64, D as u64);
    add("token_embd.weight".into(), vec![d, VOCAB as u64], 0.5, 0.0);
    add("output_norm.weight".into(), vec![d], 0.2, 1.0);
    if sp.fam == Family::Llama {
        add("output.weight".into(), vec![d, VOCAB as u64], 0.3, 0.0);
    }
    for i in 0..N_LAYER {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        add(n("attn_norm"), vec![d], 0.2, 1.0);
        add(n("attn_q"), vec![d, N_HEAD as u64 * hd], 0.3, 0.0);
        add(n("attn_k"), vec![d, N_KV as u64 * hd], 0.3, 0.0);
        add(n("attn_v"), vec![d, N_KV as u64 * hd], 0.3, 0.0);
        add(n("attn_output"), vec![N_HEAD as u64 * hd, d], 0.3, 0.0);
        add(n("ffn_norm"), vec![d], 0.2, 1.0);
        add(n("ffn_gate"), vec![d, N_FF as u64], 0.3, 0.0);
        add(n("ffn_up"), vec![d, N_FF as u64], 0.3, 0.0);
        add(n("ffn_down"), vec![N_FF as u64, d], 0.3, 0.0);
        if sp.fam == Family::Gemma3 {
            add(n("attn_q_norm"), vec![hd], 0.2, 1.0);
            add(n("attn_k_norm"), vec![hd], 0.2, 1.0);
            add(n("post_attention_norm"), vec![d], 0.2, 1.0);
            add(n("post_ffw_norm"), vec![d], 0.2, 1.0);
        }
    }
    t
}

fn metadata(sp: &Spec, arch: &str) -> Vec<(String, Value)> {
    let k = |s: &str| format!("{arch}.{s}");
    let mut m = vec![
        ("general.architecture".to_string(), Value::from(arch)),
        (k("block_count"), Value::U32(N_LAYER as u32)),
        (k("embedding_length"), Value::U32(D as u32)),
        (k("feed_forward_length"), Value::U32(N_FF as u32)),
        (k("attention.head_count"), Value::U32(N_HEAD as u32)),
        (k("attention.head_count_kv"), Value::U32(N_KV as u32)),
        (k("attention.layer_norm_rms_epsilon"), Value::F32(EPS)),
        (k("rope.freq_base"), Value::F32(sp.base as f32)),
    ];
    if sp.fam == Family::Gemma3 {
        m.push((k("attention.key_length"), Value::U32(sp.hd as u32)));
        m.push((k("attention.value_length"), Value::U32(sp.hd as u32)));
        m.push((k("attention.sliding_window"), Value::U32(sp.window as u32)));
        m.push((k("attention.sliding_window_pattern"), Value::U32(2)));
        m.push((k("rope.freq_base_swa"), Value::F32(sp.base_swa as f32)));
    }
    m
}

fn write_model(
    path: &Path,
    meta: Vec<(String, Value)>,
    t: &BTreeMap<String, (Vec<u64>, Vec<f32>)>,
) {
    let specs = t
        .iter()
        .map(|(n, (d, _))| TensorSpec::new(n.clone(), d, GgmlType::F32))
        .collect();
    let mut w = GgufWriter::create(path, meta, specs).unwrap();
    for (n, (_, v)) in t {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.write_tensor(n, &bytes).unwrap();
    }
    w.finish().unwrap();
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lowbit-model-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

// ---- the reference: textbook definitions, f64, one position at a time ----

struct Ref<'a> {
    sp: &'a Spec,
    t: &'a BTreeMap<String, (Vec<u64>, Vec<f32>)>,
}

impl Ref<'_> {
    fn w(&self, name: &str) -> &[f32] {
        &self.t[name].1
    }

    /// y = W x for a GGUF matrix of dims [cols, rows].
    fn lin(&self, name: &str, x: &[f64]) -> Vec<f64> {
        let (dims, w) = &self.t[name];
        let (cols, rows) = (dims[0] as usize, dims[1] as usize);
        assert_eq!(x.len(), cols);
        (0..rows)
            .map(|r| (0..cols).map(|c| w[r * cols + c] as f64 * x[c]).sum())
            .collect()
    }

    fn norm(&self, x: &[f64], w: &[f32]) -> Vec<f64> {
        let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let s = 1.0 / (ms + EPS as f64).sqrt();
        x.iter().zip(w).map(|(v, g)| v * s * *g as f64).collect()
    }

    fn rope(&self, x: &mut [f64], pos: usize, base: f64) {
        let hd = self.sp.hd;
        for head in x.chunks_mut(hd) {
            for i in 0..hd / 2 {
                let theta = pos as f64 * base.powf(-2.0 * i as f64 / hd as f64);
                let (a, b) = if self.sp.fam == Family::Llama {
                    (2 * i, 2 * i + 1)
                } else {
                    (i, i + hd / 2)
                };
                let (x0, x1) = (head[a], head[b]);
                head[a] = x0 * theta.cos() - x1 * theta.sin();
                head[b] = x0 * theta.sin() + x1 * theta.cos();
            }
        }
    }

    fn logits(&self, tokens: &[u32]) -> Vec<Vec<f64>> {
        let (sp, hd) = (self.sp, self.sp.hd);
        let gemma = sp.fam == Family::Gemma3;
        let emb = self.w("token_embd.weight");
        let mut xs: Vec<Vec<f64>> = tokens
            .iter()
            .map(|&t| {
                let s = if gemma { (D as f64).sqrt() } else { 1.0 };
                emb[t as usize * D..][..D]
                    .iter()
                    .map(|&v| v as f64 * s)
                    .collect()
            })
            .collect();
        for il in 0..N_LAYER {
            let n = |s: &str| format!("blk.{il}.{s}.weight");
            let swa = gemma && il == 0;
            let base = if swa { sp.base_swa } else { sp.base };
            let mut qs = Vec::new();
            let mut ks = Vec::new();
            let mut vs = Vec::new();
            for (pos, x) in xs.iter().enumerate() {
                let h = self.norm(x, self.w(&n("attn_norm")));
                let (mut q, mut k) = (self.lin(&n("attn_q"), &h), self.lin(&n("attn_k"), &h));
                if gemma {
                    q = q
                        .chunks(hd)
                        .flat_map(|c| self.norm(c, self.w(&n("attn_q_norm"))))
                        .collect();
                    k = k
                        .chunks(hd)
                        .flat_map(|c| self.norm(c, self.w(&n("attn_k_norm"))))
                        .collect();
                }
                self.rope(&mut q, pos, base);
                self.rope(&mut k, pos, base);
                qs.push(q);
                ks.push(k);
                vs.push(self.lin(&n("attn_v"), &h));
            }
            for (t, x) in xs.iter_mut().enumerate() {
                let mut att = vec![0f64; N_HEAD * hd];
                for h in 0..N_HEAD {
                    let kvh = h / (N_HEAD / N_KV);
                    let visible: Vec<usize> =
                        (0..=t).filter(|&j| !swa || t - j < sp.window).collect();
                    let scores: Vec<f64> = visible
                        .iter()
                        .map(|&j| {
                            let dot: f64 = (0..hd)
                                .map(|i| qs[t][h * hd + i] * ks[j][kvh * hd + i])
                                .sum();
                            dot / (hd as f64).sqrt()
                        })
                        .collect();
                    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for (&j, w) in visible.iter().zip(&e) {
                        for i in 0..hd {
                            att[h * hd + i] += w / z * vs[j][kvh * hd + i];
                        }
                    }
                }
                let mut o = self.lin(&n("attn_output"), &att);
                if gemma {
                    o = self.norm(&o, self.w(&n("post_attention_norm")));
                }
                x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
                let h = self.norm(x, self.w(&n("ffn_norm")));
                let g = self.lin(&n("ffn_gate"), &h);
                let u = self.lin(&n("ffn_up"), &h);
                let a: Vec<f64> = g
                    .iter()
                    .zip(&u)
                    .map(|(&g, &u)| {
                        let act = if gemma {
                            0.5 * g
                                * (1.0
                                    + ((2.0 / std::f64::consts::PI).sqrt()
                                        * (g + 0.044715 * g * g * g))
                                        .tanh())
                        } else {
                            g / (1.0 + (-g).exp())
                        };
                        act * u
                    })
                    .collect();
                let mut f = self.lin(&n("ffn_down"), &a);
                if gemma {
                    f = self.norm(&f, self.w(&n("post_ffw_norm")));
                }
                x.iter_mut().zip(&f).for_each(|(a, b)| *a += b);
            }
        }
        let out = if self.t.contains_key("output.weight") {
            "output.weight"
        } else {
            "token_embd.weight"
        };
        xs.iter()
            .map(|x| self.lin(out, &self.norm(x, self.w("output_norm.weight"))))
            .collect()
    }
}

fn check_family(fam: Family, arch: &str) {
    let sp = spec(fam);
    let t = tensors(&sp);
    let path = tmp(&format!("{arch}.gguf"));
    write_model(&path, metadata(&sp, arch), &t);
    let file = GgufFile::open(&path).unwrap();
    let model = Model::load(&file).unwrap();
    let tokens: Vec<u32> = vec![3, 17, 0, 39, 8, 8, 21, 5];
    let want = Ref { sp: &sp, t: &t }.logits(&tokens);

    // A batch of 5 (logits from position 2 on), then single tokens through the cache.
    let mut cache = model.new_cache(16);
    let mut got: Vec<Vec<f32>> = Vec::new();
    let l = model.forward(&tokens[..5], &mut cache, 2).unwrap();
    got.extend(l.chunks(VOCAB).map(<[f32]>::to_vec));
    for &tk in &tokens[5..] {
        got.push(model.forward(&[tk], &mut cache, 0).unwrap());
    }
    assert_eq!(cache.len(), tokens.len());
    let mut max_err = 0f64;
    for (g, w) in got.iter().zip(&want[2..]) {
        for (a, b) in g.iter().zip(w) {
            max_err = max_err.max((*a as f64 - b).abs() / (1.0 + b.abs()));
        }
    }
    assert!(max_err < 1e-4, "{arch}: max relative error {max_err}");

    // The whole sequence as one batch agrees with the incremental run.
    cache.clear();
    let all = model.forward(&tokens, &mut cache, 0).unwrap();
    let last = &all[(tokens.len() - 1) * VOCAB..];
    let err = last
        .iter()
        .zip(&got[got.len() - 1])
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(err < 1e-4, "{arch}: batched vs incremental {err}");
    check_stepping(&file, &tokens, &all, arch);

    // A prompt long enough for the matrix-product attention (≥ 16 tokens, several query blocks
    // of 64, the sliding window active), after a first batch already in the cache.
    let long: Vec<u32> = (0..150).map(|i| ((i * 7 + 3) % VOCAB) as u32).collect();
    let want = Ref { sp: &sp, t: &t }.logits(&long);
    let mut cache = model.new_cache(160);
    model.forward(&long[..20], &mut cache, 20).unwrap();
    let got = model.forward(&long[20..], &mut cache, 0).unwrap();
    let mut max_err = 0f64;
    for (g, w) in got.chunks(VOCAB).zip(&want[20..]) {
        for (a, b) in g.iter().zip(w) {
            max_err = max_err.max((*a as f64 - b).abs() / (1.0 + b.abs()));
        }
    }
    assert!(max_err < 1e-4, "{arch}: long prompt, max relative error {max_err}");
}

/// Records what the observer sees: (layer, site, rows, width, first value).
#[derive(Default)]
struct Seen(Vec<(usize, InputSite, usize, usize, f32)>);

impl LinearObserver for Seen {
    fn observe(&mut self, layer: usize, site: InputSite, x: &[f32], n: usize) {
        self.0.push((layer, site, n, x.len() / n, x[0]));
    }
}

/// Layer-by-layer stages reproduce the forward pass bit for bit; the observer sees every site's
/// input; a replaced linear changes the output and can be put back.
fn check_stepping(file: &GgufFile, tokens: &[u32], all: &[f32], arch: &str) {
    let mut model = Model::load(file).unwrap();
    let n = tokens.len();
    let mut seen = Seen::default();
    let mut cache = model.new_cache(n);
    let observed = model
        .forward_observed(tokens, &mut cache, 0, Some(&mut seen))
        .unwrap();
    assert_eq!(observed, all, "{arch}: observing changes nothing");
    assert_eq!(seen.0.len(), 4 * N_LAYER + 1, "{arch}: four sites per layer and the head");
    assert!(seen.0.iter().all(|s| s.2 == n));
    let widths: Vec<(InputSite, usize)> = seen.0[..4].iter().map(|s| (s.1, s.3)).collect();
    let hd = spec(if arch == "gemma3" { Family::Gemma3 } else { Family::Llama }).hd;
    assert_eq!(
        widths,
        [
            (InputSite::AttnIn, D),
            (InputSite::AttnOut, N_HEAD * hd),
            (InputSite::FfnIn, D),
            (InputSite::FfnOut, N_FF)
        ],
        "{arch}"
    );

    let step = |model: &Model| {
        let mut x = model.embed_tokens(tokens).unwrap();
        for il in 0..N_LAYER {
            let h = model.attn_input(il, &x);
            let att = model.attn_mix(il, &h, n);
            model.attn_output(il, &att, &mut x, n);
            let h = model.ffn_input(il, &x);
            let act = model.ffn_hidden(il, &h, n);
            model.ffn_output(il, &act, &mut x, n);
        }
        let h = model.head_input(&x);
        model.logits(&h, n)
    };
    assert_eq!(step(&model), all, "{arch}: stages = forward");

    let down = model.weights.layers[1].linear(LinearId::Down).clone();
    let zeros = Matrix::owned(GgmlType::F32, down.rows, down.cols, vec![0u8; down.data.len()]).unwrap();
    model.set_linear(1, LinearId::Down, zeros).unwrap();
    assert_ne!(step(&model), all, "{arch}: the replaced matrix is used");
    let wrong = Matrix::owned(GgmlType::F32, down.cols, down.rows, vec![0u8; down.data.len()]).unwrap();
    assert!(model.set_linear(1, LinearId::Down, wrong).is_err(), "{arch}: shape checked");
    model.set_linear(1, LinearId::Down, down).unwrap();
    assert_eq!(step(&model), all, "{arch}: and restored");
}

#[test]
fn llama_matches_reference() {
    check_family(Family::Llama, "llama");
}

#[test]
fn gemma3_matches_reference() {
    check_family(Family::Gemma3, "gemma3");
}

fn load_err(
    name: &str,
    meta: Vec<(String, Value)>,
    t: &BTreeMap<String, (Vec<u64>, Vec<f32>)>,
) -> String {
    let path = tmp(name);
    write_model(&path, meta, t);
    let file = GgufFile::open(&path).unwrap();
    match Model::load(&file) {
        Ok(_) => panic!("{name}: loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn load_errors_name_the_culprit() {
    let sp = spec(Family::Llama);
    let mut t = tensors(&sp);
    t.remove("blk.1.ffn_up.weight");
    let e = load_err("missing.gguf", metadata(&sp, "llama"), &t);
    assert!(
        e.contains("blk.1.ffn_up.weight") && e.contains("missing"),
        "{e}"
    );

    let mut t = tensors(&sp);
    t.insert(
        "blk.0.attn_k.weight".into(),
        (vec![D as u64, 7], vec![0.0; D * 7]),
    );
    let e = load_err("shape.gguf", metadata(&sp, "llama"), &t);
    assert!(
        e.contains("blk.0.attn_k.weight") && e.contains("shape"),
        "{e}"
    );

    let t = tensors(&sp);
    let e = load_err("arch.gguf", metadata(&sp, "mamba"), &t);
    assert!(e.contains("mamba"), "{e}");

    let mut meta = metadata(&sp, "llama");
    meta.retain(|(k, _)| k != "llama.attention.layer_norm_rms_epsilon");
    let e = load_err("key.gguf", meta, &t);
    assert!(e.contains("llama.attention.layer_norm_rms_epsilon"), "{e}");
}

#[test]
fn run_errors() {
    let sp = spec(Family::Llama);
    let t = tensors(&sp);
    let path = tmp("run.gguf");
    write_model(&path, metadata(&sp, "llama"), &t);
    let file = GgufFile::open(&path).unwrap();
    let model = Model::load(&file).unwrap();
    let mut cache = model.new_cache(4);
    let r = model.forward(&[1, 2, 3, 4, 5], &mut cache, 0);
    assert!(
        matches!(
            r,
            Err(ModelError::ContextFull {
                needed: 5,
                n_ctx: 4
            })
        ),
        "{:?}",
        r.err()
    );
    assert!(matches!(
        model.forward(&[], &mut cache, 0),
        Err(ModelError::NoTokens)
    ));
    assert!(matches!(
        model.forward(&[VOCAB as u32], &mut cache, 0),
        Err(ModelError::BadToken { .. })
    ));

    let opts = EvalOptions {
        n_ctx: 8,
        max_chunks: None,
        bos: Some(1),
    };
    let r = evaluate(&model, &[1; 15], &opts, None, None, &mut |_| {});
    assert!(matches!(
        r,
        Err(EvalError::TooFewTokens {
            have: 15,
            need: 16,
            ..
        })
    ));
}

#[test]
fn perplexity_saves_and_compares_log_probs() {
    let sp = spec(Family::Llama);
    let t = tensors(&sp);
    let path = tmp("ppl.gguf");
    write_model(&path, metadata(&sp, "llama"), &t);
    let file = GgufFile::open(&path).unwrap();
    let model = Model::load(&file).unwrap();
    let tokens: Vec<u32> = (0..70u32).map(|i| (i * 7 + 3) % VOCAB as u32).collect();
    let opts = EvalOptions {
        n_ctx: 16,
        max_chunks: Some(3),
        bos: Some(1),
    };
    let lp = tmp("base.lp");
    let mut seen = 0;
    let a = evaluate(&model, &tokens, &opts, Some(&lp), None, &mut |r| {
        seen = r.chunk
    })
    .unwrap();
    assert_eq!((a.n_chunk, a.count, seen), (3, 3 * 7, 3));

    // The same model against its own log-probs: no divergence, same PPL, full agreement.
    let b = evaluate(&model, &tokens, &opts, None, Some(&lp), &mut |_| {}).unwrap();
    let k = b.kld.unwrap();
    assert!((b.ppl.value - a.ppl.value).abs() < 1e-9);
    assert!(
        (k.ppl_base.value / a.ppl.value - 1.0).abs() < 1e-3,
        "{} vs {}",
        k.ppl_base.value,
        a.ppl.value
    );
    assert!(k.kld.value.abs() < 1e-4 && k.same_top.value == 1.0, "{k:?}");

    // The PPL is exp(mean NLL) over positions n_ctx/2 .. n_ctx-2 of each chunk, BOS first.
    let mut cache = model.new_cache(16);
    let mut nll = 0f64;
    for c in 0..3 {
        let mut chunk = tokens[c * 16..(c + 1) * 16].to_vec();
        chunk[0] = 1;
        cache.clear();
        let l = model.forward(&chunk, &mut cache, 0).unwrap();
        for p in 8..15 {
            let row = &l[p * VOCAB..(p + 1) * VOCAB];
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let z: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            nll += m + z.ln() - row[tokens[c * 16 + p + 1] as usize] as f64;
        }
    }
    let want = (nll / 21.0).exp();
    assert!(
        (a.ppl.value / want - 1.0).abs() < 1e-5,
        "{} vs {want}",
        a.ppl.value
    );

    // A different text is refused.
    let mut other = tokens.clone();
    other[20] ^= 1;
    assert!(matches!(
        evaluate(&model, &other, &opts, None, Some(&lp), &mut |_| {}),
        Err(EvalError::Mismatch(_))
    ));
}
