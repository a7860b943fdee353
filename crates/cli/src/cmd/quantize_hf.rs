//! `lowbit quantize IN out_dir/ --scheme S [--method M] [--calib TEXT]`: a compressed-tensors
//! folder. Parses the options, shows progress, prints the report; the work is
//! `lowbit_calib::hf_checkpoint`.

use super::calib_args::{CalibArgs, MethodArgs};
use crate::output::{human_bytes, print_json};
use crate::progress;
use anyhow::{Context, Result};
use lowbit_calib::hf_checkpoint::{quantize_to_hf, HfCheckpointSpec, HfEvent};
use lowbit_calib::observers::ObserverKind;
use lowbit_calib::sequential::DriverEvent;
use lowbit_convert::compressed_tensors::CtScheme;
use lowbit_quant::sources::model_file::ModelFile;
use std::path::Path;

pub struct HfArgs<'a> {
    pub input: &'a Path,
    pub output: &'a Path,
    pub scheme: &'a str,
    pub observer: &'a str,
    pub smoothquant: Option<f32>,
    pub method: &'a MethodArgs,
    pub calib: &'a CalibArgs,
    pub threads: Option<usize>,
    pub json: bool,
}

pub fn run(a: HfArgs<'_>) -> Result<()> {
    let scheme = CtScheme::parse(a.scheme).map_err(|e| anyhow::anyhow!("--scheme: {e}"))?;
    let observer = ObserverKind::parse(a.observer).map_err(|e| anyhow::anyhow!("--observer: {e}"))?;
    let spec = HfCheckpointSpec {
        scheme,
        method: a.method.method.clone(),
        method_options: a.method.options(),
        calib: a.calib.spec(),
        sequential: a.calib.sequential(),
        smoothquant: a.smoothquant,
        observer,
    };
    let threads = super::model_file::threads(a.threads)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start worker threads")?;
    let input = ModelFile::open(a.input)?;
    let bar = progress::bar(0, a.json, "quantize");
    let mut on_event = |e: HfEvent| match e {
        HfEvent::Weights(DriverEvent::Layer { layer, n_layer, stage }) => {
            bar.set_length(n_layer as u64);
            bar.set_position(layer as u64);
            bar.set_message(format!("layer {layer} ({stage})"));
        }
        HfEvent::Observe { done, total } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message("observing activations");
        }
        HfEvent::Writing => bar.set_message("writing"),
    };
    let report = pool.install(|| quantize_to_hf(&input.file, a.output, &spec, &mut on_event));
    bar.finish_and_clear();
    let report = report.with_context(|| format!("cannot quantize {}", a.input.display()))?;
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        v["input"] = a.input.display().to_string().into();
        v["output"] = a.output.display().to_string().into();
        v["threads"] = threads.into();
        return print_json(&v);
    }
    println!(
        "{} -> {} ({}, {}, {} with {}: {} modules, {:.3} bits per weight in the matrices, {} of safetensors) in {:.1} s",
        a.input.display(),
        a.output.display(),
        report.format,
        report.scheme,
        report.weights.method,
        spec.method,
        report.modules,
        report.weights.bits_per_weight,
        human_bytes(report.safetensors_bytes),
        report.seconds
    );
    if let Some(act) = &report.activations {
        println!(
            "  activations: static int8 ({}) from {} windows, mean clip ratio {:.3}",
            observer.name(),
            act.windows,
            act.mean_clip_ratio
        );
    }
    if report.rounded_zero_points > 0 {
        println!(
            "  note: {} zero points rounded to integers for the format (largest change {:.3} steps)",
            report.rounded_zero_points, report.largest_zero_point_change
        );
    }
    Ok(())
}
