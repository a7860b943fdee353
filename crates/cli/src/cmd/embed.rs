//! `lowbit embed --model DIR --file TEXT`: sentence embeddings with a BERT encoder
//! (all-MiniLM-L6-v2 and its kind), or — with `--compare` / `--quantize` — how far a second model's
//! embeddings are from the first one's.

use crate::output::{human_bytes, print_json};
use crate::progress;
use anyhow::{bail, Context, Result};
use lowbit_calib::act_quant::{calibrate_encoder_static, ActScheme, DynamicInt8};
use lowbit_calib::inmemory::{AffineRtnQuantizer, RtnQuantizer};
use lowbit_calib::observers::{Granularity, ObserverKind};
use lowbit_formats::grid::AffineRow;
use lowbit_engine::bert::{cosine, SentenceEncoder};
use lowbit_engine::tensor::WeightQuantizer;
use lowbit_files::HfModel;
use lowbit_formats::GgmlType;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Hugging Face folder of a BERT sentence encoder (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Text file: one sentence per non-empty line.
    #[arg(long)]
    file: PathBuf,
    /// A second model folder to compare with (mean and minimum cosine over all lines).
    #[arg(long, conflicts_with = "quantize")]
    compare: Option<PathBuf>,
    /// Compare with the same model, its 2-D weights quantized in memory to this GGUF type
    /// (e.g. Q8_0; rows that do not split into its blocks use a 32-element fallback), or
    /// `w8a8` (int8 weights per channel + static int8 activations from --calib) /
    /// `w8a8-dynamic` (int8 activations per token).
    #[arg(long)]
    quantize: Option<String>,
    /// `w8a8`: calibration sentences, one per non-empty line (never the file being compared).
    #[arg(long)]
    calib: Option<PathBuf>,
    /// `w8a8`: at most this many calibration sentences.
    #[arg(long, default_value_t = 512)]
    calib_lines: usize,
    /// `w8a8`: how each site's static range is chosen (minmax, ema, percentile[:P], mse, entropy).
    #[arg(long, default_value = "minmax")]
    observer: String,
    /// `w8a8`: asymmetric activation ranges (a zero point) instead of symmetric.
    #[arg(long)]
    act_asym: bool,
    /// W8A8: round activations and multiply in f32 (fake quantization) instead of the int8 ×
    /// int8 products — the same values up to float summation order, slower; to compare.
    #[arg(long)]
    fake_quant: bool,
    /// Sentences per forward pass.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn open(dir: &PathBuf) -> Result<HfModel> {
    HfModel::open(dir).with_context(|| format!("cannot open model folder {}", dir.display()))
}

fn load<'a>(
    hf: &'a HfModel,
    quant: Option<&'a dyn WeightQuantizer>,
) -> Result<SentenceEncoder<'a>> {
    SentenceEncoder::load(hf, quant).with_context(|| {
        format!(
            "cannot load {} as a BERT sentence encoder",
            hf.dir().display()
        )
    })
}

/// Embeds `lines` batch by batch, adding the time spent in the model to `spent`.
fn embed_batch(
    enc: &SentenceEncoder,
    lines: &[&str],
    spent: &mut Duration,
) -> Result<Vec<Vec<f32>>> {
    let t = Instant::now();
    let out = enc.embed(lines)?;
    *spent += t.elapsed();
    Ok(out)
}

/// What `--quantize` asked for.
enum Quantize {
    Blocks(RtnQuantizer),
    W8a8 { weights: AffineRtnQuantizer, acts: ActScheme },
}

impl Quantize {
    fn parse(name: &str, observer: &str, asym: bool) -> Result<Quantize> {
        let weights = AffineRtnQuantizer(AffineRow { bits: 8, symmetric: true, group: None });
        Ok(match name.to_ascii_lowercase().as_str() {
            "w8a8" => Quantize::W8a8 {
                weights,
                acts: ActScheme::Static {
                    observer: ObserverKind::parse(observer).map_err(|e| anyhow::anyhow!("--observer: {e}"))?,
                    granularity: Granularity::Tensor,
                    symmetric: !asym,
                },
            },
            "w8a8-dynamic" => Quantize::W8a8 { weights, acts: ActScheme::Dynamic },
            _ => Quantize::Blocks(RtnQuantizer(GgmlType::from_name(name).with_context(|| {
                format!("--quantize {name:?}: not a GGUF type name, w8a8 or w8a8-dynamic")
            })?)),
        })
    }

    fn weights(&self) -> &dyn WeightQuantizer {
        match self {
            Quantize::Blocks(q) => q,
            Quantize::W8a8 { weights, .. } => weights,
        }
    }

    fn name(&self) -> String {
        match self {
            Quantize::Blocks(q) => q.0.name().to_string(),
            Quantize::W8a8 { acts: ActScheme::Dynamic, .. } => "w8a8-dynamic (int8 weights per channel, int8 activations per token)".into(),
            Quantize::W8a8 { acts: ActScheme::Static { observer, symmetric, .. }, .. } => format!(
                "w8a8 (int8 weights per channel, static int8 activations, {}, {})",
                observer.name(),
                if *symmetric { "symmetric" } else { "asymmetric" }
            ),
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let quant = args.quantize.as_deref().map(|n| Quantize::parse(n, &args.observer, args.act_asym)).transpose()?;
    if let (Some(Quantize::W8a8 { acts: ActScheme::Static { observer, .. }, .. }), None) = (&quant, &args.calib) {
        bail!(
            "--quantize w8a8 fixes activation ranges from calibration (observer {}): give --calib FILE (sentences, one per line), or use w8a8-dynamic",
            observer.name()
        );
    }
    if let Some(c) = &args.calib {
        if lowbit_files::same_file(c, &args.file) {
            bail!("--calib {} is the text being compared: calibrate on other sentences", c.display());
        }
    }
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        bail!("{} has no non-empty line", args.file.display());
    }

    let hf = open(&args.model)?;
    let base = load(&hf, None)?;
    let other_hf = args.compare.as_ref().map(open).transpose()?;
    let other = match (&other_hf, &quant) {
        (Some(o), _) => Some((load(o, None)?, o.dir().display().to_string())),
        (None, Some(q)) => {
            let mut enc = load(&hf, Some(q.weights()))?;
            if args.fake_quant {
                enc.weights.drop_int8();
            }
            if let Quantize::W8a8 { acts, .. } = q {
                enc.weights.input_quant = Some(match *acts {
                    ActScheme::Dynamic => std::sync::Arc::new(DynamicInt8),
                    ActScheme::Static { observer, granularity, symmetric } => {
                        let path = args.calib.as_ref().expect("checked above");
                        let text = std::fs::read_to_string(path)
                            .with_context(|| format!("cannot read {}", path.display()))?;
                        let calib: Vec<&str> = text
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                            .take(args.calib_lines)
                            .collect();
                        let (q, _) = calibrate_encoder_static(&enc, &calib, args.batch as usize, observer, granularity, symmetric)
                            .with_context(|| format!("cannot calibrate on {}", path.display()))?;
                        std::sync::Arc::new(q)
                    }
                });
            }
            Some((enc, format!("{} quantized to {}", args.model.display(), q.name())))
        }
        (None, None) => None,
    };
    if let Some((o, _)) = &other {
        if o.dim() != base.dim() {
            bail!(
                "the models' embeddings differ in size ({} vs {})",
                base.dim(),
                o.dim()
            );
        }
    }

    let bar = progress::bar(lines.len() as u64, args.json, "embed");
    let (mut t_base, mut t_other) = (Duration::ZERO, Duration::ZERO);
    let mut embeddings = Vec::new();
    let mut cosines = Vec::new();
    for chunk in lines.chunks(args.batch as usize) {
        let a = embed_batch(&base, chunk, &mut t_base)?;
        match &other {
            Some((o, _)) => {
                let b = embed_batch(o, chunk, &mut t_other)?;
                cosines.extend(a.iter().zip(&b).map(|(x, y)| cosine(x, y)));
            }
            None => embeddings.extend(a),
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();

    let n = lines.len();
    let rate = |d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let tokens: usize = lines.iter().map(|l| base.tokenize(l).len()).sum();
    let Some((o, other_name)) = &other else {
        if args.json {
            return print_json(&json!({
                "model": args.model.display().to_string(),
                "dim": base.dim(),
                "sentences": n,
                "tokens": tokens,
                "sentences_per_s": rate(t_base),
                "embeddings": embeddings,
            }));
        }
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for e in &embeddings {
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        eprintln!(
            "{n} sentences ({tokens} tokens), {:.1} sentences/s",
            rate(t_base)
        );
        return Ok(());
    };

    let mean = cosines.iter().sum::<f64>() / n as f64;
    let (worst, min) =
        cosines
            .iter()
            .copied()
            .enumerate()
            .fold(
                (0, f64::INFINITY),
                |acc, (i, c)| if c < acc.1 { (i, c) } else { acc },
            );
    let mut types: Vec<String> = o
        .weights
        .types
        .iter()
        .map(|(_, t)| t.name().to_string())
        .collect();
    types.sort();
    types.dedup();
    if args.json {
        return print_json(&json!({
            "model": args.model.display().to_string(),
            "other": other_name,
            "other_weight_types": types,
            "model_weight_bytes": base.weights.matrix_bytes(),
            "other_weight_bytes": o.weights.matrix_bytes(),
            "sentences": n,
            "tokens": tokens,
            "mean_cosine": mean,
            "min_cosine": min,
            "min_line": lines[worst],
            "model_sentences_per_s": rate(t_base),
            "other_sentences_per_s": rate(t_other),
        }));
    }
    println!("{n} sentences ({tokens} tokens)");
    println!(
        "  model  {}: {} of weights, {:.1} sentences/s",
        args.model.display(),
        human_bytes(base.weights.matrix_bytes() as u64),
        rate(t_base)
    );
    println!(
        "  other  {other_name} ({}): {} of weights, {:.1} sentences/s",
        types.join(", "),
        human_bytes(o.weights.matrix_bytes() as u64),
        rate(t_other)
    );
    println!(
        "mean cosine {mean:.6}, min cosine {min:.6} ({:?})",
        lines[worst]
    );
    Ok(())
}
