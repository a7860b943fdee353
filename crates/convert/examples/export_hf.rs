//! `cargo run -p lowbit-convert --example export_hf -- model.gguf out_dir [bf16]`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [gguf, out, rest @ ..] = args.as_slice() else {
        return Err("usage: export_hf MODEL.gguf OUT_DIR [bf16]".into());
    };
    let dtype = if rest.first().map(String::as_str) == Some("bf16") {
        lowbit_convert::ExportDtype::Bf16
    } else {
        lowbit_convert::ExportDtype::F32
    };
    let t = std::time::Instant::now();
    let s = lowbit_convert::export_hf(gguf, out, dtype)?;
    println!(
        "{:?}: {} tensors ({} dequantized), dropped {:?}, {} MB in {:.1}s",
        s.arch,
        s.tensors,
        s.dequantized.len(),
        s.dropped,
        s.safetensors_bytes >> 20,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
