//! The calibration driver end to end on a tiny generated LLaMA-style model (grouped KV heads,
//! tied embeddings): every linear and the head come back quantized, GPTQ's model is closer to
//! the float one than round-to-nearest's, results do not depend on the thread count, AWQ's
//! folded scales leave the float model unchanged, NaN weights or activations are named, and int8
//! activations (every observer, static and dynamic) and SmoothQuant cost little.

use lowbit_calib::sequential::{self, DriverOptions};
use lowbit_calib::CalibWindows;
use lowbit_engine::model::Model;
use lowbit_files::gguf::{GgufFile, GgufWriter, TensorSpec, Value};
use lowbit_formats::GgmlType;
use lowbit_quant::methods::awq::{Awq, AwqOptions};
use lowbit_quant::methods::gptq::{Gptq, GptqOptions};
use lowbit_quant::methods::rtn::Rtn;
use lowbit_quant::methods::{Encoded, Method, MethodNotes, Needs, QuantOutcome, SiteJob, SiteScales, TensorJob};
use lowbit_quant::{QuantError, Target};
use std::path::{Path, PathBuf};

const D: usize = 64;
const HEADS: usize = 4;
const KV: usize = 2;
const FF: usize = 128;
const VOCAB: usize = 50;
const LAYERS: usize = 2;
const CTX: usize = 48;

struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// Writes the tiny model; `poison` replaces one value of one tensor (name, index, value).
fn write_model(path: &Path, poison: Option<(&str, usize, f32)>) {
    let hd = D / HEADS;
    let mut shapes: Vec<(String, Vec<u64>, f32, f32)> = vec![
        ("token_embd.weight".into(), vec![D as u64, VOCAB as u64], 1.0, 0.0),
        ("output_norm.weight".into(), vec![D as u64], 0.2, 1.0),
    ];
    for l in 0..LAYERS {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        shapes.push((n("attn_norm"), vec![D as u64], 0.4, 1.0));
        shapes.push((n("attn_q"), vec![D as u64, (HEADS * hd) as u64], 0.3, 0.0));
        shapes.push((n("attn_k"), vec![D as u64, (KV * hd) as u64], 0.3, 0.0));
        shapes.push((n("attn_v"), vec![D as u64, (KV * hd) as u64], 0.3, 0.0));
        shapes.push((n("attn_output"), vec![(HEADS * hd) as u64, D as u64], 0.3, 0.0));
        shapes.push((n("ffn_norm"), vec![D as u64], 0.4, 1.0));
        shapes.push((n("ffn_gate"), vec![D as u64, FF as u64], 0.3, 0.0));
        shapes.push((n("ffn_up"), vec![D as u64, FF as u64], 0.3, 0.0));
        shapes.push((n("ffn_down"), vec![FF as u64, D as u64], 0.3, 0.0));
    }
    let meta = vec![
        ("general.architecture".to_string(), Value::from("llama")),
        ("llama.block_count".into(), Value::U32(LAYERS as u32)),
        ("llama.embedding_length".into(), Value::U32(D as u32)),
        ("llama.feed_forward_length".into(), Value::U32(FF as u32)),
        ("llama.attention.head_count".into(), Value::U32(HEADS as u32)),
        ("llama.attention.head_count_kv".into(), Value::U32(KV as u32)),
        ("llama.attention.layer_norm_rms_epsilon".into(), Value::F32(1e-5)),
    ];
    let specs = shapes
        .iter()
        .map(|(n, d, _, _)| TensorSpec::new(n.clone(), d, GgmlType::F32))
        .collect();
    let mut w = GgufWriter::create(path, meta, specs).unwrap();
    let mut r = Xorshift(0x1234_5678_9abc_def1);
    for (name, dims, scale, offset) in &shapes {
        let n = dims.iter().product::<u64>() as usize;
        // A few input channels much louder than the rest (as in real models), so activation-
        // aware methods have something to find.
        let mut v: Vec<f32> = (0..n).map(|i| offset + scale * r.next() * if i % D == 3 { 4.0 } else { 1.0 }).collect();
        if let Some((p, i, x)) = poison {
            if p == name {
                v[i] = x;
            }
        }
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.write_tensor(name, &bytes).unwrap();
    }
    w.finish().unwrap();
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lowbit-calib-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn windows(n: usize, seed: u64) -> CalibWindows {
    let mut r = Xorshift(seed);
    let tokens: Vec<u32> = (0..n * CTX).map(|_| ((r.next() + 0.5) * VOCAB as f32) as u32 % VOCAB as u32).collect();
    CalibWindows::from_tokens(Path::new("synthetic"), &tokens, CTX, Some(1)).unwrap()
}

fn all_targets(name: &str) -> Option<Target> {
    if name == "token_embd.weight" {
        Some(Target::Block(GgmlType::Q8_0))
    } else {
        name.starts_with("blk.").then_some(Target::Block(GgmlType::Q4_0))
    }
}

/// Logits of every position of every window.
fn logits(model: &Model, w: &CalibWindows) -> Vec<f32> {
    let mut out = Vec::new();
    for t in &w.windows {
        let mut cache = model.new_cache(CTX);
        out.extend(model.forward(t, &mut cache, 0).unwrap());
    }
    out
}

fn mse(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>() / a.len() as f64
}

/// Quantizes a fresh copy of the model with `method`; returns the result and held-out logits.
fn run(path: &Path, method: &dyn Method, threads: usize) -> (sequential::DriverResult, Vec<f32>) {
    run_with(path, method, threads, &DriverOptions::default())
}

fn run_with(
    path: &Path,
    method: &dyn Method,
    threads: usize,
    opts: &DriverOptions,
) -> (sequential::DriverResult, Vec<f32>) {
    let file = GgufFile::open(path).unwrap();
    let mut model = Model::load(&file).unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let r = pool
        .install(|| {
            sequential::run(&mut model, &windows(8, 7), &all_targets, method, opts, &mut |_| {})
        })
        .unwrap();
    let l = logits(&model, &windows(3, 99));
    (r, l)
}

#[test]
fn every_linear_and_the_head_are_quantized_and_gptq_beats_round_to_nearest() {
    let path = tmp("tiny.gguf");
    write_model(&path, None);
    let file = GgufFile::open(&path).unwrap();
    let float = logits(&Model::load(&file).unwrap(), &windows(3, 99));

    let (rtn, rtn_logits) = run(&path, &Rtn, 2);
    assert_eq!(rtn.outcomes.len(), 7 * LAYERS + 1);
    assert!(rtn.outcomes.contains_key("token_embd.weight"));
    let (gptq, gptq_logits) = run(&path, &Gptq::new(GptqOptions::default()), 2);
    assert_eq!(gptq.outcomes.len(), 7 * LAYERS + 1);
    for (name, o) in &gptq.outcomes {
        assert!(o.notes.output_error.is_some(), "{name}");
        assert!(matches!(o.encoded, Encoded::Blocks(_)), "{name}");
    }
    let (e_rtn, e_gptq) = (mse(&rtn_logits, &float), mse(&gptq_logits, &float));
    assert!(e_gptq < 0.8 * e_rtn, "GPTQ {e_gptq} vs RTN {e_rtn}");

    // Statistics from the unquantized model (--calib-parallel) work too, and still beat RTN.
    let parallel = DriverOptions {
        sequential: false,
        head: true,
    };
    let (p, p_logits) = run_with(&path, &Gptq::new(GptqOptions::default()), 2, &parallel);
    assert_eq!(p.outcomes.len(), 7 * LAYERS + 1);
    let e_parallel = mse(&p_logits, &float);
    assert!(e_parallel < 0.8 * e_rtn, "GPTQ (parallel) {e_parallel} vs RTN {e_rtn}");

    let (awq, awq_logits) = run(&path, &Awq(AwqOptions::default()), 2);
    assert_eq!(awq.sites.len(), 4 * LAYERS, "AWQ reports every site");
    let e_awq = mse(&awq_logits, &float);
    assert!(e_awq < e_rtn, "AWQ {e_awq} vs RTN {e_rtn}");
}

#[test]
fn calibrated_results_do_not_depend_on_the_thread_count() {
    let path = tmp("tiny-threads.gguf");
    write_model(&path, None);
    let bytes = |r: &sequential::DriverResult| -> Vec<Vec<u8>> {
        r.outcomes
            .values()
            .map(|o| match &o.encoded {
                Encoded::Blocks(b) => b.clone(),
                Encoded::Affine(a) => a.codes.clone(),
            })
            .collect()
    };
    for m in [&Gptq::new(GptqOptions::default()) as &dyn Method, &Awq(AwqOptions::default())] {
        let (a, _) = run(&path, m, 1);
        let (b, _) = run(&path, m, 2);
        assert!(bytes(&a) == bytes(&b), "{}: 1 and 2 threads differ", m.name());
    }
}

/// Scales every site by fixed pseudo-random factors and "quantizes" to F32: the folded model
/// must compute what the original did.
struct FoldOnly;

impl Method for FoldOnly {
    fn name(&self) -> &'static str {
        "fold-only"
    }
    fn needs(&self) -> Needs {
        Needs {
            importance: false,
            hessian: false,
            mean_abs: true,
        }
    }
    fn site_scales(&self, site: &SiteJob) -> Result<Option<SiteScales>, QuantError> {
        let n = site.stats.cols;
        let mean = site.stats.mean_abs().unwrap();
        // Tied groups of channels (heads sharing a V) have equal statistics, hence equal scales.
        let scales = (0..n).map(|j| 0.5 + (mean[j] * 1e3).fract() as f32).collect();
        Ok(Some(SiteScales {
            scales,
            alpha: 0.5,
            error_before: 0.0,
            error_after: 0.0,
        }))
    }
    fn quantize(&self, job: &TensorJob) -> Result<QuantOutcome, QuantError> {
        let f32_job = TensorJob {
            target: Target::Block(GgmlType::F32),
            ..*job
        };
        let mut o = Rtn.quantize(&f32_job)?;
        o.notes = MethodNotes::default();
        Ok(o)
    }
}

#[test]
fn folded_scales_leave_the_float_model_unchanged() {
    let path = tmp("tiny-fold.gguf");
    write_model(&path, None);
    let file = GgufFile::open(&path).unwrap();
    let w = windows(2, 5);
    let before = logits(&Model::load(&file).unwrap(), &w);
    let mut model = Model::load(&file).unwrap();
    let f32_targets = |n: &str| n.starts_with("blk.").then_some(Target::Block(GgmlType::F32));
    let r = sequential::run(&mut model, &windows(4, 7), &f32_targets, &FoldOnly, &DriverOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(r.sites.len(), 4 * LAYERS);
    assert_eq!(r.norms.len(), 2 * LAYERS, "attn_norm and ffn_norm of every layer");
    let after = logits(&model, &w);
    let worst = before
        .iter()
        .zip(&after)
        .map(|(a, b)| (a - b).abs() / (1.0 + a.abs()))
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "folding changed the model by {worst}");
}

#[test]
fn nan_weights_and_activations_are_named() {
    let path = tmp("tiny-nan-w.gguf");
    write_model(&path, Some(("blk.1.ffn_up.weight", 5, f32::NAN)));
    let file = GgufFile::open(&path).unwrap();
    let mut model = Model::load(&file).unwrap();
    let e = sequential::run(&mut model, &windows(2, 7), &all_targets, &Gptq::new(GptqOptions::default()), &DriverOptions::default(), &mut |_| {})
        .err()
        .expect("a NaN weight fails")
        .to_string();
    assert!(e.contains("blk.1.ffn_up.weight") || e.contains("layer 1"), "{e}");

    let path = tmp("tiny-nan-a.gguf");
    write_model(&path, Some(("token_embd.weight", 3 * D + 2, f32::INFINITY)));
    let file = GgufFile::open(&path).unwrap();
    let mut model = Model::load(&file).unwrap();
    // Token 3 appears in the windows; its embedding row carries an infinity.
    let e = sequential::run(&mut model, &windows(4, 7), &all_targets, &Gptq::new(GptqOptions::default()), &DriverOptions::default(), &mut |_| {})
        .err()
        .expect("an infinite activation fails")
        .to_string();
    assert!(e.contains("layer 0") && e.contains("attn_in"), "{e}");
}

#[test]
fn gptq_without_calibration_text_is_refused_by_name() {
    let path = tmp("tiny-nocalib.gguf");
    write_model(&path, None);
    let file = GgufFile::open(&path).unwrap();
    let mut model = Model::load(&file).unwrap();
    let e = lowbit_calib::inmemory::quantize_loaded(
        &mut model,
        &file,
        &lowbit_calib::inmemory::InMemoryTarget::Affine(lowbit_formats::grid::AffineRow {
            bits: 4,
            symmetric: false,
            group: Some(32),
        }),
        &Gptq::new(GptqOptions::default()),
        None,
        true,
        &mut |_| {},
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("--calib"), "{e}");
}

/// An input quantizer that changes nothing: the hook itself must not change a single bit.
struct Identity;

impl lowbit_engine::model::InputQuantizer for Identity {
    fn quantize_rows(&self, _: usize, _: lowbit_engine::model::InputSite, _: &mut [f32], _: usize) {}
}

#[test]
fn int8_activations_cost_little_each_observer_reports_its_clip_and_nan_is_named() {
    use lowbit_calib::act_quant::{calibrate, ActScheme};
    use lowbit_calib::observers::{Granularity, ObserverKind};
    let path = tmp("tiny-w8a8.gguf");
    write_model(&path, None);
    let file = GgufFile::open(&path).unwrap();
    let mut model = Model::load(&file).unwrap();
    let held = windows(3, 99);
    let float = logits(&model, &held);
    let spread = mse(&float, &vec![0.0; float.len()]);
    model.input_quant = Some(std::sync::Arc::new(Identity));
    assert_eq!(logits(&model, &held), float, "an identity hook changes nothing");
    model.input_quant = None;

    let calib = windows(4, 7);
    let float_calib = logits(&model, &calib);
    let mut errors = Vec::new();
    for scheme in [
        ActScheme::Dynamic,
        ActScheme::Static { observer: ObserverKind::MinMax, granularity: Granularity::Tensor, symmetric: true },
        ActScheme::Static { observer: ObserverKind::MinMax, granularity: Granularity::Channel, symmetric: true },
        ActScheme::Static { observer: ObserverKind::Mse, granularity: Granularity::Tensor, symmetric: false },
        ActScheme::Static { observer: ObserverKind::Percentile(99.9), granularity: Granularity::Tensor, symmetric: true },
        ActScheme::Static { observer: ObserverKind::Entropy, granularity: Granularity::Tensor, symmetric: true },
    ] {
        let (q, report) = calibrate(&model, Some(&calib), scheme, &mut |_, _| {}).unwrap();
        if let ActScheme::Static { observer, .. } = scheme {
            assert_eq!(report.sites.len(), 4 * LAYERS, "every layer site observed, the head left float");
            assert!(report.sites.iter().all(|s| s.clip_ratio > 0.0 && s.clip_ratio <= 1.0 + 1e-6));
            if observer == ObserverKind::MinMax {
                assert!((report.mean_clip_ratio - 1.0).abs() < 1e-6);
            }
        }
        model.input_quant = Some(q);
        let e = mse(&logits(&model, &held), &float) / spread;
        // On the calibration windows themselves no value falls outside an observed range.
        let e_in = mse(&logits(&model, &calib), &float_calib);
        model.input_quant = None;
        // Rounded, but close: int8 keeps logits within a small fraction of their spread.
        assert!(e > 0.0 && e < 1e-2, "{scheme:?}: relative logit error {e}");
        errors.push(e_in);
    }
    // Per-channel ranges fit each column: closer than one range per tensor where both cover
    // every value (on held-out text the tighter ranges also clip more).
    assert!(errors[2] < errors[1], "{errors:?}");
    let minmax = ActScheme::Static { observer: ObserverKind::MinMax, granularity: Granularity::Tensor, symmetric: true };
    let e = calibrate(&model, None, minmax, &mut |_, _| {})
    .err()
    .expect("static ranges need calibration")
    .to_string();
    assert!(e.contains("--calib"), "{e}");

    let path = tmp("tiny-w8a8-nan.gguf");
    write_model(&path, Some(("token_embd.weight", 3 * D + 2, f32::NAN)));
    let file = GgufFile::open(&path).unwrap();
    let model = Model::load(&file).unwrap();
    let e = calibrate(
        &model,
        Some(&windows(4, 7)),
        ActScheme::Static { observer: ObserverKind::MinMax, granularity: Granularity::Tensor, symmetric: true },
        &mut |_, _| {},
    )
    .err()
    .expect("a NaN activation fails")
    .to_string();
    assert!(e.contains("layer 0") && e.contains("NaN"), "{e}");
}

#[test]
fn smoothquant_smooths_qkv_gate_up_and_down_shrinks_their_ranges_and_keeps_the_model_close() {
    use lowbit_quant::methods::smoothquant::{SmoothQuant, SmoothQuantOptions};
    let path = tmp("tiny-sq.gguf");
    write_model(&path, None);
    let file = GgufFile::open(&path).unwrap();
    let held = windows(3, 99);
    let float = logits(&Model::load(&file).unwrap(), &held);
    // Targets F32 everywhere except what SmoothQuant smooths: the weights are then rounded to
    // F32 (no change), so only the folding can move the logits.
    let f32_targets = |n: &str| n.starts_with("blk.").then_some(Target::Block(GgmlType::F32));
    let mut model = Model::load(&file).unwrap();
    let sq = SmoothQuant(SmoothQuantOptions { alpha: 0.5 });
    let r = sequential::run(&mut model, &windows(4, 7), &f32_targets, &sq, &DriverOptions::default(), &mut |_| {}).unwrap();
    assert!(r.sites.is_empty(), "float targets are not smoothed");
    // With a real target the sites are smoothed, their largest activation shrinks, and the
    // folded model with int8 weights stays close to the float one.
    let int8 = |n: &str| {
        n.starts_with("blk.").then_some(Target::Affine(lowbit_formats::grid::AffineRow { bits: 8, symmetric: true, group: None }))
    };
    let mut model = Model::load(&file).unwrap();
    let r = sequential::run(&mut model, &windows(4, 7), &int8, &sq, &DriverOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(r.sites.len(), 3 * LAYERS, "Q/K/V, gate/up and down smoothed, O not");
    assert!(r.sites.iter().all(|s| s.error_after <= 1.0 + 1e-9), "{:?}", r.sites.iter().map(|s| s.error_after).collect::<Vec<_>>());
    let e = mse(&logits(&model, &held), &float) / mse(&float, &vec![0.0; float.len()]);
    assert!(e < 1e-3, "smoothing + int8 weights moved the logits by {e}");
}

#[test]
fn integer_w8a8_products_compute_what_fake_quantization_measures() {
    use lowbit_calib::act_quant::{calibrate, ActScheme};
    use lowbit_calib::inmemory::{quantize_loaded, InMemoryTarget};
    use lowbit_calib::int8_weights::{from_outcomes, install};
    use lowbit_calib::observers::{Granularity, ObserverKind};
    let path = tmp("tiny-int8.gguf");
    write_model(&path, None);
    let file = GgufFile::open(&path).unwrap();
    let held = windows(3, 99);
    let calib = windows(4, 7);
    let float = logits(&Model::load(&file).unwrap(), &held);
    let spread = mse(&float, &vec![0.0; float.len()]);
    let int8 = InMemoryTarget::Affine(lowbit_formats::grid::AffineRow { bits: 8, symmetric: true, group: None });
    for scheme in [
        ActScheme::Dynamic,
        ActScheme::Static { observer: ObserverKind::MinMax, granularity: Granularity::Tensor, symmetric: false },
        ActScheme::Static { observer: ObserverKind::MinMax, granularity: Granularity::Channel, symmetric: true },
    ] {
        let mut model = Model::load(&file).unwrap();
        let report = quantize_loaded(&mut model, &file, &int8, &Rtn, None, false, &mut |_| {}).unwrap();
        let (q, _) = calibrate(&model, Some(&calib), scheme, &mut |_, _| {}).unwrap();
        model.input_quant = Some(q);
        let fake = logits(&model, &held);
        assert_eq!(install(&mut model, from_outcomes(&report.outcomes)).unwrap(), 7 * LAYERS);
        let integer = logits(&model, &held);
        let per_channel = matches!(scheme, ActScheme::Static { granularity: Granularity::Channel, .. });
        assert_eq!(model.int8_linears(), if per_channel { 0 } else { 7 * LAYERS }, "linears that run in integers");
        if per_channel {
            // One range per input column cannot be applied by an integer product: fake stays.
            assert_eq!(integer, fake, "per-channel ranges keep the float products");
        } else {
            // The same codes meet the same codes; only float summation order differs. Static
            // ranges make that invisible. The dynamic rule (s = max|x| / 127.5) puts each row's
            // largest value exactly on a rounding boundary (±127.5), so a last-bit difference
            // upstream can move a negative maximum between −128 and −127: a one-code change,
            // still far below what the rounding itself costs.
            let e = mse(&integer, &fake) / spread;
            let cost = mse(&fake, &float) / spread;
            let bound = if scheme == ActScheme::Dynamic { 0.05 * cost } else { 1e-9 };
            assert!(integer != fake && e < bound, "{scheme:?}: integer vs fake relative error {e} (rounding costs {cost})");
        }
        // Replacing a linear's float weights drops its int8 form (it would be stale), and its
        // site (Q, K, V) goes back to the float products.
        let wq = model.weights.layers[0].wq.clone();
        model.set_linear(0, lowbit_engine::model::LinearId::Q, wq).unwrap();
        assert_eq!(model.int8_linears(), if per_channel { 0 } else { 7 * LAYERS - 3 });
    }
}
