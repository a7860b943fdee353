//! `cargo run -p lowbit-convert --example hf_to_gguf -- hf_dir out.gguf` (unquantized F32).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, out] = args.as_slice() else {
        return Err("usage: hf_to_gguf HF_DIR OUT.gguf".into());
    };
    let t = std::time::Instant::now();
    let (folder, plan) = lowbit_convert::hf_to_gguf_plan(dir)?;
    lowbit_convert::write_gguf_f32(&folder, &plan, out)?;
    println!(
        "{:?}: {} tensors (+{} generated), skipped {:?}, in {:.1}s",
        plan.arch,
        plan.tensors.len(),
        plan.generated.len(),
        plan.skipped,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
