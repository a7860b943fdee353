//! W8A8 integer products against the f32 path on SmolLM2's shapes: GFLOP/s of
//! `kernels::int8` (activation rounding included) at every instruction-set level, next to the
//! f32 weights' product (faer's GEMM for prompts, the float dot for one token), at 1 and 2
//! threads, and their ratio in the same run.
//!
//! `cargo run --release -p lowbit-engine --example int8_bench`

use lowbit_engine::kernels::cpu::Level;
use lowbit_engine::kernels::int8::{matmul_int8_at, ActRange, Int8Acts, Int8Matrix};
use lowbit_engine::kernels::matmul;
use lowbit_engine::QMatrix;
use lowbit_formats::GgmlType;
use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "shared/noise.rs"]
mod noise;
use noise::noise;

/// Seconds per call of `f`, run for at least `min`.
fn time(min: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let start = Instant::now();
    let mut i = 0u32;
    while start.elapsed() < min || i == 0 {
        f();
        i += 1;
    }
    start.elapsed().as_secs_f64() / i as f64
}

fn main() {
    let min = Duration::from_millis(400);
    println!("{:>10} {:>4} {:>3} | {:>9} | {}", "rows×cols", "n", "thr", "f32 GF/s", "int8 GF/s by level (× f32)");
    for (rows, cols) in [(576usize, 576usize), (1536, 576), (576, 1536)] {
        let wf = noise(rows * cols, 1);
        let codes: Vec<i8> = wf.iter().map(|v| (v * 127.0).round() as i8).collect();
        let w8 = Int8Matrix::new(rows, cols, &codes, &vec![1.0 / 127.0; rows]).unwrap();
        let bytes: Vec<u8> = wf.iter().flat_map(|v| v.to_le_bytes()).collect();
        let w32 = QMatrix::new(GgmlType::F32, rows, cols, &bytes).unwrap();
        for n in [1usize, 512] {
            let x = noise(n * cols, 2);
            let mut out = vec![0f32; n * rows];
            for threads in [1usize, 2] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let flops = 2.0 * (rows * cols * n) as f64;
                let f32_s = pool.install(|| time(min, || matmul(&w32, black_box(&x), n, &mut out)));
                let mut line = format!("{rows:>4}×{cols:<5} {n:>4} {threads:>3} | {:>9.1} |", flops / f32_s / 1e9);
                for level in Level::supported() {
                    let s = pool.install(|| {
                        time(min, || {
                            let a = Int8Acts::quantize(black_box(&x), n, cols, ActRange::DynamicToken);
                            matmul_int8_at(level, &w8, &a, &mut out)
                        })
                    });
                    line += &format!(" {} {:.1} ({:.2}×)", level.name(), flops / s / 1e9, f32_s / s);
                }
                println!("{line}");
            }
        }
    }
}
