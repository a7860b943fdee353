//! `lowbit recipe`: for each budget, every method's budgeted file, measured on held-out
//! calibration windows (KLD, perplexity ratio, top-1) and for speed; the Pareto front of size
//! against KLD; the files, `recipe.json` and `report.html` in one output folder, which appears
//! only when everything succeeded.

use crate::budget::{quantize_to_budget, BudgetSpec, BudgetTarget};
use crate::error::CalibError;
use crate::heldout::Measured;
use crate::quantize_file::{Event, QuantizeSpec};
use lowbit_engine::bench::{time_generation, time_prompt};
use lowbit_engine::Model;
use lowbit_files::GgufFile;
use lowbit_quant::sources::model_file::ModelFile;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A measured file of the recipe.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Point {
    pub file: String,
    pub method: String,
    /// The budget it was made for (its label: `4.5bpw`, `90MiB`).
    pub budget: String,
    pub bytes: u64,
    pub bpw: f64,
    pub kld: f64,
    pub ppl_ratio: f64,
    pub top1: f64,
    pub predicted_kld: f64,
    pub prompt_tps: f64,
    pub gen_tps: f64,
    /// Tensor name → type.
    pub types: Vec<(String, String)>,
    pub pareto: bool,
}

/// A reference point from elsewhere (`--compare`: llama.cpp's presets, measured by the user).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Reference {
    pub name: String,
    pub bytes: u64,
    pub kld: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recipe {
    pub model: String,
    pub calib: String,
    pub elements: u64,
    pub n_layer: usize,
    pub points: Vec<Point>,
    pub references: Vec<Reference>,
    /// For each budget, the file of least KLD.
    pub best: Vec<(String, String)>,
}

/// One budget of the recipe.
#[derive(Clone, Debug)]
pub struct Budget {
    pub label: String,
    pub target: BudgetTarget,
}

/// Reads `--compare`: a JSON array of `{"name", "bytes", "kld"}`.
pub fn read_references(path: &Path) -> Result<Vec<Reference>, CalibError> {
    let bad = |why: String| CalibError::Invalid(format!("--compare {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
    let refs: Vec<Reference> = serde_json::from_str(&text).map_err(|e| {
        bad(format!("expected a JSON array of {{\"name\": …, \"bytes\": …, \"kld\": …}} ({e})"))
    })?;
    for r in &refs {
        if !(r.kld >= 0.0 && r.kld.is_finite()) || r.bytes == 0 {
            return Err(bad(format!("entry {:?}: bytes must be positive and kld a finite number ≥ 0", r.name)));
        }
    }
    Ok(refs)
}

/// Runs the recipe into `out_dir` (created at the end from a sibling temporary folder).
#[allow(clippy::too_many_arguments)]
pub fn run(
    input: &ModelFile,
    model_path: &Path,
    out_dir: &Path,
    budgets: &[Budget],
    methods: &[String],
    base: &QuantizeSpec,
    budget_spec: &dyn Fn(&str, BudgetTarget) -> BudgetSpec,
    references: Vec<Reference>,
    progress: &mut dyn FnMut(&str, Event),
) -> Result<Recipe, CalibError> {
    if out_dir.exists() {
        return Err(CalibError::Invalid(format!(
            "{} exists: give a new folder (the recipe writes its files, recipe.json and report.html there)",
            out_dir.display()
        )));
    }
    let parent = out_dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".lowbit-recipe-")
        .tempdir_in(parent)
        .map_err(|e| CalibError::Invalid(format!("cannot create a folder in {}: {e}", parent.display())))?;
    let elements = input.file.total_elements();
    let float = Model::load(&input.file)?;
    let n_layer = float.config.n_layer;
    drop(float);
    let mut points = Vec::new();
    for b in budgets {
        for m in methods {
            let name = format!("{}-{m}.gguf", b.label);
            let path = tmp.path().join(&name);
            let spec = QuantizeSpec {
                method: m.clone(),
                ..base.clone()
            };
            let bs = budget_spec(m, b.target);
            let (_, report) = quantize_to_budget(input, &path, &spec, &bs, &mut |e| progress(&name, e))?;
            let (pp, tg) = speed(&path)?;
            points.push(point(&name, m, &b.label, elements, report.file_bytes, report.measured, report.predicted_kld, pp, tg, report.choices.iter().map(|c| (c.name.clone(), c.ty.clone())).collect()));
        }
    }
    mark_pareto(&mut points);
    let best = budgets
        .iter()
        .filter_map(|b| {
            points
                .iter()
                .filter(|p| p.budget == b.label)
                .min_by(|a, c| a.kld.total_cmp(&c.kld))
                .map(|p| (b.label.clone(), p.file.clone()))
        })
        .collect();
    let recipe = Recipe {
        model: model_path.display().to_string(),
        calib: base.calib.as_ref().map(|c| c.path.display().to_string()).unwrap_or_default(),
        elements,
        n_layer,
        points,
        references,
        best,
    };
    let write = |name: &str, text: String| -> Result<(), CalibError> {
        std::fs::write(tmp.path().join(name), text).map_err(|e| CalibError::Invalid(format!("cannot write {name}: {e}")))
    };
    write("recipe.json", serde_json::to_string_pretty(&recipe).expect("serialisable"))?;
    write("report.html", crate::report_html::render(&recipe))?;
    let kept: PathBuf = tmp.keep();
    std::fs::rename(&kept, out_dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        CalibError::Invalid(format!("cannot move the recipe into {}: {e}", out_dir.display()))
    })?;
    Ok(recipe)
}

#[allow(clippy::too_many_arguments)]
fn point(
    file: &str,
    method: &str,
    budget: &str,
    elements: u64,
    bytes: u64,
    m: Measured,
    predicted: f64,
    pp: f64,
    tg: f64,
    types: Vec<(String, String)>,
) -> Point {
    Point {
        file: file.into(),
        method: method.into(),
        budget: budget.into(),
        bytes,
        bpw: bytes as f64 * 8.0 / elements.max(1) as f64,
        kld: m.kld,
        ppl_ratio: m.ppl_ratio,
        top1: m.top1,
        predicted_kld: predicted,
        prompt_tps: pp,
        gen_tps: tg,
        types,
        pareto: false,
    }
}

/// Prompt (128 tokens) and generation (16 tokens) throughput, best of two runs.
fn speed(path: &Path) -> Result<(f64, f64), CalibError> {
    let f = GgufFile::open(path)?;
    let m = Model::load(&f)?;
    let mut pp = 0f64;
    let mut tg = 0f64;
    for seed in 0..2 {
        pp = pp.max(128.0 / time_prompt(&m, 128, seed)?);
        tg = tg.max(16.0 / time_generation(&m, 16, seed)?);
    }
    Ok((pp, tg))
}

/// Marks the points no other point of the same method beats on both size and KLD.
pub fn mark_pareto(points: &mut [Point]) {
    let snapshot = points.to_vec();
    for p in points.iter_mut() {
        p.pareto = !snapshot.iter().any(|q| {
            q.method == p.method
                && q.bytes <= p.bytes
                && q.kld <= p.kld
                && (q.bytes < p.bytes || q.kld < p.kld)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(method: &str, bytes: u64, kld: f64) -> Point {
        Point {
            file: format!("{method}-{bytes}"),
            method: method.into(),
            budget: String::new(),
            bytes,
            bpw: 0.0,
            kld,
            ppl_ratio: 1.0,
            top1: 1.0,
            predicted_kld: kld,
            prompt_tps: 0.0,
            gen_tps: 0.0,
            types: Vec::new(),
            pareto: false,
        }
    }

    #[test]
    fn the_pareto_front_is_per_method() {
        let mut v = vec![p("rtn", 100, 0.3), p("rtn", 120, 0.35), p("rtn", 140, 0.1), p("gptq", 120, 0.2)];
        mark_pareto(&mut v);
        assert_eq!(v.iter().map(|x| x.pareto).collect::<Vec<_>>(), [true, false, true, true]);
    }

    #[test]
    fn malformed_references_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.json");
        std::fs::write(&f, "{\"name\": 1}").unwrap();
        let e = read_references(&f).unwrap_err().to_string();
        assert!(e.contains("r.json") && e.contains("JSON array"), "{e}");
        std::fs::write(&f, r#"[{"name": "Q4_K_M", "bytes": 100, "kld": -1}]"#).unwrap();
        assert!(read_references(&f).unwrap_err().to_string().contains("Q4_K_M"));
        std::fs::write(&f, r#"[{"name": "Q4_K_M", "bytes": 100, "kld": 0.03}]"#).unwrap();
        assert_eq!(read_references(&f).unwrap().len(), 1);
    }
}
