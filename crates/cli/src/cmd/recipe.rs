//! `lowbit recipe --model M --calib TEXT --budgets 4.5,5 -o out_dir/`: every method's budgeted
//! file per budget, measured, with the Pareto front, `recipe.json` and a self-contained
//! `report.html` (the work is `lowbit_calib::recipe`).

use super::calib_args::{CalibArgs, MethodArgs};
use crate::output::print_json;
use crate::progress;
use anyhow::{bail, Context, Result};
use lowbit_calib::budget::{BudgetSpec, BudgetTarget};
use lowbit_calib::quantize_file::{CalibSpec, Event, QuantizeSpec};
use lowbit_calib::recipe::{read_references, run, Budget};
use lowbit_calib::sensitivity::{cache_path, SensitivitySpec};
use lowbit_quant::sources::model_file::ModelFile;
use lowbit_quant::{PlanOptions, Preset};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The model: a GGUF file or a Hugging Face folder.
    #[arg(long)]
    model: PathBuf,
    /// Output folder (must not exist; it appears only when the whole recipe succeeded).
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// Budgets in file bits per weight, comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "sizes")]
    budgets: Vec<f64>,
    /// Budgets as file sizes (bytes or with KiB/MiB/GiB), comma-separated.
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<String>,
    /// Methods to search, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "rtn,gptq")]
    methods: Vec<String>,
    /// Reference points for the plot (e.g. llama.cpp's presets): a JSON array of
    /// {"name", "bytes", "kld"}. Their KLD is plotted as given: say in the name what measured it
    /// (the recipe's own points are measured on the held-out calibration windows).
    #[arg(long)]
    compare: Option<PathBuf>,
    #[command(flatten)]
    method: MethodArgs,
    #[command(flatten)]
    calib: CalibArgs,
    /// Calibration windows for the sensitivity statistics.
    #[arg(long, default_value_t = 32)]
    sensitivity_windows: usize,
    /// Windows after them held out to measure every file.
    #[arg(long, default_value_t = 2)]
    held_out: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print recipe.json's content.
    #[arg(long)]
    json: bool,
}

pub fn run_cmd(args: Args) -> Result<()> {
    let calib = args
        .calib
        .calib
        .clone()
        .context("the recipe needs calibration text: give --calib FILE")?;
    let mut budgets: Vec<Budget> = args
        .budgets
        .iter()
        .map(|&b| {
            anyhow::ensure!(b > 0.0 && b.is_finite(), "--budgets: {b} is not a positive bpw");
            Ok(Budget {
                label: format!("{b}bpw"),
                target: BudgetTarget::Bpw(b),
            })
        })
        .collect::<Result<_>>()?;
    for s in &args.sizes {
        budgets.push(Budget {
            label: s.replace(' ', ""),
            target: BudgetTarget::Bytes(lowbit_calib::budget::parse_size(s).map_err(|e| anyhow::anyhow!("--sizes {e}"))?),
        });
    }
    if budgets.is_empty() {
        bail!("give the budgets: --budgets 4.5,5 (bits per weight) or --sizes 80MiB,90MiB");
    }
    for m in &args.methods {
        lowbit_quant::methods::method_by_name(m, &args.method.options()).map_err(anyhow::Error::msg)?;
    }
    let references = match &args.compare {
        Some(p) => read_references(p)?,
        None => Vec::new(),
    };
    let threads = super::model_file::threads(args.threads)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start worker threads")?;
    let input = ModelFile::open(&args.model)?;
    let base = QuantizeSpec {
        plan: PlanOptions {
            preset: Preset::parse("Q8_0").expect("a type"),
            pure: false,
            overrides: Vec::new(),
        },
        method: args.method.method.clone(),
        method_options: args.method.options(),
        calib: args.calib.spec(),
        imatrix: None,
        sequential: args.calib.sequential(),
        types: None,
    };
    let ctx = args.calib.calib_ctx as usize;
    let budget_spec = |method: &str, target: BudgetTarget| {
        let table_method = if method == "awq" { "rtn" } else { method };
        BudgetSpec {
            target,
            sensitivity: SensitivitySpec {
                method: table_method.to_string(),
                method_options: args.method.options(),
                calib: CalibSpec {
                    path: calib.clone(),
                    chunks: Some(args.sensitivity_windows),
                    ctx,
                },
                held_out: args.held_out.max(1),
            },
            table_path: cache_path(&args.model, table_method),
            recompute: false,
        }
    };
    let bar = progress::bar(0, args.json, "recipe");
    let recipe = pool.install(|| {
        run(
            &input,
            &args.model,
            &args.output,
            &budgets,
            &args.methods,
            &base,
            &budget_spec,
            references,
            &mut |file, e| match e {
                Event::Sensitivity { done, total } => {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                    bar.set_message("sensitivity table");
                }
                Event::Calibrate { layer, n_layer, .. } => {
                    bar.set_length(n_layer as u64);
                    bar.set_position(layer as u64);
                    bar.set_message(format!("{file}: calibrating"));
                }
                Event::Imatrix { done, total } => {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                    bar.set_message(format!("{file}: importance matrix"));
                }
                Event::Tensor { index, total, .. } => {
                    bar.set_length(total as u64);
                    bar.set_position(index as u64);
                    bar.set_message(format!("{file}: writing"));
                }
            },
        )
    });
    bar.finish_and_clear();
    let recipe = recipe.with_context(|| format!("cannot make the recipe for {}", args.model.display()))?;
    if args.json {
        return print_json(&recipe);
    }
    println!("{}: {} files, recipe.json, report.html", args.output.display(), recipe.points.len());
    println!(
        "  {:<22} {:<6} {:>10} {:>7} {:>8} {:>9} {:>8} {:>7} {:>7}",
        "file", "method", "MB", "bpw", "KLD", "PPL ×", "top-1 %", "tg t/s", "Pareto"
    );
    for p in &recipe.points {
        println!(
            "  {:<22} {:<6} {:>10.2} {:>7.3} {:>8.4} {:>9.4} {:>8.1} {:>7.0} {:>7}",
            p.file,
            p.method,
            p.bytes as f64 / 1e6,
            p.bpw,
            p.kld,
            p.ppl_ratio,
            100.0 * p.top1,
            p.gen_tps,
            if p.pareto { "yes" } else { "" }
        );
    }
    Ok(())
}
