//! The error of every tensor of one model against a reference model, grouped by type — how
//! docs/QUALITY.md compares lowbit's quantizers with llama-quantize's: both quantize the same F32
//! file and are measured against it by the same code. Optionally weighted per column by an
//! importance matrix: the error that reaches the outputs, which is what an imatrix-guided
//! quantizer minimises.

use crate::pipeline::SourceModel;
use lowbit_formats::metrics::ErrorStats;
use std::collections::BTreeMap;

pub struct TensorError {
    pub name: String,
    /// The other model's type for this tensor.
    pub ty: String,
    pub stats: ErrorStats,
}

pub struct Comparison {
    pub tensors: Vec<TensorError>,
    /// By the other model's type: tensor count and merged error.
    pub types: BTreeMap<String, (usize, ErrorStats)>,
    pub total: ErrorStats,
}

/// Compares every tensor of `other` with the tensor of the same name in `reference`.
/// `importance(name)` gives per-column weights (used when its length matches the rows).
pub fn compare(
    reference: &dyn SourceModel,
    other: &dyn SourceModel,
    importance: &dyn Fn(&str) -> Option<Vec<f32>>,
) -> Result<Comparison, String> {
    let mut types: BTreeMap<String, (usize, ErrorStats)> = BTreeMap::new();
    let mut tensors = Vec::new();
    for (ib, tb) in other.tensors().iter().enumerate() {
        let Some(ia) = reference.tensors().iter().position(|t| t.name == tb.name) else {
            return Err(format!(
                "the model has tensor {} which the reference lacks",
                tb.name
            ));
        };
        let ta = &reference.tensors()[ia];
        if ta.dims != tb.dims {
            return Err(format!(
                "tensor {}: shape {:?} in the reference, {:?} in the other model",
                tb.name, ta.dims, tb.dims
            ));
        }
        let va = reference.values(ia)?;
        let vb = other.values(ib)?;
        let mut s = ErrorStats::default();
        let row = tb.dims[0] as usize;
        let err = |e: lowbit_formats::FormatError| format!("tensor {}: {e}", tb.name);
        match importance(&tb.name).filter(|w| w.len() == row) {
            Some(w) => {
                for (ra, rb) in va.chunks_exact(row).zip(vb.chunks_exact(row)) {
                    s.add_weighted(ra, rb, &w).map_err(err)?;
                }
            }
            None => s.add(&va, &vb).map_err(err)?,
        }
        let e = types
            .entry(tb.source.name().to_string())
            .or_insert((0, ErrorStats::default()));
        e.0 += 1;
        e.1.merge(&s);
        tensors.push(TensorError {
            name: tb.name.clone(),
            ty: tb.source.name().to_string(),
            stats: s,
        });
    }
    let mut total = ErrorStats::default();
    for (_, s) in types.values() {
        total.merge(s);
    }
    Ok(Comparison {
        tensors,
        types,
        total,
    })
}
