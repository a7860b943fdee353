//! Single-thread quantize / dequantize throughput per type (ad hoc, no criterion):
//!   CARGO_TARGET_DIR=/work/target-shared cargo run -p lowbit-formats --release --example throughput

use lowbit_formats::{block_format, GgmlType};

/// This thread's CPU time in seconds (the machine is shared: wall time measures the load, CPU
/// time measures the code). Falls back to 0 where schedstat is unavailable.
fn cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns * 1e-9)
}

fn main() {
    let n_per_row = 2048usize;
    let rows = 512usize;
    // Heavy-tailed pseudo-random weights (deterministic LCG), like real tensors.
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let src: Vec<f32> = (0..n_per_row * rows)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((s >> 40) as f32 + 0.5) / (1u64 << 24) as f32;
            let g = (u - 0.5) * 2.0;
            0.02 * g / (1.05 - g.abs()).sqrt()
        })
        .collect();
    let only: Option<Vec<String>> = std::env::args()
        .nth(1)
        .map(|a| a.split(',').map(str::to_owned).collect());
    println!(
        "{:8} {:>12} {:>12}",
        "type", "quant M/s", "dequant M/s (CPU time)"
    );
    for name in [
        "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
        "Q8_K", "IQ4_NL", "IQ4_XS",
    ] {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == name)) {
            continue;
        }
        let ty = GgmlType::from_name(name).expect("known type");
        let f = block_format(ty).expect("implemented");
        let rb = n_per_row / ty.block_elems() * ty.block_bytes();
        let mut q = vec![0u8; rb * rows];
        // Repeat until the CPU clock (tick-granular under load) has advanced enough.
        let timed = |f: &mut dyn FnMut()| {
            let (t, mut reps) = (cpu_s(), 0u32);
            while reps == 0 || cpu_s() - t < 0.5 {
                f();
                reps += 1;
            }
            (cpu_s() - t) / reps as f64
        };
        let tq = timed(&mut || {
            for (x, out) in src.chunks_exact(n_per_row).zip(q.chunks_exact_mut(rb)) {
                f.quantize_row(x, None, out).expect("quantize");
            }
        });
        let mut y = vec![0f32; src.len()];
        let td = timed(&mut || {
            for (b, out) in q.chunks_exact(rb).zip(y.chunks_exact_mut(n_per_row)) {
                f.dequantize_row(b, out).expect("dequantize");
            }
        });
        let n = src.len() as f64 / 1e6;
        println!("{:8} {:12.1} {:12.1}", name, n / tq, n / td);
    }
}
