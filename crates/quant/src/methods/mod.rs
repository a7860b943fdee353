//! The method seam: one trait for "turn one tensor's f32 rows into a target's blocks (or affine
//! codes), given what is known about it", one file per method, chosen by name.
//!
//! | method | needs | what it minimises |
//! |---|---|---|
//! | [`rtn`] | nothing (importance when calibrated) | each block's (importance-weighted) error |
//! | [`gptq`] | the input Hessian `XᵀX` | the layer's output error, column by column with error feedback |
//! | [`awq`] | `mean|x|` and the Hessian | the output error, by per-channel scales folded into the op before |
//! | [`hqq`] | nothing | an ℓₚ (p < 1) reconstruction error, by half-quadratic updates of scale and zero |
//!
//! Methods never run the model: the calibration layer (`lowbit-calib`) drives the engine, hands
//! each method the statistics it declared in [`Method::needs`], and folds the scales AWQ returns
//! from [`Method::site_scales`]. A method that cannot serve a target says why in
//! [`Method::check_target`] before any work starts.

pub mod awq;
pub mod gptq;
pub mod hqq;
pub mod rtn;
pub mod smoothquant;
#[cfg(test)]
mod tests;

use crate::error::QuantError;
use crate::role::Role;
use crate::stats::InputStats;
use crate::target::Target;
use lowbit_formats::grid::{AffineRow, GroupParams, Levels, RowGrid};
use lowbit_formats::block_format;
use rayon::prelude::*;
use serde::Serialize;

/// What a method needs from calibration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// `Σx²` per input column (an importance matrix).
    pub importance: bool,
    /// `XᵀX`.
    pub hessian: bool,
    /// `Σ|x|` per input column.
    pub mean_abs: bool,
}

impl Needs {
    /// Whether the method cannot work without calibration data.
    pub fn calibration(&self) -> bool {
        self.hessian || self.mean_abs
    }
}

/// One tensor to quantize.
pub struct TensorJob<'a> {
    /// GGUF name (`blk.3.attn_q.weight`).
    pub name: &'a str,
    pub role: Role,
    /// Output channels (GGUF `ne[1]`).
    pub rows: usize,
    /// Input channels (GGUF `ne[0]`): the length of a row.
    pub cols: usize,
    /// Row-major `rows × cols`.
    pub values: &'a [f32],
    pub target: Target,
    /// Statistics of this tensor's input, when calibration collected them.
    pub stats: Option<&'a InputStats>,
}

/// The linears that share one input, for a method that transforms that input (AWQ).
pub struct SiteJob<'a> {
    /// Tensors of the site (e.g. Q, K, V), each with its own target.
    pub tensors: Vec<TensorJob<'a>>,
    pub stats: &'a InputStats,
}

/// Per-input-channel scales `s` for a site: its linears' columns are multiplied by `s` and the
/// op before them (a norm, or the linear that produces the input) divided by it, which leaves
/// the float model unchanged and makes the quantization error smaller.
#[derive(Clone, Debug)]
pub struct SiteScales {
    pub scales: Vec<f32>,
    /// The migration strength chosen (`s = mean|x|^α`).
    pub alpha: f32,
    /// Output error of the site before (α = 0) and after scaling, relative to its output energy.
    pub error_before: f64,
    pub error_after: f64,
}

/// A quantized tensor: block bytes, or affine codes with their group parameters.
#[derive(Clone, Debug)]
pub enum Encoded {
    Blocks(Vec<u8>),
    Affine(AffineTensor),
}

/// An affine-quantized tensor: one code per element, `(scale, zero)` per group.
#[derive(Clone, Debug, PartialEq)]
pub struct AffineTensor {
    pub layout: AffineRow,
    pub rows: usize,
    pub cols: usize,
    /// Row-major, one unpacked code per element.
    pub codes: Vec<u8>,
    /// Row-major `rows × groups_per_row`.
    pub params: Vec<GroupParams>,
}

impl AffineTensor {
    pub fn dequantize(&self) -> Vec<f32> {
        let g = self.layout.group_len(self.cols);
        let levels = Levels::Affine {
            qmax: (1 << self.layout.bits) - 1,
        };
        self.codes
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let (r, j) = (i / self.cols, i % self.cols);
                self.params[r * (self.cols / g) + j / g].value(levels.level(c))
            })
            .collect()
    }
}

/// What a method reports about one tensor beyond its error (`--json` carries it).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct MethodNotes {
    /// Which candidate a method kept when it compares several ("gptq", "rtn", …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen: Option<&'static str>,
    /// GPTQ: damping added to the Hessian, relative to its mean diagonal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damping: Option<f64>,
    /// GPTQ: times the damping was raised because Cholesky failed.
    #[serde(skip_serializing_if = "is_zero")]
    pub damping_retries: u32,
    /// GPTQ: input columns that were always zero.
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub dead_columns: usize,
    /// AWQ: the migration strength of the tensor's input site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f32>,
    /// AWQ: the mean clipping factor chosen per block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<f32>,
    /// HQQ: mean half-quadratic iterations per row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<f32>,
    /// `Σ e·H·eᵀ / Σ w·H·wᵀ`: the output error over the calibration tokens, relative to the
    /// output energy (present when a Hessian was known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_error: Option<f64>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}
fn is_zero_usize(v: &usize) -> bool {
    *v == 0
}

/// A method's result for one tensor.
#[derive(Clone, Debug)]
pub struct QuantOutcome {
    pub encoded: Encoded,
    pub notes: MethodNotes,
}

impl QuantOutcome {
    /// The values the quantized tensor stands for, row-major.
    pub fn dequantize(&self, target: &Target, rows: usize, cols: usize) -> Result<Vec<f32>, QuantError> {
        match (&self.encoded, target) {
            (Encoded::Affine(a), _) => Ok(a.dequantize()),
            (Encoded::Blocks(b), Target::Block(t)) => {
                crate::tensor::dequantize_tensor(b, *t, rows * cols, cols).map_err(|e| {
                    QuantError::Method {
                        tensor: String::new(),
                        message: e.to_string(),
                    }
                })
            }
            (Encoded::Blocks(_), Target::Affine(a)) => Err(QuantError::Method {
                tensor: String::new(),
                message: format!("block bytes for the affine layout {}", a.name()),
            }),
        }
    }
}

/// A quantization method.
pub trait Method: Sync {
    /// The name `--method` takes.
    fn name(&self) -> &'static str;
    /// The calibration statistics it uses.
    fn needs(&self) -> Needs;
    /// Why this method cannot produce `target`, if it cannot.
    fn check_target(&self, _target: &Target) -> Result<(), String> {
        Ok(())
    }
    /// Per-channel scales for the input of a group of linears, to be folded into the op before
    /// them; None leaves the input as it is (every method but AWQ).
    fn site_scales(&self, _site: &SiteJob) -> Result<Option<SiteScales>, QuantError> {
        Ok(None)
    }
    /// Quantizes one tensor.
    fn quantize(&self, job: &TensorJob) -> Result<QuantOutcome, QuantError>;
}

/// Every method `--method` accepts.
pub const METHODS: [&str; 5] = ["rtn", "gptq", "awq", "hqq", "smoothquant"];

/// Tuning shared by the methods (defaults are the papers' unless noted in the method's file).
#[derive(Clone, Debug, Default)]
pub struct MethodOptions {
    pub gptq: gptq::GptqOptions,
    pub awq: awq::AwqOptions,
    pub hqq: hqq::HqqOptions,
    pub smoothquant: smoothquant::SmoothQuantOptions,
}

/// The method called `name`.
pub fn method_by_name(name: &str, opts: &MethodOptions) -> Result<Box<dyn Method>, String> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "rtn" => Box::new(rtn::Rtn),
        "gptq" => Box::new(gptq::Gptq::new(opts.gptq.clone())),
        "awq" => Box::new(awq::Awq(opts.awq.clone())),
        "hqq" => Box::new(hqq::Hqq(opts.hqq.clone())),
        "smoothquant" => Box::new(smoothquant::SmoothQuant(opts.smoothquant.clone())),
        other => {
            return Err(format!(
                "unknown method {other:?}; expected one of: {}",
                METHODS.join(", ")
            ))
        }
    })
}

// ---- helpers the methods share ----

/// Rows per parallel task.
pub(crate) const ROWS_PER_TASK: usize = 16;

/// Elements that share one rounding unit (a block, or an affine group / row).
pub(crate) fn block_len(target: &Target, cols: usize) -> usize {
    match target {
        Target::Block(t) => t.block_elems(),
        Target::Affine(a) => a.group_len(cols),
    }
}

/// Fits the scales of `x` (a whole number of blocks of one row) onto `target`.
pub(crate) fn fit(target: &Target, x: &[f32], importance: Option<&[f32]>) -> Result<RowGrid, String> {
    match target {
        Target::Block(t) => lowbit_formats::grid::fit_row(*t, x, importance),
        Target::Affine(a) => {
            let layout = AffineRow {
                group: Some(a.group_len_or(x.len())),
                ..*a
            };
            lowbit_formats::grid::affine_row(x, &layout, importance)
        }
    }
    .map_err(|e| e.to_string())
}

/// Small extension: an affine layout's group inside a slice of a row.
trait GroupLen {
    fn group_len_or(&self, slice: usize) -> usize;
}

impl GroupLen for AffineRow {
    fn group_len_or(&self, slice: usize) -> usize {
        self.group.unwrap_or(slice)
    }
}

/// Assembles per-row results — each row's codes and the grids of its blocks, in order — into
/// the target's encoding.
pub(crate) fn encode_rows(
    target: &Target,
    rows: usize,
    cols: usize,
    per_row: Vec<(Vec<u8>, Vec<RowGrid>)>,
) -> Result<Encoded, String> {
    match target {
        Target::Block(t) => {
            let rb = t.row_bytes(cols as u64).ok_or("partial block")? as usize;
            let (be, bb) = (t.block_elems(), t.block_bytes());
            let mut bytes = vec![0u8; rows * rb];
            bytes
                .par_chunks_mut(rb)
                .zip(per_row.par_iter())
                .try_for_each(|(dst, (codes, grids))| {
                    let mut off = 0;
                    for g in grids {
                        let n = g.len();
                        let nb = n / be * bb;
                        g.encode(&codes[off..off + n], &mut dst[off / be * bb..off / be * bb + nb])
                            .map_err(|e| e.to_string())?;
                        off += n;
                    }
                    Ok::<(), String>(())
                })?;
            Ok(Encoded::Blocks(bytes))
        }
        Target::Affine(a) => {
            let mut codes = Vec::with_capacity(rows * cols);
            let mut params = Vec::with_capacity(rows * (cols / a.group_len(cols)));
            for (c, grids) in per_row {
                codes.extend_from_slice(&c);
                for g in grids {
                    params.extend_from_slice(&g.params);
                }
            }
            Ok(Encoded::Affine(AffineTensor {
                layout: *a,
                rows,
                cols,
                codes,
                params,
            }))
        }
    }
}

/// The importance to weight block fits by: calibration's mean `x²`, if finite.
pub(crate) fn importance_of(stats: Option<&InputStats>) -> Option<Vec<f32>> {
    let imp = stats?.importance();
    imp.iter().all(|v| v.is_finite() && *v >= 0.0).then_some(imp)
}

/// A method error naming the job's tensor.
pub(crate) fn job_error<'a>(job: &'a TensorJob) -> impl Fn(String) -> QuantError + Copy + 'a {
    move |message| QuantError::Method {
        tensor: job.name.into(),
        message,
    }
}

/// `f` on every row of the job, rows in parallel chunks, results in row order.
pub(crate) fn map_rows<T: Send>(
    job: &TensorJob,
    f: impl Fn(&[f32]) -> Result<T, String> + Sync,
) -> Result<Vec<T>, QuantError> {
    let rows: Vec<Vec<T>> = job
        .values
        .par_chunks(ROWS_PER_TASK * job.cols)
        .map(|chunk| chunk.chunks_exact(job.cols).map(&f).collect::<Result<Vec<T>, String>>())
        .collect::<Result<_, String>>()
        .map_err(job_error(job))?;
    Ok(rows.into_iter().flatten().collect())
}

/// Checks a job's shape and values before a method starts.
pub(crate) fn check_job(job: &TensorJob) -> Result<(), QuantError> {
    if job.values.len() != job.rows * job.cols {
        return Err(QuantError::Method {
            tensor: job.name.into(),
            message: format!("{} values for {}×{}", job.values.len(), job.rows, job.cols),
        });
    }
    if let Some(i) = job.values.iter().position(|v| !v.is_finite()) {
        return Err(QuantError::NonFinite {
            tensor: job.name.into(),
            what: format!("weight {} (row {}, column {})", job.values[i], i / job.cols, i % job.cols),
        });
    }
    if let Some(s) = job.stats {
        if s.cols != job.cols {
            return Err(QuantError::Method {
                tensor: job.name.into(),
                message: format!(
                    "calibration statistics for {} input columns, the tensor has {}",
                    s.cols, job.cols
                ),
            });
        }
        if let Some(i) = s.first_non_finite() {
            return Err(QuantError::NonFinite {
                tensor: job.name.into(),
                what: format!("calibration activations (statistic {i} is not finite)"),
            });
        }
    }
    job.target.check_row(job.cols).map_err(|why| QuantError::Method {
        tensor: job.name.into(),
        message: why,
    })?;
    if let Target::Block(t) = job.target {
        if !block_format(t).is_some_and(|f| f.can_quantize()) {
            return Err(QuantError::Method {
                tensor: job.name.into(),
                message: format!("lowbit reads {t} but cannot quantize to it"),
            });
        }
    }
    Ok(())
}
