//! The layer-by-layer driver: runs the engine one layer at a time over the calibration windows,
//! hands each method the statistics of exactly the inputs its linears will see, and swaps the
//! quantized weights in before the next stage reads them.
//!
//! For layer `i`, with `x` the inputs of every window (the outputs of the already-quantized
//! layers `< i` in sequential mode):
//!
//! 1. (AWQ only) one pass with the layer as it is collects all four input sites; the method's
//!    per-channel scales are folded into the layer (norm ÷ s, the producing linear's rows ÷ s,
//!    the consuming linears' columns × s), which leaves its float outputs unchanged.
//! 2. Stage by stage ("true sequential", as GPTQ's reference does it): the statistics of Q/K/V's
//!    input → quantize Q, K, V → attention with the *quantized* Q/K/V gives O's input → quantize
//!    O → the residual and MLP norm give gate/up's input → … → down → the layer's output, which
//!    is the next layer's input. Every product is computed once.
//!
//! Memory is one layer's activations for the calibration set (the residual stream of every
//! window and one stage's intermediate), never the whole model's. In non-sequential mode the
//! statistics come from the unquantized model (as an importance matrix does) and the quantized
//! weights are swapped in only at the end.

use crate::collect::StatsBuilder;
use crate::error::CalibError;
use crate::windows::CalibWindows;
use lowbit_engine::model::{InputSite, LinearId, Model, NormId};
use lowbit_engine::tensor::Matrix;
use lowbit_formats::GgmlType;
use lowbit_quant::methods::{Encoded, Method, Needs, QuantOutcome, SiteJob, SiteScales, TensorJob};
use lowbit_quant::role::role_of;
use lowbit_quant::{InputStats, Target};
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// Calibrate layer `i + 1` on the outputs of the quantized layer `i`.
    pub sequential: bool,
    /// Quantize the LM head (the embedding when tied) with the method as well, from the final
    /// hidden states' statistics.
    pub head: bool,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            sequential: true,
            head: true,
        }
    }
}

/// What happened at one input site (AWQ's scales).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SiteReport {
    pub layer: usize,
    pub site: String,
    pub alpha: f32,
    /// Output error of the site's linears with plain rounding and with the chosen scales,
    /// relative to their output energy.
    pub error_before: f64,
    pub error_after: f64,
}

/// Progress of a run.
pub enum DriverEvent<'a> {
    Layer {
        layer: usize,
        n_layer: usize,
        stage: &'a str,
    },
}

#[derive(Default)]
pub struct DriverResult {
    /// Quantized tensors by GGUF name.
    pub outcomes: BTreeMap<String, QuantOutcome>,
    /// Norm weights changed by folded scales, by GGUF name (f32).
    pub norms: BTreeMap<String, Vec<f32>>,
    pub sites: Vec<SiteReport>,
    /// Seconds in the engine and statistics, and in the methods.
    pub seconds_forward: f64,
    pub seconds_methods: f64,
}

/// Runs the calibrated quantization of every linear that `targets` names (by GGUF name), and of
/// the LM head when asked. The model's weights end up quantized (or, for affine layouts, their
/// dequantized values in F32), so it can be measured in memory right after.
pub fn run(
    model: &mut Model,
    windows: &CalibWindows,
    targets: &dyn Fn(&str) -> Option<Target>,
    method: &dyn Method,
    opts: &DriverOptions,
    progress: &mut dyn FnMut(DriverEvent),
) -> Result<DriverResult, CalibError> {
    let mut d = Driver {
        needs: method.needs(),
        method,
        targets,
        opts,
        result: DriverResult::default(),
        deferred: Vec::new(),
    };
    let n = windows.n_ctx;
    let t0 = Instant::now();
    let mut xs: Vec<Vec<f32>> = windows
        .windows
        .iter()
        .map(|w| model.embed_tokens(w))
        .collect::<Result<_, _>>()?;
    let n_layer = model.config.n_layer;
    for il in 0..n_layer {
        progress(DriverEvent::Layer {
            layer: il,
            n_layer,
            stage: "statistics",
        });
        if d.has_scales() {
            let stats = d.float_layer(model, il, &xs, n, false)?.0;
            d.fold_scales(model, il, &stats)?;
        }
        if opts.sequential {
            d.true_sequential(model, il, &mut xs, n, progress)?;
        } else {
            let (stats, next) = d.float_layer(model, il, &xs, n, true)?;
            for site in [InputSite::AttnIn, InputSite::AttnOut, InputSite::FfnIn, InputSite::FfnOut] {
                d.quantize_site(model, il, site, &stats[&site], false)?;
            }
            xs = next.expect("asked for the outputs");
        }
    }
    if opts.head {
        progress(DriverEvent::Layer {
            layer: n_layer,
            n_layer,
            stage: "head",
        });
        d.quantize_head(model, &xs)?;
    }
    for (il, id, m) in std::mem::take(&mut d.deferred) {
        model.set_linear(il, id, m)?;
    }
    let mut result = d.result;
    result.seconds_forward = t0.elapsed().as_secs_f64() - result.seconds_methods;
    Ok(result)
}

struct Driver<'a> {
    needs: Needs,
    method: &'a dyn Method,
    targets: &'a dyn Fn(&str) -> Option<Target>,
    opts: &'a DriverOptions,
    result: DriverResult,
    /// Quantized linears to swap in at the end (non-sequential mode).
    deferred: Vec<(usize, LinearId, Matrix<'static>)>,
}

fn site_name(site: InputSite) -> &'static str {
    match site {
        InputSite::AttnIn => "attn_in",
        InputSite::AttnOut => "attn_out",
        InputSite::FfnIn => "ffn_in",
        InputSite::FfnOut => "ffn_out",
        InputSite::Head => "head",
    }
}

impl Driver<'_> {
    fn has_scales(&self) -> bool {
        self.needs.mean_abs
    }

    fn builder(&self, cols: usize) -> StatsBuilder {
        StatsBuilder::new(cols, self.needs.hessian)
    }

    fn finish(&self, b: StatsBuilder, layer: usize, site: InputSite) -> Result<InputStats, CalibError> {
        if let Some((w, t, c)) = b.non_finite() {
            return Err(CalibError::NonFinite {
                layer,
                site: site_name(site).into(),
                window: w,
                token: t,
                column: c,
            });
        }
        Ok(b.finish())
    }

    /// The whole layer as it is over every window, statistics at all four sites; with `next`
    /// also its outputs.
    #[allow(clippy::type_complexity)]
    fn float_layer(
        &self,
        model: &Model,
        il: usize,
        xs: &[Vec<f32>],
        n: usize,
        next: bool,
    ) -> Result<(BTreeMap<InputSite, InputStats>, Option<Vec<Vec<f32>>>), CalibError> {
        let c = &model.config;
        let q_width = c.n_head * c.head_dim_v;
        let mut b = [
            self.builder(c.n_embd),
            self.builder(q_width),
            self.builder(c.n_embd),
            self.builder(model.weights.n_ff),
        ];
        let mut outs = Vec::new();
        for x in xs {
            let mut x = x.clone();
            let h = model.attn_input(il, &x);
            b[0].add(&h);
            let att = model.attn_mix(il, &h, n);
            b[1].add(&att);
            model.attn_output(il, &att, &mut x, n);
            let h = model.ffn_input(il, &x);
            b[2].add(&h);
            let act = model.ffn_hidden(il, &h, n);
            b[3].add(&act);
            if next {
                model.ffn_output(il, &act, &mut x, n);
                outs.push(x);
            }
        }
        let sites = [InputSite::AttnIn, InputSite::AttnOut, InputSite::FfnIn, InputSite::FfnOut];
        let mut stats = BTreeMap::new();
        for (site, b) in sites.into_iter().zip(b) {
            stats.insert(site, self.finish(b, il, site)?);
        }
        Ok((stats, next.then_some(outs)))
    }

    /// The stage-by-stage pass of layer `il`, quantizing each site before the next reads it.
    fn true_sequential(
        &mut self,
        model: &mut Model,
        il: usize,
        xs: &mut [Vec<f32>],
        n: usize,
        progress: &mut dyn FnMut(DriverEvent),
    ) -> Result<(), CalibError> {
        let c = model.config.clone();
        let n_layer = c.n_layer;
        let mut stage = |s: &'static str| {
            progress(DriverEvent::Layer {
                layer: il,
                n_layer,
                stage: s,
            })
        };
        stage("attention");
        let mut b = self.builder(c.n_embd);
        for x in xs.iter() {
            b.add(&model.attn_input(il, x));
        }
        let st = self.finish(b, il, InputSite::AttnIn)?;
        self.quantize_site(model, il, InputSite::AttnIn, &st, true)?;

        let mut b = self.builder(c.n_head * c.head_dim_v);
        let mut atts = Vec::with_capacity(xs.len());
        for x in xs.iter() {
            let h = model.attn_input(il, x);
            let att = model.attn_mix(il, &h, n);
            b.add(&att);
            atts.push(att);
        }
        let st = self.finish(b, il, InputSite::AttnOut)?;
        self.quantize_site(model, il, InputSite::AttnOut, &st, true)?;

        stage("mlp");
        let mut b = self.builder(c.n_embd);
        for (x, att) in xs.iter_mut().zip(atts.drain(..)) {
            model.attn_output(il, &att, x, n);
            b.add(&model.ffn_input(il, x));
        }
        drop(atts);
        let st = self.finish(b, il, InputSite::FfnIn)?;
        self.quantize_site(model, il, InputSite::FfnIn, &st, true)?;

        let mut b = self.builder(model.weights.n_ff);
        let mut acts = Vec::with_capacity(xs.len());
        for x in xs.iter() {
            let act = model.ffn_hidden(il, &model.ffn_input(il, x), n);
            b.add(&act);
            acts.push(act);
        }
        let st = self.finish(b, il, InputSite::FfnOut)?;
        self.quantize_site(model, il, InputSite::FfnOut, &st, true)?;
        for (x, act) in xs.iter_mut().zip(acts) {
            model.ffn_output(il, &act, x, n);
        }
        Ok(())
    }

    /// Quantizes the linears of one site of layer `il`; `now`: swap them into the model at once.
    fn quantize_site(
        &mut self,
        model: &mut Model,
        il: usize,
        site: InputSite,
        stats: &InputStats,
        now: bool,
    ) -> Result<(), CalibError> {
        let t = Instant::now();
        for &id in site.linears() {
            let name = id.tensor_name(il);
            let Some(target) = (self.targets)(&name) else {
                continue;
            };
            let m = model.weights.layers[il].linear(id);
            let (rows, cols) = (m.rows, m.cols);
            let values = m.to_f32();
            let job = TensorJob {
                name: &name,
                role: role_of(&name, 2),
                rows,
                cols,
                values: &values,
                target,
                stats: Some(stats),
            };
            let out = self.method.quantize(&job)?;
            let out = with_output_error(out, &job)?;
            let matrix = to_matrix(&out, &target, rows, cols, &name)?;
            if now && self.opts.sequential {
                model.set_linear(il, id, matrix)?;
            } else {
                self.deferred.push((il, id, matrix));
            }
            self.result.outcomes.insert(name, out);
        }
        self.result.seconds_methods += t.elapsed().as_secs_f64();
        Ok(())
    }

    /// AWQ: scales for every site of layer `il` from its float statistics, folded into the layer.
    fn fold_scales(
        &mut self,
        model: &mut Model,
        il: usize,
        stats: &BTreeMap<InputSite, InputStats>,
    ) -> Result<(), CalibError> {
        let t = Instant::now();
        let c = model.config.clone();
        for site in [InputSite::AttnIn, InputSite::AttnOut, InputSite::FfnIn, InputSite::FfnOut] {
            if site == InputSite::AttnOut && model.weights.layers[il].bv.is_some() {
                // V's bias would need the same division; architectures with one keep O as is.
                continue;
            }
            let ids = site.linears();
            let names: Vec<String> = ids.iter().map(|id| id.tensor_name(il)).collect();
            let Some(targets) = names.iter().map(|n| (self.targets)(n)).collect::<Option<Vec<_>>>() else {
                continue;
            };
            let values: Vec<Vec<f32>> = ids.iter().map(|&id| model.weights.layers[il].linear(id).to_f32()).collect();
            let mut st = stats[&site].clone();
            if site == InputSite::AttnOut && c.n_head != c.n_head_kv {
                // Heads that share a V must share its scales: tie their statistics.
                tie_heads(&mut st, c.n_head, c.n_head_kv, c.head_dim_v);
            }
            let jobs = ids
                .iter()
                .zip(&names)
                .zip(&values)
                .zip(&targets)
                .map(|(((&id, name), v), &target)| {
                    let m = model.weights.layers[il].linear(id);
                    TensorJob {
                        name,
                        role: role_of(name, 2),
                        rows: m.rows,
                        cols: m.cols,
                        values: v,
                        target,
                        stats: Some(&st),
                    }
                })
                .collect();
            let Some(sc) = self.method.site_scales(&SiteJob {
                tensors: jobs,
                stats: &st,
            })?
            else {
                continue;
            };
            self.apply_scales(model, il, site, &sc)?;
            self.result.sites.push(SiteReport {
                layer: il,
                site: site_name(site).into(),
                alpha: sc.alpha,
                error_before: sc.error_before,
                error_after: sc.error_after,
            });
        }
        self.result.seconds_methods += t.elapsed().as_secs_f64();
        Ok(())
    }

    /// Multiplies the site's linears' columns by `s` and divides the producer of its input by `s`.
    fn apply_scales(
        &mut self,
        model: &mut Model,
        il: usize,
        site: InputSite,
        sc: &SiteScales,
    ) -> Result<(), CalibError> {
        let s = &sc.scales;
        if sc.alpha == 0.0 {
            return Ok(());
        }
        for &id in site.linears() {
            let m = model.weights.layers[il].linear(id);
            let (rows, cols) = (m.rows, m.cols);
            let mut v = m.to_f32();
            for row in v.chunks_exact_mut(cols) {
                for (x, &k) in row.iter_mut().zip(s) {
                    *x *= k;
                }
            }
            model.set_linear(il, id, f32_matrix(v, rows, cols))?;
        }
        let divide_rows = |model: &mut Model, id: LinearId| -> Result<(), CalibError> {
            let m = model.weights.layers[il].linear(id);
            let (rows, cols) = (m.rows, m.cols);
            let mut v = m.to_f32();
            for (r, row) in v.chunks_exact_mut(cols).enumerate() {
                let k = s[r];
                row.iter_mut().for_each(|x| *x /= k);
            }
            model.set_linear(il, id, f32_matrix(v, rows, cols))?;
            Ok(())
        };
        match site {
            InputSite::AttnIn | InputSite::FfnIn => {
                let id = if site == InputSite::AttnIn { NormId::Attn } else { NormId::Ffn };
                let w: Vec<f32> = model.weights.layers[il]
                    .norm(id)
                    .iter()
                    .zip(s)
                    .map(|(&g, &k)| g / k)
                    .collect();
                self.result.norms.insert(id.tensor_name(il), w.clone());
                model.set_norm(il, id, w)?;
            }
            InputSite::AttnOut => {
                // O's input channel (head h, dim j) is V's row (kv head of h, dim j); the scales
                // are tied per kv head, so the first head of each group speaks for it.
                let c = &model.config;
                let (hd, group) = (c.head_dim_v, c.n_head / c.n_head_kv);
                let sv: Vec<f32> = (0..c.n_head_kv * hd).map(|r| s[(r / hd) * group * hd + r % hd]).collect();
                let m = model.weights.layers[il].linear(LinearId::V);
                let (rows, cols) = (m.rows, m.cols);
                let mut v = m.to_f32();
                for (r, row) in v.chunks_exact_mut(cols).enumerate() {
                    row.iter_mut().for_each(|x| *x /= sv[r]);
                }
                model.set_linear(il, LinearId::V, f32_matrix(v, rows, cols))?;
            }
            InputSite::FfnOut => divide_rows(model, LinearId::Up)?,
            InputSite::Head => {}
        }
        Ok(())
    }

    /// The LM head from the final hidden states, in chunks of rows: its rows are independent
    /// for every method, and a 262k-row head (Gemma-3) would otherwise need its f32 copy and
    /// candidates in memory at once.
    fn quantize_head(&mut self, model: &mut Model, xs: &[Vec<f32>]) -> Result<(), CalibError> {
        let name = if model.weights.output.is_some() {
            "output.weight"
        } else {
            "token_embd.weight"
        };
        let Some(target) = (self.targets)(name) else {
            return Ok(());
        };
        let mut b = self.builder(model.config.n_embd);
        for x in xs {
            b.add(&model.head_input(x));
        }
        let st = self.finish(b, model.config.n_layer, InputSite::Head)?;
        let t = Instant::now();
        let m = model.weights.output();
        let (rows, cols) = (m.rows, m.cols);
        let mut parts = Vec::new();
        let mut r0 = 0;
        while r0 < rows {
            let r1 = (r0 + HEAD_ROWS).min(rows);
            let mut values = vec![0f32; (r1 - r0) * cols];
            for (r, row) in (r0..r1).zip(values.chunks_exact_mut(cols)) {
                m.row_into(r, row);
            }
            let job = TensorJob {
                name,
                role: role_of(name, 2),
                rows: r1 - r0,
                cols,
                values: &values,
                target,
                stats: Some(&st),
            };
            parts.push((r1 - r0, with_output_error(self.method.quantize(&job)?, &job)?));
            r0 = r1;
        }
        let out = concat_rows(parts).map_err(CalibError::Invalid)?;
        model.set_output(to_matrix(&out, &target, rows, cols, name)?)?;
        self.result.outcomes.insert(name.to_string(), out);
        self.result.seconds_methods += t.elapsed().as_secs_f64();
        Ok(())
    }
}

/// Rows of the LM head quantized together.
const HEAD_ROWS: usize = 16384;

/// Joins results for consecutive row ranges of one tensor (the notes: the most frequent choice,
/// the row-weighted mean output error).
fn concat_rows(parts: Vec<(usize, QuantOutcome)>) -> Result<QuantOutcome, String> {
    let total: usize = parts.iter().map(|p| p.0).sum();
    let mut notes = parts.first().map(|p| p.1.notes.clone()).unwrap_or_default();
    let mut votes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut err = 0f64;
    for (r, p) in &parts {
        if let Some(c) = p.notes.chosen {
            *votes.entry(c).or_default() += r;
        }
        err += p.notes.output_error.unwrap_or(0.0) * *r as f64;
    }
    notes.chosen = votes.into_iter().max_by_key(|v| v.1).map(|v| v.0);
    notes.output_error = notes.output_error.map(|_| err / total.max(1) as f64);
    let mut it = parts.into_iter().map(|p| p.1.encoded);
    let first = it.next().ok_or("no rows")?;
    let encoded = match first {
        Encoded::Blocks(mut b) => {
            for e in it {
                match e {
                    Encoded::Blocks(x) => b.extend_from_slice(&x),
                    _ => return Err("mixed encodings".into()),
                }
            }
            Encoded::Blocks(b)
        }
        Encoded::Affine(mut a) => {
            for e in it {
                match e {
                    Encoded::Affine(x) => {
                        a.rows += x.rows;
                        a.codes.extend_from_slice(&x.codes);
                        a.params.extend_from_slice(&x.params);
                    }
                    _ => return Err("mixed encodings".into()),
                }
            }
            Encoded::Affine(a)
        }
    };
    Ok(QuantOutcome { encoded, notes })
}

fn tie_heads(st: &mut InputStats, n_head: usize, n_head_kv: usize, hd: usize) {
    let group = n_head / n_head_kv;
    // Sums by their mean over the group, maxima by their maximum.
    for (v, is_max) in [(&mut st.sum_abs, false), (&mut st.sum_sq, false), (&mut st.max_abs, true)] {
        if v.len() != n_head * hd {
            continue;
        }
        for g in 0..n_head_kv {
            for j in 0..hd {
                let at = |k: usize| ((g * group + k) * hd) + j;
                let tied = if is_max {
                    (0..group).map(|k| v[at(k)]).fold(0f64, f64::max)
                } else {
                    (0..group).map(|k| v[at(k)]).sum::<f64>() / group as f64
                };
                for k in 0..group {
                    v[at(k)] = tied;
                }
            }
        }
    }
}

/// The method's relative output error, computed here when the method did not report one.
fn with_output_error(mut out: QuantOutcome, job: &TensorJob) -> Result<QuantOutcome, CalibError> {
    if out.notes.output_error.is_none() {
        if let Some(h) = job.stats.and_then(|s| s.hessian.as_ref()) {
            let back = out.dequantize(&job.target, job.rows, job.cols).map_err(|e| e.on(job.name))?;
            let e: Vec<f32> = job.values.iter().zip(&back).map(|(a, b)| a - b).collect();
            let h32 = lowbit_quant::linalg::to_f32(h);
            let num = lowbit_quant::linalg::weighted_error(&e, &h32, job.cols);
            let den = lowbit_quant::linalg::weighted_error(job.values, &h32, job.cols);
            out.notes.output_error = Some(if den > 0.0 { num / den } else { 0.0 });
        }
    }
    Ok(out)
}

fn f32_matrix(v: Vec<f32>, rows: usize, cols: usize) -> Matrix<'static> {
    let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    Matrix::owned(GgmlType::F32, rows, cols, bytes).expect("shape from the matrix it replaces")
}

/// The engine matrix for a method's result: its blocks, or an affine layout's values in F32.
pub fn to_matrix(
    out: &QuantOutcome,
    target: &Target,
    rows: usize,
    cols: usize,
    name: &str,
) -> Result<Matrix<'static>, CalibError> {
    match (&out.encoded, target) {
        (Encoded::Blocks(b), Target::Block(t)) => Matrix::owned(*t, rows, cols, b.clone())
            .ok_or_else(|| CalibError::Invalid(format!("{name}: blocks of the wrong size"))),
        _ => {
            let v = out.dequantize(target, rows, cols).map_err(|e| e.on(name))?;
            Ok(f32_matrix(v, rows, cols))
        }
    }
}
