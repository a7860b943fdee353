//! Ad-hoc check: re-write a GGUF through lowbit's reader and writer; for files written by
//! llama.cpp or gguf-py with the same layout rules the output should be byte-identical.
//! `cargo run -p lowbit-files --example gguf_copy -- in.gguf out.gguf`

use lowbit_files::{GgufFile, GgufWriter, TensorSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (src, dst) = (&args[1], &args[2]);
    let f = GgufFile::open(src)?;
    let specs = f
        .tensors()
        .iter()
        .map(|t| TensorSpec::new(&t.name, &t.dims, t.ty))
        .collect();
    let mut w = GgufWriter::create(dst, f.metadata().to_vec(), specs)?;
    for t in f.tensors() {
        w.write_tensor(&t.name, f.tensor_data(t))?;
    }
    w.finish()?;
    Ok(())
}
