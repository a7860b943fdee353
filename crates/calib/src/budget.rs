//! `lowbit quantize IN OUT --target-size 90MiB | --target-bpw 4.5 | --target-kld 0.05 |
//! --target-ppl-increase 1%`: the best file for a size, or the smallest for a quality.
//!
//! 1. The sensitivity table (cached next to the model) predicts each tensor's KLD at each type.
//! 2. A size target: the exact knapsack over the table within the budget minus the bytes the
//!    file spends on its header and on the tensors that are never quantized (norms) — the whole
//!    file counts, so it never exceeds the budget.
//! 3. Verification: the written file is measured on the held-out calibration windows, and the
//!    tensors predicted to cost most are checked in context (each one put back to float in the
//!    quantized model: what removing its error actually saves). Their predictions are corrected
//!    by what was measured, the allocation solved again, and when it changes the repaired file
//!    is built and measured too; the better of the two is kept.
//! 4. A quality target: the smallest budget whose prediction meets it, then built and measured;
//!    while the measurement misses, the budget grows. The file is the smallest that was
//!    *measured* to meet the target.

use crate::error::CalibError;
use crate::heldout::{HeldOut, Measured};
use crate::quantize_file::{quantize_file, Event, QuantizeResult, QuantizeSpec};
use crate::sensitivity::{self, SensitivitySpec, SensitivityTable};
use crate::windows::CalibWindows;
use lowbit_engine::model::{LinearId, Model};
use lowbit_engine::tensor::Matrix;
use lowbit_engine::tokenizer::Tokenizer;
use lowbit_files::gguf::{planned_size, GgufFile, TensorSpec};
use lowbit_formats::GgmlType;
use lowbit_quant::allocate::{allocate, min_bytes, AllocError, Allocation, Choice, TensorCosts};
use lowbit_quant::sources::model_file::ModelFile;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BudgetTarget {
    /// The whole file, header included.
    Bytes(u64),
    /// File bits per weight (the whole file's bytes × 8 / weights).
    Bpw(f64),
    /// Mean KLD on the held-out calibration windows.
    Kld(f64),
    /// Perplexity increase on the held-out windows, as a fraction (0.01 = 1 %).
    PplIncrease(f64),
}

/// Parses `90MiB`, `1.5GiB`, `800KiB`, `91726912` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mul) = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("GB", 1_000_000_000), ("MB", 1_000_000), ("kB", 1000), ("B", 1)]
        .iter()
        .find_map(|(suf, m)| t.strip_suffix(suf).map(|n| (n.trim(), *m)))
        .unwrap_or((t, 1));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (bytes, or a number with KiB, MiB, GiB, kB, MB, GB)"))?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("{s:?}: a size must be positive"));
    }
    Ok((v * mul as f64) as u64)
}

#[derive(Clone, Debug)]
pub struct BudgetSpec {
    pub target: BudgetTarget,
    pub sensitivity: SensitivitySpec,
    /// Where the table is cached (default: next to the model).
    pub table_path: PathBuf,
    /// Recompute the table even when a cache exists.
    pub recompute: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct TableSummary {
    pub path: String,
    pub cached: bool,
    pub seconds: f64,
    pub rank_correlation: f64,
    pub validation: sensitivity::Validation,
}

#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub budget: u64,
    pub file_bytes: u64,
    pub predicted_kld: f64,
    pub measured: Measured,
    pub repaired: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct BudgetReport {
    pub target: String,
    pub budget_bytes: u64,
    pub file_bytes: u64,
    /// file / budget.
    pub used: f64,
    pub predicted_kld: f64,
    pub measured: Measured,
    /// Held-out windows the measurements used.
    pub held_out: usize,
    pub table: TableSummary,
    /// Tensors whose prediction the verification corrected: (name, measured ÷ predicted).
    pub corrections: Vec<(String, f64)>,
    pub attempts: Vec<Attempt>,
    pub choices: Vec<Choice>,
}

/// Tensors checked in context by the verification pass.
const REPAIR_TENSORS: usize = 6;

/// Loads the cached table or computes (and caches) it.
pub fn table(
    file: &GgufFile,
    b: &BudgetSpec,
    progress: &mut dyn FnMut(Event),
) -> Result<(SensitivityTable, bool), CalibError> {
    if !b.recompute {
        if let Some(t) = sensitivity::load_cached(&b.table_path, file, &b.sensitivity)? {
            return Ok((t, true));
        }
    }
    let t = sensitivity::compute(file, &b.sensitivity, &mut |done, total, _| {
        progress(Event::Sensitivity { done, total })
    })?;
    let json = serde_json::to_string_pretty(&t).expect("serialisable");
    let tmp = b.table_path.with_extension("json.part");
    std::fs::write(&tmp, json)
        .and_then(|_| std::fs::rename(&tmp, &b.table_path))
        .map_err(|e| CalibError::Invalid(format!("cannot write the sensitivity table {}: {e}", b.table_path.display())))?;
    Ok((t, false))
}

/// Quantizes `input` to meet `b.target`.
pub fn quantize_to_budget(
    input: &ModelFile,
    output: &Path,
    spec: &QuantizeSpec,
    b: &BudgetSpec,
    progress: &mut dyn FnMut(Event),
) -> Result<(QuantizeResult, BudgetReport), CalibError> {
    let file = &input.file;
    let (table, cached) = table(file, b, progress)?;
    let float = Model::load(file)?;
    let tok = Tokenizer::from_gguf(file)?;
    let s = &b.sensitivity;
    let all = CalibWindows::from_file(&s.calib.path, &tok, s.calib.ctx, Some(table.windows + table.held_out))?;
    let held = HeldOut::new(&float, all.windows[table.windows.min(all.len())..].to_vec())?;
    let fixed = fixed_bytes(file, &table)?;
    let elements = file.total_elements();
    let max_tensors: u64 = table
        .tensors
        .iter()
        .map(|t| t.options.iter().map(|o| o.bytes).max().unwrap_or(0))
        .sum();
    let min_file = fixed + min_bytes(&table.tensors);
    let max_file = fixed + max_tensors;
    let original = file.file_size();

    let build = |budget: u64, tensors: &[TensorCosts], path: &Path, progress: &mut dyn FnMut(Event)| -> Result<(QuantizeResult, Allocation, Measured, u64), CalibError> {
        let alloc = allocate(tensors, budget.saturating_sub(fixed)).map_err(|e| alloc_error(e, fixed))?;
        let types: BTreeMap<String, GgmlType> = alloc
            .choices
            .iter()
            .map(|c| (c.name.clone(), GgmlType::from_name(&c.ty).expect("table types are GGUF types")))
            .collect();
        let sp = QuantizeSpec {
            types: Some(types),
            ..spec.clone()
        };
        let r = quantize_file(input, path, &sp, progress)?;
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if bytes > budget {
            let _ = std::fs::remove_file(path);
            return Err(CalibError::Invalid(format!(
                "internal: the file came out at {bytes} bytes, over its budget of {budget}"
            )));
        }
        let f = GgufFile::open(path)?;
        let m = held.measure(&Model::load(&f)?)?;
        Ok((r, alloc, m, bytes))
    };

    let table_summary = TableSummary {
        path: b.table_path.display().to_string(),
        cached,
        seconds: table.seconds,
        rank_correlation: table.rank_correlation,
        validation: table.validation.clone(),
    };
    let mut attempts = Vec::new();
    let size_budget = |bytes: u64| -> Result<u64, CalibError> {
        if bytes < min_file {
            return Err(CalibError::Invalid(format!(
                "a budget of {bytes} bytes is below the smallest file the runnable types make: {min_file} bytes ({:.3} bpw)",
                min_file as f64 * 8.0 / elements as f64
            )));
        }
        if bytes > original.max(max_file) {
            return Err(CalibError::Invalid(format!(
                "a budget of {bytes} bytes is above the original model ({original} bytes): nothing to quantize (at most {} bytes is useful, every tensor at Q8_0)",
                max_file.min(original)
            )));
        }
        Ok(bytes)
    };
    let (result, alloc, measured, bytes, budget, corrections) = match b.target {
        BudgetTarget::Bytes(_) | BudgetTarget::Bpw(_) => {
            let budget = size_budget(match b.target {
                BudgetTarget::Bytes(x) => x,
                BudgetTarget::Bpw(bpw) => (bpw * elements as f64 / 8.0) as u64,
                _ => unreachable!(),
            })?;
            let (r, a, m, bytes) = build(budget, &table.tensors, output, progress)?;
            attempts.push(Attempt { budget, file_bytes: bytes, predicted_kld: a.predicted_loss, measured: m, repaired: false });
            // Verification: the worst tensors in context, then the allocation solved again.
            let (corrected, corrections) = repair(&float, output, &table, &a, &held, m)?;
            let realloc = allocate(&corrected, budget - fixed).map_err(|e| alloc_error(e, fixed))?;
            let changed = realloc.choices.iter().zip(&a.choices).any(|(x, y)| x.ty != y.ty);
            if changed {
                let tmp = output.with_extension("repair.gguf");
                let (r2, a2, m2, bytes2) = build(budget, &corrected, &tmp, progress)?;
                attempts.push(Attempt { budget, file_bytes: bytes2, predicted_kld: a2.predicted_loss, measured: m2, repaired: true });
                if m2.kld < m.kld {
                    std::fs::rename(&tmp, output).map_err(|e| CalibError::Invalid(format!("cannot move {} into place: {e}", tmp.display())))?;
                    (r2, a2, m2, bytes2, budget, corrections)
                } else {
                    let _ = std::fs::remove_file(&tmp);
                    (r, a, m, bytes, budget, corrections)
                }
            } else {
                (r, a, m, bytes, budget, corrections)
            }
        }
        BudgetTarget::Kld(_) | BudgetTarget::PplIncrease(_) => {
            let meets = |m: &Measured| match b.target {
                BudgetTarget::Kld(x) => m.kld <= x,
                BudgetTarget::PplIncrease(p) => m.ppl_ratio <= 1.0 + p,
                _ => unreachable!(),
            };
            // The prediction is a KLD; a perplexity target is approached through ln(1 + p).
            let goal = match b.target {
                BudgetTarget::Kld(x) => x,
                BudgetTarget::PplIncrease(p) => (1.0 + p).ln(),
                _ => unreachable!(),
            };
            let predicted_at = |budget: u64| allocate(&table.tensors, budget - fixed).map(|a| a.predicted_loss).unwrap_or(f64::INFINITY);
            let (mut lo, mut hi) = (min_file, max_file);
            if predicted_at(hi) > goal * 4.0 {
                return Err(CalibError::Invalid(format!(
                    "no file meets the target: even every tensor at its largest type ({max_file} bytes) is predicted at KLD {:.4}",
                    predicted_at(hi)
                )));
            }
            while hi - lo > (max_file - min_file) / 200 + 1 {
                let mid = lo + (hi - lo) / 2;
                if predicted_at(mid) <= goal {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            let mut budget = hi;
            let mut best: Option<(QuantizeResult, Allocation, Measured, u64, u64)> = None;
            for _ in 0..5 {
                let tmp = output.with_extension("try.gguf");
                let (r, a, m, bytes) = build(budget, &table.tensors, &tmp, progress)?;
                attempts.push(Attempt { budget, file_bytes: bytes, predicted_kld: a.predicted_loss, measured: m, repaired: false });
                if meets(&m) {
                    std::fs::rename(&tmp, output).map_err(|e| CalibError::Invalid(format!("cannot move {} into place: {e}", tmp.display())))?;
                    best = Some((r, a, m, bytes, budget));
                    break;
                }
                let _ = std::fs::remove_file(&tmp);
                if budget >= max_file {
                    break;
                }
                budget = (budget + (max_file - budget) / 3 + 1).min(max_file);
            }
            let Some((r, a, m, bytes, budget)) = best else {
                let closest = attempts.iter().min_by(|x, y| x.measured.kld.total_cmp(&y.measured.kld)).expect("attempted");
                return Err(CalibError::Invalid(format!(
                    "no file meets the target: the closest measured was KLD {:.4} (PPL ×{:.4}) at {} bytes",
                    closest.measured.kld, closest.measured.ppl_ratio, closest.file_bytes
                )));
            };
            (r, a, m, bytes, budget, Vec::new())
        }
    };
    let report = BudgetReport {
        target: format!("{:?}", b.target),
        budget_bytes: budget,
        file_bytes: bytes,
        used: bytes as f64 / budget as f64,
        predicted_kld: alloc.predicted_loss,
        measured,
        held_out: held.windows.len(),
        table: table_summary,
        corrections,
        attempts,
        choices: alloc.choices,
    };
    Ok((result, report))
}

fn alloc_error(e: AllocError, fixed: u64) -> CalibError {
    match e {
        AllocError::TooSmall { budget, min } => CalibError::Invalid(format!(
            "a budget of {} bytes is below the smallest file the runnable types make: {} bytes",
            budget + fixed,
            min + fixed
        )),
        e => CalibError::Invalid(e.to_string()),
    }
}

/// Bytes of the file outside the table's tensors: header and the tensors never quantized.
fn fixed_bytes(file: &GgufFile, table: &SensitivityTable) -> Result<u64, CalibError> {
    let in_table: BTreeMap<&str, &TensorCosts> = table.tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut table_bytes = 0;
    let specs = file
        .tensors()
        .iter()
        .map(|t| match in_table.get(t.name.as_str()) {
            Some(c) => {
                let o = &c.options[0];
                table_bytes += o.bytes;
                TensorSpec::new(t.name.clone(), &t.dims, GgmlType::from_name(&o.ty).expect("GGUF type"))
            }
            // Kept tensors are written as F32 (norms) or their source type.
            None => TensorSpec::new(t.name.clone(), &t.dims, if t.ty.block_elems() > 1 { GgmlType::F32 } else { t.ty }),
        })
        .collect();
    // Room for the provenance keys quantize adds to the metadata.
    const PROVENANCE: u64 = 4096;
    Ok(planned_size(file.metadata(), specs)? - table_bytes + PROVENANCE)
}

/// The verification pass: the tensors predicted to cost most, each put back to float in the
/// quantized model to see what its error actually costs there; returns the table with those
/// tensors' predictions scaled by measured ÷ predicted (clamped to ×¼…×4).
fn repair(
    float: &Model,
    quantized: &Path,
    table: &SensitivityTable,
    alloc: &Allocation,
    held: &HeldOut,
    measured: Measured,
) -> Result<(Vec<TensorCosts>, Vec<(String, f64)>), CalibError> {
    let qf = GgufFile::open(quantized)?;
    let mut model = Model::load(&qf)?;
    let mut worst: Vec<&Choice> = alloc.choices.iter().collect();
    worst.sort_by(|a, b| b.loss.total_cmp(&a.loss));
    let mut corrections = Vec::new();
    for c in worst.into_iter().take(REPAIR_TENSORS) {
        let Some(f32m) = float_matrix(float, &c.name) else { continue };
        let (layer, id) = match lowbit_quant::role::layer_of(&c.name) {
            Some(l) => (l, LinearId::ALL.into_iter().find(|id| id.tensor_name(l) == c.name)),
            None => (0, None),
        };
        let old = match id {
            Some(id) => model.swap_linear(layer, id, f32m)?,
            None => model.swap_output(f32m)?,
        };
        let without = held.measure(&model)?;
        match id {
            Some(id) => model.swap_linear(layer, id, old)?,
            None => model.swap_output(old)?,
        };
        let contribution = (measured.kld - without.kld).max(0.0);
        if c.loss > 0.0 {
            corrections.push((c.name.clone(), (contribution / c.loss).clamp(0.25, 4.0)));
        }
    }
    let mut t = table.tensors.clone();
    for (name, k) in &corrections {
        if let Some(x) = t.iter_mut().find(|x| &x.name == name) {
            x.options.iter_mut().for_each(|o| o.loss *= k);
        }
    }
    Ok((t, corrections))
}

/// The float values of a tensor of `model` as an owned F32 matrix.
fn float_matrix(model: &Model, name: &str) -> Option<Matrix<'static>> {
    let m = match lowbit_quant::role::layer_of(name) {
        Some(l) => {
            let id = LinearId::ALL.into_iter().find(|id| id.tensor_name(l) == name)?;
            model.weights.layers[l].linear(id)
        }
        None => model.weights.output(),
    };
    let bytes = m.to_f32().iter().flat_map(|x| x.to_le_bytes()).collect();
    Matrix::owned(GgmlType::F32, m.rows, m.cols, bytes)
}
