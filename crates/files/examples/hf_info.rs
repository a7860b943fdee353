//! Ad-hoc check: open a Hugging Face folder and convert every float tensor to f32.
//! `cargo run -p lowbit-files --example hf_info -- /path/to/model_dir`

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for dir in std::env::args().skip(1) {
        let t0 = Instant::now();
        let m = lowbit_files::HfModel::open(&dir)?;
        let open = t0.elapsed();
        let (mut n, mut sum) = (0u64, 0f64);
        for (shard, t) in m.tensors() {
            if t.dtype.is_float() {
                let v = shard.to_f32(t)?;
                n += v.len() as u64;
                sum += v.iter().map(|&x| x as f64).sum::<f64>();
            }
        }
        println!(
            "{dir}: model_type={:?} shards={} tensors={} floats={n} sum={sum:.6} tokenizer={} open={open:.2?}",
            m.model_type().ok(),
            m.shards().len(),
            m.n_tensors(),
            m.tokenizer_json_path().is_some()
        );
    }
    Ok(())
}
