//! Ad-hoc check: open GGUF files, touch every tensor byte, print a summary and the open time.
//! `cargo run --release -p lowbit-files --example gguf_info -- model.gguf…`

use std::time::Instant;

fn main() {
    for path in std::env::args().skip(1) {
        let t0 = Instant::now();
        let f = match lowbit_files::GgufFile::open(&path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        let mut open = t0.elapsed();
        // Re-open a few times: the minimum excludes first-touch page faults.
        for _ in 0..5 {
            let t = Instant::now();
            let again = lowbit_files::GgufFile::open(&path).map(|g| g.tensors().len());
            open = open.min(t.elapsed());
            assert_eq!(again.ok(), Some(f.tensors().len()));
        }
        let mut checksum = 0u64;
        for t in f.tensors() {
            checksum = f
                .tensor_data(t)
                .iter()
                .fold(checksum, |a, &b| a.wrapping_mul(31).wrapping_add(b.into()));
        }
        let arrays: Vec<String> = f
            .metadata()
            .iter()
            .filter_map(|(k, v)| v.as_array().map(|a| format!("{k}[{}]", a.len())))
            .collect();
        println!(
            "{path}: v{} arch={:?} kv={} tensors={} bytes={} open={:.2?} checksum={checksum:016x} arrays: {}",
            f.version(),
            f.architecture().unwrap_or("?"),
            f.metadata().len(),
            f.tensors().len(),
            f.total_tensor_bytes(),
            open,
            arrays.join(" ")
        );
    }
}
