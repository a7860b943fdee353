//! Importance matrices from calibration text, the way llama-imatrix makes them: full forward
//! passes over the windows, and for every linear product of every layer the sum of squared
//! inputs per column and the number of tokens. Linears that share an input (Q/K/V, gate/up)
//! get the same values, as in llama.cpp's files. Sums are kept in f64 (llama.cpp sums in f32).

use crate::error::CalibError;
use crate::windows::CalibWindows;
use lowbit_engine::model::{InputSite, LinearObserver, Model};
use lowbit_files::imatrix::Imatrix;
use lowbit_quant::InputStats;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct ImatrixOptions {
    /// Also collect the LM head's input (`output.weight`, as llama-imatrix `--process-output`);
    /// costs the logits of every token.
    pub process_output: bool,
}

/// Sums of squares per (layer, site), fed by the forward pass.
struct Collector {
    sums: BTreeMap<(usize, InputSite), (Vec<f64>, u64)>,
    head: bool,
    bad: Option<(usize, InputSite)>,
}

impl LinearObserver for Collector {
    fn observe(&mut self, layer: usize, site: InputSite, x: &[f32], n_tokens: usize) {
        if site == InputSite::Head && !self.head {
            return;
        }
        let cols = x.len() / n_tokens.max(1);
        let e = self
            .sums
            .entry((layer, site))
            .or_insert_with(|| (vec![0.0; cols], 0));
        for row in x.chunks_exact(cols) {
            for (s, &v) in e.0.iter_mut().zip(row) {
                *s += (v as f64) * (v as f64);
            }
        }
        if self.bad.is_none() && x.iter().any(|v| !v.is_finite()) {
            self.bad = Some((layer, site));
        }
        e.1 += n_tokens as u64;
    }
}

/// Per-tensor input statistics (`Σx²` and the token count) over `windows`, by GGUF name.
pub fn collect(
    model: &Model,
    windows: &CalibWindows,
    opts: &ImatrixOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BTreeMap<String, InputStats>, CalibError> {
    let head = opts.process_output && model.weights.output.is_some();
    let mut c = Collector {
        sums: BTreeMap::new(),
        head,
        bad: None,
    };
    let n = windows.n_ctx;
    let mut cache = model.new_cache(n);
    for (i, w) in windows.windows.iter().enumerate() {
        cache.clear();
        model.forward_observed(w, &mut cache, if head { 0 } else { n }, Some(&mut c))?;
        if let Some((layer, site)) = c.bad {
            return Err(CalibError::Invalid(format!(
                "layer {layer}, input of {site:?}: NaN or infinite activations in window {i}; \
                 the model's weights produce them on this text"
            )));
        }
        progress(i + 1, windows.len());
    }
    let mut out = BTreeMap::new();
    for ((layer, site), (sums, tokens)) in c.sums {
        let stats = InputStats {
            cols: sums.len(),
            tokens,
            sum_sq: sums,
            sum_abs: Vec::new(),
            max_abs: Vec::new(),
            hessian: None,
        };
        if site == InputSite::Head {
            out.insert("output.weight".to_string(), stats);
            continue;
        }
        for id in site.linears() {
            out.insert(id.tensor_name(layer), stats.clone());
        }
    }
    Ok(out)
}

/// The statistics as llama.cpp's GGUF imatrix file (`<name>.in_sum2`, `<name>.counts`).
pub fn to_imatrix(
    stats: &BTreeMap<String, InputStats>,
    windows: &CalibWindows,
) -> Result<Imatrix, CalibError> {
    let mut m = Imatrix::new();
    for (name, s) in stats {
        let sums = s.sum_sq.iter().map(|&v| v as f32).collect();
        m.insert(name, s.cols, sums, vec![s.tokens as f32])?;
    }
    let dataset = windows
        .path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    m.set_datasets(vec![dataset]);
    m.set_chunks(windows.len() as u32, windows.n_ctx as u32);
    Ok(m)
}

/// Statistics from an importance matrix file, checked against the model's tensors: every entry
/// must name a tensor of the model with a matching row length.
pub fn stats_from_imatrix(
    m: &Imatrix,
    tensors: &[(String, usize)],
    path: &std::path::Path,
) -> Result<BTreeMap<String, InputStats>, CalibError> {
    let mut out = BTreeMap::new();
    for e in m.entries() {
        let Some((_, cols)) = tensors.iter().find(|(n, _)| *n == e.name) else {
            return Err(CalibError::Invalid(format!(
                "{}: entry {} names no tensor of this model (an importance matrix made for another model?)",
                path.display(),
                e.name
            )));
        };
        if e.row_len != *cols || e.n_experts != 1 {
            return Err(CalibError::Invalid(format!(
                "{}: entry {} has {} columns × {} experts, the model's tensor has rows of {cols} \
                 (an importance matrix made for another model?)",
                path.display(),
                e.name,
                e.row_len,
                e.n_experts
            )));
        }
        let tokens = e.counts.first().copied().unwrap_or(1.0).max(1.0) as u64;
        out.insert(e.name.clone(), InputStats::from_importance(e.importance(), tokens));
    }
    Ok(out)
}
