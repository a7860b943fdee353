//! What quantizing each tensor alone costs, at every type llama.cpp can run: the sensitivity
//! table the budgeted allocation (`lowbit_quant::allocate`) chooses from.
//!
//! Measuring the KLD of every (tensor, type) pair directly would take hundreds of model runs.
//! Instead, per tensor:
//!
//! 1. the **proxy** at every candidate type: the Hessian-weighted output error `Σ e·H·eᵀ` of the
//!    method's result on the tensor's calibration input (one float pass collects the statistics,
//!    layer by layer);
//! 2. the **measured KLD** at one reference type (Q4_0): the tensor alone swapped into the float
//!    model, the layers from its own onward run on held-out windows (their inputs cached per
//!    layer), the next-token distributions compared with the float model's;
//! 3. the **prediction** at every other type: measured × proxy(type) / proxy(reference) — the
//!    measurement carries where in the network the tensor sits and how much the rest of the
//!    model amplifies its error, the proxy how that error changes with the type.
//!
//! The table reports how well the proxy alone ranks tensors like the measured KLD (Spearman), and
//! validates the predictions by measuring a second type on a subset of tensors. It is cached as
//! JSON next to the model, keyed by content hashes of the model and the calibration text.

use crate::collect::StatsBuilder;
use crate::error::CalibError;
use crate::quantize_file::CalibSpec;
use crate::sequential::to_matrix;
use crate::windows::CalibWindows;
use lowbit_engine::eval::score_position;
use lowbit_engine::model::{InputSite, LinearId, Model};
use lowbit_engine::tensor::Matrix;
use lowbit_engine::tokenizer::Tokenizer;
use lowbit_files::GgufFile;
use lowbit_formats::GgmlType;
use lowbit_quant::allocate::{TensorCosts, TypeCost};
use lowbit_quant::linalg::{to_f32, weighted_error};
use lowbit_quant::methods::{method_by_name, Method, MethodOptions, TensorJob};
use lowbit_quant::role::role_of;
use lowbit_quant::{InputStats, Target};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Types llama.cpp runs on the CPU, by the block they need: the candidates of an allocation.
pub const CANDIDATES_32: [GgmlType; 6] = [
    GgmlType::Q4_0,
    GgmlType::IQ4_NL,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
];
pub const CANDIDATES_256: [GgmlType; 6] = [
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::IQ4_XS,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// The type every tensor's KLD is measured at (it fits every row of a multiple of 32).
pub const REFERENCE: GgmlType = GgmlType::Q4_0;
/// The second type measured on a subset of tensors to validate the predictions.
const VALIDATION: GgmlType = GgmlType::Q5_0;
/// Every this many tensors is measured at the validation type too.
const VALIDATE_EVERY: usize = 7;
use crate::heldout::SCORED;
/// Alignment of tensor data in a GGUF file (the sizes are counted padded).
const ALIGN: u64 = 32;

pub const TABLE_VERSION: u32 = 1;

#[derive(Clone, Debug)]
pub struct SensitivitySpec {
    pub method: String,
    pub method_options: MethodOptions,
    /// Calibration windows for the statistics; `held_out` more windows after them measure KLD.
    pub calib: CalibSpec,
    pub held_out: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Validation {
    pub ty: String,
    pub tensors: usize,
    /// Spearman correlation of predicted and measured KLD at the validation type.
    pub rank_correlation: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SensitivityTable {
    pub version: u32,
    pub model_hash: String,
    pub calib_hash: String,
    pub calib_file: String,
    pub method: String,
    pub windows: usize,
    pub held_out: usize,
    pub ctx: usize,
    pub reference_type: String,
    /// Spearman correlation, across tensors, of the proxy and the measured KLD at the reference.
    pub rank_correlation: f64,
    pub validation: Validation,
    /// Candidate types of every quantizable tensor with their bytes and predicted KLD.
    pub tensors: Vec<TensorCosts>,
    /// Measured KLD at the reference type, by tensor.
    pub measured: BTreeMap<String, f64>,
    pub seconds: f64,
}

/// FNV-1a over bytes, 8 at a time (content hashes of models and texts).
pub fn content_hash(parts: &[&[u8]]) -> String {
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        let mut chunks = p.chunks_exact(8);
        for c in &mut chunks {
            x = (x ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(0x0100_0000_01b3);
        }
        for &b in chunks.remainder() {
            x = (x ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        x = (x ^ p.len() as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{x:016x}")
}

/// A model's content hash: tensor names, shapes, types and data.
pub fn model_hash(f: &GgufFile) -> String {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for t in f.tensors() {
        let mut d = t.name.as_bytes().to_vec();
        d.extend(t.dims.iter().flat_map(|x| x.to_le_bytes()));
        d.extend((t.ty as u32).to_le_bytes());
        parts.push(d);
    }
    let mut refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    for t in f.tensors() {
        refs.push(f.tensor_data(t));
    }
    content_hash(&refs)
}

/// The candidate types for rows of `cols`.
pub fn candidates(cols: u64) -> Vec<GgmlType> {
    let mut v: Vec<GgmlType> = CANDIDATES_32.iter().copied().filter(|t| cols % t.block_elems() as u64 == 0).collect();
    if cols % 256 == 0 {
        v.extend(CANDIDATES_256);
    }
    v
}

/// Bytes of a `dims` tensor in `ty` in a file (padded to the alignment).
pub fn padded_bytes(dims: &[u64], ty: GgmlType) -> u64 {
    let rows: u64 = dims[1..].iter().product();
    (ty.row_bytes(dims[0]).unwrap_or(0) * rows).next_multiple_of(ALIGN)
}

/// The default cache path of a model's table.
pub fn cache_path(model: &Path, method: &str) -> PathBuf {
    let mut s = model.as_os_str().to_owned();
    s.push(format!(".sensitivity-{method}.json"));
    PathBuf::from(s)
}

/// Loads a cached table, checking it belongs to this model and calibration text.
pub fn load_cached(
    path: &Path,
    file: &GgufFile,
    spec: &SensitivitySpec,
) -> Result<Option<SensitivityTable>, CalibError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let bad = |why: String| CalibError::Invalid(format!("sensitivity cache {}: {why}", path.display()));
    let t: SensitivityTable = serde_json::from_str(&text).map_err(|e| bad(format!("not a sensitivity table ({e})")))?;
    if t.version != TABLE_VERSION {
        return Err(bad(format!("version {} (this lowbit writes {TABLE_VERSION}); delete it or pass --recompute-sensitivity", t.version)));
    }
    let mh = model_hash(file);
    if t.model_hash != mh {
        return Err(bad(format!(
            "made for another model (content hash {} vs this model's {mh}); delete it or pass --recompute-sensitivity",
            t.model_hash
        )));
    }
    let ch = content_hash(&[&std::fs::read(&spec.calib.path).map_err(|e| bad(e.to_string()))?]);
    if t.calib_hash != ch {
        return Err(bad(format!(
            "made from another calibration text ({}, hash {} vs {ch} of {}); pass --recompute-sensitivity",
            t.calib_file,
            t.calib_hash,
            spec.calib.path.display()
        )));
    }
    let windows = spec.calib.chunks.unwrap_or(32);
    if t.method != spec.method || t.ctx != spec.calib.ctx || t.windows != windows || t.held_out != spec.held_out {
        return Err(bad(format!(
            "made with --method {}, {} windows of {} tokens and {} held out; this run asks {}, {} of {} and {}; pass --recompute-sensitivity",
            t.method, t.windows, t.ctx, t.held_out, spec.method, windows, spec.calib.ctx, spec.held_out
        )));
    }
    Ok(Some(t))
}

/// Progress: (step done, steps, what).
pub type Progress<'a> = dyn FnMut(usize, usize, &str) + 'a;

/// Computes the table for `file` (the model whose tensors will be quantized).
pub fn compute(
    file: &GgufFile,
    spec: &SensitivitySpec,
    progress: &mut Progress,
) -> Result<SensitivityTable, CalibError> {
    let t0 = Instant::now();
    let method = method_by_name(&spec.method, &spec.method_options).map_err(CalibError::Invalid)?;
    let mut model = Model::load(file)?;
    let tok = Tokenizer::from_gguf(file)?;
    let windows_n = spec.calib.chunks.unwrap_or(32);
    let all = CalibWindows::from_file(&spec.calib.path, &tok, spec.calib.ctx, Some(windows_n + spec.held_out))?;
    if all.len() < windows_n + spec.held_out {
        return Err(CalibError::Text {
            path: spec.calib.path.clone(),
            why: format!(
                "{} windows of {} tokens; the sensitivity table needs {} for statistics and {} held out",
                all.len(),
                spec.calib.ctx,
                windows_n,
                spec.held_out
            ),
        });
    }
    let (calib, held) = all.windows.split_at(windows_n);
    let n = spec.calib.ctx;
    let c = model.config.clone();
    let n_layer = c.n_layer;
    let total_steps = 2 * n_layer + 2;
    let mut step = 0;

    // Float hidden states: the calibration windows (advanced layer by layer) and, for every
    // layer, the held-out windows' inputs (to run the model from any layer onward).
    let mut xs: Vec<Vec<f32>> = calib.iter().map(|w| model.embed_tokens(w)).collect::<Result<_, _>>()?;
    let mut held_in: Vec<Vec<Vec<f32>>> = vec![held.iter().map(|w| model.embed_tokens(w)).collect::<Result<_, _>>()?];
    let targets: BTreeMap<String, (Vec<u64>, Vec<GgmlType>)> = file
        .tensors()
        .iter()
        .filter(|t| role_of(&t.name, t.dims.len()) != lowbit_quant::role::Role::Keep)
        .map(|t| (t.name.clone(), (t.dims.clone(), candidates(t.dims[0]))))
        .collect();
    let mut tensors: Vec<TensorCosts> = Vec::new();
    let mut refq: BTreeMap<String, Matrix<'static>> = BTreeMap::new();
    let mut valq: BTreeMap<String, Matrix<'static>> = BTreeMap::new();
    let proxies = |name: &str, m: &Matrix, stats: &InputStats, refq: &mut BTreeMap<String, Matrix<'static>>, valq: &mut BTreeMap<String, Matrix<'static>>| -> Result<TensorCosts, CalibError> {
        let (dims, types) = &targets[name];
        let values = m.to_f32();
        let h32 = to_f32(stats.hessian.as_ref().expect("collected"));
        let mut options = Vec::new();
        for &ty in types {
            let target = Target::Block(ty);
            let job = TensorJob {
                name,
                role: role_of(name, 2),
                rows: m.rows,
                cols: m.cols,
                values: &values,
                target,
                stats: Some(stats),
            };
            let out = if method.check_target(&target).is_ok() {
                method.quantize(&job)?
            } else {
                lowbit_quant::methods::rtn::Rtn.quantize(&job)?
            };
            let back = out.dequantize(&target, m.rows, m.cols).map_err(|e| e.on(name))?;
            let e: Vec<f32> = values.iter().zip(&back).map(|(a, b)| a - b).collect();
            let proxy = weighted_error(&e, &h32, m.cols);
            if ty == REFERENCE {
                refq.insert(name.to_string(), to_matrix(&out, &target, m.rows, m.cols, name)?);
            }
            if ty == VALIDATION {
                valq.insert(name.to_string(), to_matrix(&out, &target, m.rows, m.cols, name)?);
            }
            options.push(TypeCost {
                ty: ty.name().to_string(),
                bytes: padded_bytes(dims, ty),
                loss: 0.0,
                proxy,
            });
        }
        Ok(TensorCosts {
            name: name.to_string(),
            dims: dims.clone(),
            options,
        })
    };

    for il in 0..n_layer {
        progress(step, total_steps, &format!("statistics, layer {il}"));
        step += 1;
        let mut b = [
            StatsBuilder::new(c.n_embd, true),
            StatsBuilder::new(c.n_head * c.head_dim_v, true),
            StatsBuilder::new(c.n_embd, true),
            StatsBuilder::new(model.weights.n_ff, true),
        ];
        for x in xs.iter_mut() {
            layer_forward(&model, il, x, n, Some(&mut b));
        }
        let mut next = held_in[il].clone();
        for x in next.iter_mut() {
            layer_forward(&model, il, x, n, None);
        }
        held_in.push(next);
        let sites = [InputSite::AttnIn, InputSite::AttnOut, InputSite::FfnIn, InputSite::FfnOut];
        for (site, b) in sites.into_iter().zip(b) {
            if let Some((w, t, col)) = b.non_finite() {
                return Err(CalibError::NonFinite {
                    layer: il,
                    site: format!("{site:?}"),
                    window: w,
                    token: t,
                    column: col,
                });
            }
            let st = b.finish();
            for &id in site.linears() {
                let name = id.tensor_name(il);
                if !targets.contains_key(&name) {
                    continue;
                }
                let m = model.weights.layers[il].linear(id).clone();
                tensors.push(proxies(&name, &m, &st, &mut refq, &mut valq)?);
            }
        }
    }
    // The LM head (the embedding when tied).
    let head = if model.weights.output.is_some() { "output.weight" } else { "token_embd.weight" };
    let mut b = StatsBuilder::new(c.n_embd, true);
    for x in &xs {
        b.add(&model.head_input(x));
    }
    drop(xs);
    let st = b.finish();
    let hm = model.weights.output().clone();
    if targets.contains_key(head) {
        tensors.push(proxies(head, &hm, &st, &mut refq, &mut valq)?);
    }

    // The float model's log-probabilities on the held-out windows, then each tensor alone at
    // the reference (and, for a subset, the validation) type.
    let base = log_probs(&model, &held_in[n_layer]);
    let mut measured = BTreeMap::new();
    let mut validated: Vec<(String, f64)> = Vec::new();
    let names: Vec<String> = tensors.iter().map(|t| t.name.clone()).collect();
    for (k, name) in names.iter().enumerate() {
        progress(step + k * (n_layer + 2) / names.len().max(1), total_steps, &format!("measuring {name}"));
        let m = &refq[name];
        measured.insert(name.clone(), kld_alone(&mut model, name, m.clone(), &held_in, held, &base)?);
        if k % VALIDATE_EVERY == 0 {
            if let Some(v) = valq.get(name) {
                validated.push((name.clone(), kld_alone(&mut model, name, v.clone(), &held_in, held, &base)?));
            }
        }
    }
    // Predictions: the measurement scaled by the proxy's change with the type.
    let gains: Vec<f64> = tensors
        .iter()
        .filter_map(|t| {
            let r = t.options.iter().find(|o| o.ty == REFERENCE.name())?;
            (r.proxy > 0.0).then(|| measured[&t.name] / r.proxy)
        })
        .collect();
    let median_gain = median(&gains);
    for t in &mut tensors {
        let r = t.options.iter().find(|o| o.ty == REFERENCE.name()).map(|o| o.proxy).unwrap_or(0.0);
        let gain = if r > 0.0 { measured[&t.name] / r } else { median_gain };
        for o in &mut t.options {
            o.loss = (gain * o.proxy).max(0.0);
        }
    }
    let rank_correlation = spearman(
        &tensors
            .iter()
            .map(|t| t.options.iter().find(|o| o.ty == REFERENCE.name()).map_or(0.0, |o| o.proxy))
            .collect::<Vec<_>>(),
        &tensors.iter().map(|t| measured[&t.name]).collect::<Vec<_>>(),
    );
    let predicted_val: Vec<f64> = validated
        .iter()
        .map(|(n, _)| {
            tensors
                .iter()
                .find(|t| &t.name == n)
                .and_then(|t| t.options.iter().find(|o| o.ty == VALIDATION.name()))
                .map_or(0.0, |o| o.loss)
        })
        .collect();
    let validation = Validation {
        ty: VALIDATION.name().into(),
        tensors: validated.len(),
        rank_correlation: spearman(&predicted_val, &validated.iter().map(|v| v.1).collect::<Vec<_>>()),
    };
    progress(total_steps, total_steps, "done");
    Ok(SensitivityTable {
        version: TABLE_VERSION,
        model_hash: model_hash(file),
        calib_hash: content_hash(&[&std::fs::read(&spec.calib.path).map_err(|e| CalibError::Text {
            path: spec.calib.path.clone(),
            why: e.to_string(),
        })?]),
        calib_file: spec.calib.path.display().to_string(),
        method: spec.method.clone(),
        windows: windows_n,
        held_out: spec.held_out,
        ctx: n,
        reference_type: REFERENCE.name().into(),
        rank_correlation,
        validation,
        tensors,
        measured,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// One whole layer on a window, optionally feeding the four sites' statistics.
fn layer_forward(model: &Model, il: usize, x: &mut [f32], n: usize, stats: Option<&mut [StatsBuilder; 4]>) {
    let h = model.attn_input(il, x);
    let att = model.attn_mix(il, &h, n);
    model.attn_output(il, &att, x, n);
    let h2 = model.ffn_input(il, x);
    let act = model.ffn_hidden(il, &h2, n);
    if let Some(b) = stats {
        b[0].add(&h);
        b[1].add(&att);
        b[2].add(&h2);
        b[3].add(&act);
    }
    model.ffn_output(il, &act, x, n);
}

/// Log-probabilities of the scored positions of every window (final hidden states given).
fn log_probs(model: &Model, finals: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let d = model.config.n_embd;
    finals
        .iter()
        .map(|x| {
            let n = x.len() / d;
            let first = n.saturating_sub(SCORED);
            let h = model.head_input(&x[first * d..]);
            let mut l = model.logits(&h, n - first);
            let v = model.n_vocab();
            for row in l.chunks_exact_mut(v) {
                let mut lp = vec![0f32; v];
                score_position(row, 0, None, Some(&mut lp));
                row.copy_from_slice(&lp);
            }
            l
        })
        .collect()
}

/// The mean KLD from `base` of the model with `name` replaced by `m` (put back afterwards).
fn kld_alone<'a>(
    model: &mut Model<'a>,
    name: &str,
    m: Matrix<'a>,
    held_in: &[Vec<Vec<f32>>],
    held: &[Vec<u32>],
    base: &[Vec<f32>],
) -> Result<f64, CalibError> {
    let n_layer = model.config.n_layer;
    let (layer, id) = locate(name).unwrap_or((0, None));
    let original = match id {
        Some(id) => model.swap_linear(layer, id, m)?,
        None => model.swap_output(m)?,
    };
    // A linear changes the layers from its own; the head (or a tied embedding) the whole run.
    let start = if id.is_some() { layer } else { 0 };
    let mut finals = Vec::with_capacity(held.len());
    for (w, tokens) in held.iter().enumerate() {
        let mut x = if id.is_some() {
            held_in[start][w].clone()
        } else {
            model.embed_tokens(tokens)?
        };
        let n = tokens.len();
        for il in start..n_layer {
            layer_forward(model, il, &mut x, n, None);
        }
        finals.push(x);
    }
    let lp = log_probs(model, &finals);
    match id {
        Some(id) => model.swap_linear(layer, id, original)?,
        None => model.swap_output(original)?,
    };
    let mut total = 0f64;
    let mut count = 0usize;
    for (a, b) in lp.iter().zip(base) {
        let v = model.n_vocab();
        for (pa, pb) in a.chunks_exact(v).zip(b.chunks_exact(v)) {
            total += crate::heldout::kld_of(pb, pa);
            count += 1;
        }
    }
    Ok(total / count.max(1) as f64)
}

/// `blk.L.attn_q.weight` → (L, Q); the head and embedding → (0, None).
fn locate(name: &str) -> Option<(usize, Option<LinearId>)> {
    let layer = lowbit_quant::role::layer_of(name)?;
    let id = LinearId::ALL.into_iter().find(|id| id.tensor_name(layer) == name)?;
    Some((layer, Some(id)))
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get(s.len() / 2).copied().unwrap_or(1.0)
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0f64; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (ties get average ranks); 0 for fewer than 2 points.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    if a.len() < 2 || a.len() != b.len() {
        return 0.0;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va > 0.0 && vb > 0.0 {
        cov / (va * vb).sqrt()
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_sees_order_not_scale() {
        assert!((spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 35.0, 1000.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0], &[1.0]), 0.0);
    }

    #[test]
    fn hashes_see_every_byte() {
        assert_ne!(content_hash(&[b"abcdefgh1"]), content_hash(&[b"abcdefgh2"]));
        assert_ne!(content_hash(&[b"ab", b"c"]), content_hash(&[b"a", b"bc"]));
    }

    #[test]
    fn candidates_follow_the_row_length() {
        assert_eq!(candidates(576).len(), 6);
        assert_eq!(candidates(1536).len(), 12);
        assert!(candidates(576).iter().all(|t| 576 % t.block_elems() == 0));
    }
}
