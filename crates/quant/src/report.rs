//! What a quantization run cost, per tensor and per type: sizes, bits per weight, time, the
//! weight error, and each method's own figures. The CLI prints it (as a table or `--json`); a
//! later Python API returns the same structures.

use crate::methods::MethodNotes;
use crate::pipeline::TensorReport;
use lowbit_formats::metrics::ErrorStats;
use serde::Serialize;
use std::collections::BTreeMap;

/// The error figures of a tensor or a group of tensors; all absent for tensors copied unchanged.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ErrorSummary {
    pub rmse: Option<f64>,
    pub relative_rmse: Option<f64>,
    pub sqnr_db: Option<f64>,
    pub max_abs_error: Option<f64>,
    pub cosine: Option<f64>,
}

impl ErrorSummary {
    pub fn of(s: Option<&ErrorStats>) -> ErrorSummary {
        match s {
            Some(s) => ErrorSummary {
                rmse: Some(s.rmse()),
                relative_rmse: Some(s.relative_rmse()),
                sqnr_db: Some(s.sqnr_db()),
                max_abs_error: Some(s.max_abs_err),
                cosine: Some(s.cosine()),
            },
            None => ErrorSummary::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TypeSummary {
    pub tensors: usize,
    pub elements: u64,
    pub bytes: u64,
    pub bits_per_weight: f64,
    pub seconds: f64,
    #[serde(flatten)]
    pub error: ErrorSummary,
}

#[derive(Clone, Debug, Serialize)]
pub struct TensorSummary {
    pub name: String,
    pub dims: Vec<u64>,
    pub source: String,
    pub target: String,
    pub fell_back_from: Option<String>,
    pub bytes: u64,
    pub seconds: f64,
    pub used_importance: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    #[serde(flatten)]
    pub error: ErrorSummary,
    #[serde(flatten)]
    pub notes: MethodNotes,
}

/// The whole model's figures.
#[derive(Clone, Debug, Serialize)]
pub struct ModelSummary {
    pub elements: u64,
    /// Tensor data bits per weight (the header excluded).
    pub bits_per_weight: f64,
    pub tensor_bytes: u64,
    /// Tensors whose type did not fit their rows and fell back (`name: wanted -> got`).
    pub fell_back: Vec<String>,
    pub types: BTreeMap<String, TypeSummary>,
    pub tensors: Vec<TensorSummary>,
}

impl ModelSummary {
    pub fn of(reports: &[TensorReport]) -> ModelSummary {
        let mut by_type: BTreeMap<String, (usize, u64, u64, f64, Option<ErrorStats>)> =
            BTreeMap::new();
        for r in reports {
            let e = by_type
                .entry(r.target.name().to_string())
                .or_insert((0, 0, 0, 0.0, None));
            e.0 += 1;
            e.1 += r.dims.iter().product::<u64>();
            e.2 += r.bytes;
            e.3 += r.seconds;
            if let Some(s) = &r.stats {
                e.4.get_or_insert_with(ErrorStats::default).merge(s);
            }
        }
        let types = by_type
            .into_iter()
            .map(|(ty, (tensors, elements, bytes, seconds, stats))| {
                let summary = TypeSummary {
                    tensors,
                    elements,
                    bytes,
                    bits_per_weight: bytes as f64 * 8.0 / elements.max(1) as f64,
                    seconds,
                    error: ErrorSummary::of(stats.as_ref()),
                };
                (ty, summary)
            })
            .collect();
        let elements: u64 = reports.iter().map(|r| r.dims.iter().product::<u64>()).sum();
        let tensor_bytes: u64 = reports.iter().map(|r| r.bytes).sum();
        ModelSummary {
            elements,
            bits_per_weight: tensor_bytes as f64 * 8.0 / elements.max(1) as f64,
            tensor_bytes,
            fell_back: reports
                .iter()
                .filter_map(|r| {
                    r.fell_back_from
                        .map(|f| format!("{}: {} -> {}", r.name, f, r.target))
                })
                .collect(),
            types,
            tensors: reports
                .iter()
                .map(|r| TensorSummary {
                    name: r.name.clone(),
                    dims: r.dims.clone(),
                    source: r.source.name().into(),
                    target: r.target.name().into(),
                    fell_back_from: r.fell_back_from.map(|t| t.name().to_string()),
                    bytes: r.bytes,
                    seconds: r.seconds,
                    used_importance: r.used_importance,
                    method: r.method,
                    error: ErrorSummary::of(r.stats.as_ref()),
                    notes: r.notes.clone(),
                })
                .collect(),
        }
    }

    /// "blk.7.attn_q.weight: Q4_K -> IQ4_NL" grouped as ("blk.*.attn_q.weight", "Q4_K -> IQ4_NL", 30).
    pub fn fallback_groups(&self) -> Vec<(String, String, usize)> {
        let mut groups: BTreeMap<(String, String), usize> = BTreeMap::new();
        for f in &self.fell_back {
            let (name, change) = f.split_once(": ").unwrap_or((f, ""));
            *groups
                .entry((layer_pattern(name), change.to_string()))
                .or_default() += 1;
        }
        groups.into_iter().map(|((p, c), n)| (p, c, n)).collect()
    }
}

/// `blk.7.attn_q.weight` → `blk.*.attn_q.weight`.
pub fn layer_pattern(name: &str) -> String {
    match name.strip_prefix("blk.").and_then(|rest| rest.split_once('.')) {
        Some((_, tail)) => format!("blk.*.{tail}"),
        None => name.to_string(),
    }
}

/// Tensors, elements and bytes of one type in a file (what `inspect` tallies).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TypeTally {
    pub tensors: usize,
    pub elements: u64,
    pub bytes: u64,
}

/// Per-type totals of `(type name, dims, bytes)` rows, with the overall bytes and elements.
pub fn tally<'a>(
    rows: impl IntoIterator<Item = (&'a str, &'a [u64], u64)>,
) -> (BTreeMap<String, TypeTally>, u64, u64) {
    let mut types: BTreeMap<String, TypeTally> = BTreeMap::new();
    let (mut bytes, mut elements) = (0, 0);
    for (ty, dims, b) in rows {
        let n: u64 = dims.iter().product();
        let row = types.entry(ty.to_string()).or_default();
        row.tensors += 1;
        row.elements += n;
        row.bytes += b;
        bytes += b;
        elements += n;
    }
    (types, bytes, elements)
}

/// Bits per weight of `bytes` holding `elements` weights (0 for none).
pub fn bits_per_weight(bytes: u64, elements: u64) -> f64 {
    if elements == 0 {
        0.0
    } else {
        bytes as f64 * 8.0 / elements as f64
    }
}
