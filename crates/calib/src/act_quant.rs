//! W8A8: int8 activations at every layer linear's input, static (ranges fixed from calibration by
//! an observer) or dynamic (each token's own range at run time), applied through the engine's
//! [`InputQuantizer`] seam. The weights' half (int8 per output channel) is an affine layout
//! (`int8-ch-sym`) quantized by any method; this module only chooses and applies activation
//! ranges.
//!
//! Static ranges are observed on the model as it will run — its weights already rounded and any
//! SmoothQuant scales folded in, so the ranges fit the activations the int8 products will see.
//! The LM head's input stays float, as W8A8 checkpoints leave the head unquantized.

use crate::error::CalibError;
use crate::observers::{choose, Granularity, Int8, ObserverKind, SiteObserver};
use crate::windows::CalibWindows;
use lowbit_convert::compressed_tensors::FolderActivations;
use lowbit_engine::bert::SentenceEncoder;
use lowbit_engine::kernels::int8::ActRange;
use lowbit_engine::model::{InputQuantizer, InputSite, LinearId, LinearObserver, Model};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How activations are rounded.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum ActScheme {
    /// Ranges from calibration, fixed at run time.
    Static {
        observer: ObserverKind,
        granularity: Granularity,
        symmetric: bool,
    },
    /// Symmetric int8 per token, its scale from the token's own largest magnitude.
    Dynamic,
}

/// One site's chosen range, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct SiteRange {
    pub layer: usize,
    pub site: String,
    pub lo: f32,
    pub hi: f32,
    pub observed_min: f32,
    pub observed_max: f32,
    pub clip_ratio: f32,
    pub relative_error: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ActReport {
    pub scheme: ActScheme,
    pub windows: usize,
    pub sites: Vec<SiteRange>,
    /// Means over the sites (1 = no clipping).
    pub mean_clip_ratio: f64,
    pub mean_relative_error: f64,
    pub seconds: f64,
}

/// Static int8 ranges per (layer, site).
pub struct StaticInt8 {
    sites: BTreeMap<(usize, InputSite), Int8>,
}

impl StaticInt8 {
    /// Ranges given per (layer, site), e.g. read from a checkpoint's `input_scale`s.
    pub fn new(sites: BTreeMap<(usize, InputSite), Int8>) -> StaticInt8 {
        StaticInt8 { sites }
    }

    /// The range of one site.
    pub fn get(&self, layer: usize, site: InputSite) -> Option<&Int8> {
        self.sites.get(&(layer, site))
    }
}

impl InputQuantizer for StaticInt8 {
    fn quantize_rows(&self, layer: usize, site: InputSite, x: &mut [f32], cols: usize) {
        let Some(q) = self.sites.get(&(layer, site)) else { return };
        for row in x.chunks_exact_mut(cols) {
            for (c, v) in row.iter_mut().enumerate() {
                *v = q.round_trip(*v, c);
            }
        }
    }

    /// One range per tensor is what an integer product applies; per-channel ranges are not.
    fn int8_range(&self, layer: usize, site: InputSite) -> Option<ActRange> {
        let q = self.sites.get(&(layer, site))?;
        (q.scale.len() == 1).then(|| ActRange::Static { scale: q.scale[0], zero: q.zero[0] as i32 })
    }
}

/// Per-token symmetric int8, the scale computed from each row as compressed-tensors (and so
/// vLLM's `w8a8-dynamic` checkpoints) computes it: `s = max|x| / 127.5`, codes
/// `clamp(round(x / s), −128, 127)` half to even.
pub struct DynamicInt8;

impl InputQuantizer for DynamicInt8 {
    fn quantize_rows(&self, _layer: usize, site: InputSite, x: &mut [f32], cols: usize) {
        if site == InputSite::Head {
            return;
        }
        for row in x.chunks_exact_mut(cols) {
            let a = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            if a == 0.0 || !a.is_finite() {
                continue;
            }
            let s = a / 127.5;
            for v in row.iter_mut() {
                *v = (*v / s).round_ties_even().clamp(-128.0, 127.0) * s;
            }
        }
    }

    fn int8_range(&self, _layer: usize, site: InputSite) -> Option<ActRange> {
        (site != InputSite::Head).then_some(ActRange::DynamicToken)
    }
}

/// The quantizer a checkpoint folder prescribes. Static ranges are kept per engine site; the
/// linears a site feeds (Q, K and V; gate and up) share their input, and a folder that gives them
/// different ranges is refused rather than silently run with one of them.
pub fn folder_quantizer(acts: &FolderActivations) -> Result<Arc<dyn InputQuantizer>, CalibError> {
    let ranges = match acts {
        FolderActivations::DynamicToken => return Ok(Arc::new(DynamicInt8)),
        FolderActivations::Static(r) => r,
    };
    let mut sites: BTreeMap<(usize, InputSite), (Int8, String)> = BTreeMap::new();
    for (name, r) in ranges {
        let Some((il, id)) = LinearId::parse_tensor_name(name) else { continue };
        let q = Int8 { scale: vec![r.scale], zero: vec![r.zero as f32], symmetric: r.zero == 0 };
        match sites.get(&(il, id.site())) {
            Some((prev, other)) if prev.scale != q.scale || prev.zero != q.zero => {
                return Err(CalibError::Invalid(format!(
                    "{name} and {other} read the same activations but their input ranges differ (scale {} vs {}): lowbit applies one range per input",
                    q.scale[0], prev.scale[0]
                )));
            }
            Some(_) => {}
            None => {
                sites.insert((il, id.site()), (q, name.clone()));
            }
        }
    }
    Ok(Arc::new(StaticInt8::new(sites.into_iter().map(|(k, (q, _))| (k, q)).collect())))
}

struct Observers {
    sites: BTreeMap<(usize, InputSite), SiteObserver>,
}

impl LinearObserver for Observers {
    fn observe(&mut self, layer: usize, site: InputSite, x: &[f32], n_tokens: usize) {
        if site == InputSite::Head || n_tokens == 0 {
            return;
        }
        let cols = x.len() / n_tokens;
        self.sites.entry((layer, site)).or_insert_with(|| SiteObserver::new(cols)).observe(x);
    }
}

/// Chooses the scheme's ranges (static: one calibration pass over `windows`) and returns the
/// quantizer to set on the model with what it chose.
pub fn calibrate(
    model: &Model,
    windows: Option<&CalibWindows>,
    scheme: ActScheme,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Arc<dyn InputQuantizer>, ActReport), CalibError> {
    let ActScheme::Static { observer, granularity, symmetric } = scheme else {
        return Ok((
            Arc::new(DynamicInt8),
            ActReport { scheme, windows: 0, sites: Vec::new(), mean_clip_ratio: 1.0, mean_relative_error: 0.0, seconds: 0.0 },
        ));
    };
    let windows = windows.ok_or_else(|| {
        CalibError::Invalid(format!(
            "static int8 activations need calibration text for the {} observer: give --calib FILE (or use w8a8-dynamic)",
            observer.name()
        ))
    })?;
    let (q, report) = calibrate_static(model, windows, observer, granularity, symmetric, progress)?;
    Ok((Arc::new(q), report))
}

/// Static ranges for every site from one observed pass over `windows`.
pub fn calibrate_static(
    model: &Model,
    windows: &CalibWindows,
    observer: ObserverKind,
    granularity: Granularity,
    symmetric: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(StaticInt8, ActReport), CalibError> {
    let t0 = std::time::Instant::now();
    let scheme = ActScheme::Static { observer, granularity, symmetric };
    let mut obs = Observers { sites: BTreeMap::new() };
    let n = windows.n_ctx;
    let mut cache = model.new_cache(n);
    for (i, w) in windows.windows.iter().enumerate() {
        cache.clear();
        model.forward_observed(w, &mut cache, n, Some(&mut obs))?;
        if let Some(((layer, site), o)) = obs.sites.iter().find(|(_, o)| o.bad.is_some()) {
            let (row, col) = o.bad.expect("found");
            return Err(CalibError::Invalid(format!(
                "layer {layer}, input of {site:?}: a NaN or infinite activation in calibration window {i} (token {row}, column {col}); no range can be observed"
            )));
        }
        progress(i + 1, windows.len());
    }
    choose_all(&obs, scheme, windows.len(), t0)
}

/// Static ranges for a BERT encoder's sites from one pass over calibration sentences (in
/// batches of `batch`).
pub fn calibrate_encoder_static(
    enc: &SentenceEncoder,
    texts: &[&str],
    batch: usize,
    observer: ObserverKind,
    granularity: Granularity,
    symmetric: bool,
) -> Result<(StaticInt8, ActReport), CalibError> {
    let t0 = std::time::Instant::now();
    if texts.is_empty() {
        return Err(CalibError::Invalid(format!(
            "static int8 activations need calibration text for the {} observer: the calibration file has no sentence",
            observer.name()
        )));
    }
    let scheme = ActScheme::Static { observer, granularity, symmetric };
    let mut obs = Observers { sites: BTreeMap::new() };
    for (i, chunk) in texts.chunks(batch.max(1)).enumerate() {
        let ids: Vec<Vec<u32>> = chunk.iter().map(|t| enc.tokenize(t)).collect();
        enc.embed_ids_observed(&ids, Some(&mut obs))
            .map_err(|e| CalibError::Invalid(e.to_string()))?;
        if let Some(((layer, site), o)) = obs.sites.iter().find(|(_, o)| o.bad.is_some()) {
            let (row, col) = o.bad.expect("found");
            return Err(CalibError::Invalid(format!(
                "layer {layer}, input of {site:?}: a NaN or infinite activation in calibration batch {i} (token {row}, column {col}); no range can be observed"
            )));
        }
    }
    choose_all(&obs, scheme, texts.len(), t0)
}

/// Every observed site's range by the scheme's observer.
fn choose_all(
    obs: &Observers,
    scheme: ActScheme,
    windows: usize,
    t0: std::time::Instant,
) -> Result<(StaticInt8, ActReport), CalibError> {
    let ActScheme::Static { observer, granularity, symmetric } = scheme else {
        unreachable!("only static schemes observe ranges")
    };
    let mut ranges = BTreeMap::new();
    let mut sites = Vec::new();
    for (&(layer, site), o) in &obs.sites {
        let c = choose(o, observer, granularity, symmetric)
            .map_err(|why| CalibError::Invalid(format!("layer {layer}, input of {site:?}: {why}")))?;
        sites.push(SiteRange {
            layer,
            site: format!("{site:?}"),
            lo: c.lo,
            hi: c.hi,
            observed_min: o.min,
            observed_max: o.max,
            clip_ratio: c.clip_ratio,
            relative_error: c.relative_error,
        });
        ranges.insert((layer, site), c.quant);
    }
    let k = sites.len().max(1) as f64;
    let report = ActReport {
        scheme,
        windows,
        mean_clip_ratio: sites.iter().map(|s| s.clip_ratio as f64).sum::<f64>() / k,
        mean_relative_error: sites.iter().map(|s| s.relative_error).sum::<f64>() / k,
        sites,
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok((StaticInt8 { sites: ranges }, report))
}

/// Calibrates `scheme` on `model` as it is now (call it after the weights are rounded) and sets
/// the quantizer on it; returns what was chosen.
pub fn apply(
    model: &mut Model,
    windows: Option<&CalibWindows>,
    scheme: ActScheme,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ActReport, CalibError> {
    let (q, report) = calibrate(model, windows, scheme, progress)?;
    model.input_quant = Some(q);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_rows_keep_their_largest_value_and_zero() {
        let mut x = vec![0.0, 1.0, -2.54, 0.013, 0.0, 0.0, 0.0, 0.0];
        DynamicInt8.quantize_rows(0, InputSite::AttnIn, &mut x, 4);
        assert_eq!(x[0], 0.0);
        // The largest magnitude sits on the tie ±127.5 by construction: float rounding of x / s
        // decides between the codes −127 and −128 (as it does in compressed-tensors).
        let s = 2.54 / 127.5;
        assert!([-127.0, -128.0].iter().any(|c| (x[2] - c * s).abs() < 1e-5), "{}", x[2]);
        assert!((x[1] - 1.0).abs() <= 2.54 / 127.5 / 2.0 + 1e-6);
        assert!(x[4..].iter().all(|&v| v == 0.0));
        let mut head = vec![0.3, 0.7];
        DynamicInt8.quantize_rows(3, InputSite::Head, &mut head, 2);
        assert_eq!(head, vec![0.3, 0.7]);
    }
}
