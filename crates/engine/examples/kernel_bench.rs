//! Kernel throughput per weight type: GB/s of weights streamed at n_tokens = 1 (generation) and
//! GFLOP/s at n_tokens = 128 (prompt), for SmolLM2's two FFN shapes, at 1 and 2 threads, next to
//! the plain reference and a streaming-read memory bandwidth figure.
//!
//! `cargo run --release -p lowbit-engine --example kernel_bench [TYPE ...]`
//!
//! Weights are cycled through enough copies (≥ 96 MiB) that n_tokens = 1 reads from DRAM, as in
//! real generation, rather than from the 32 MiB L3.

use lowbit_engine::kernels::{self, cpu, reference, Activations, MatmulOptions};
use lowbit_engine::QMatrix;
use lowbit_formats::{block_format, GgmlType};
use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "shared/noise.rs"]
mod noise;
use noise::noise;

/// Runs `f` repeatedly for at least `min` and returns seconds per call.
fn time(min: Duration, mut f: impl FnMut(usize)) -> f64 {
    f(0);
    let start = Instant::now();
    let mut i = 1;
    while start.elapsed() < min {
        f(i);
        i += 1;
    }
    start.elapsed().as_secs_f64() / (i - 1) as f64
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Streaming read bandwidth: sum a 512 MiB buffer split over `threads` threads.
fn memory_bandwidth(threads: usize) -> f64 {
    let buf: Vec<u64> = (0..64usize << 20).map(|i| i as u64).collect();
    let p = pool(threads);
    let secs = time(Duration::from_millis(800), |_| {
        p.install(|| {
            use rayon::prelude::*;
            let s: u64 = buf
                .par_chunks(1 << 16)
                .map(|c| {
                    let mut acc = [0u64; 8];
                    for ch in c.chunks_exact(8) {
                        for k in 0..8 {
                            acc[k] = acc[k].wrapping_add(ch[k]);
                        }
                    }
                    acc.iter().fold(0u64, |a, b| a.wrapping_add(*b))
                })
                .sum();
            black_box(s);
        })
    });
    (buf.len() * 8) as f64 / secs / 1e9
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let types: Vec<GgmlType> = if args.is_empty() {
        use GgmlType::*;
        vec![
            F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4, Q2_K, Q3_K, Q4_K, Q5_K,
            Q6_K, IQ4_XS, TQ1_0, TQ2_0,
        ]
    } else {
        args.iter()
            .map(|a| GgmlType::from_name(a).unwrap_or_else(|| panic!("unknown type {a}")))
            .collect()
    };
    println!("kernel level: {}", cpu::detected().name());
    for t in [1, 2] {
        println!(
            "streaming read bandwidth, {t} thread(s): {:.1} GB/s",
            memory_bandwidth(t)
        );
    }
    let min = Duration::from_millis(300);
    println!(
        "{:<7} {:>10} | {:>7} {:>7} {:>7} | {:>8} {:>8} {:>8} | {:>7} {:>7}",
        "type",
        "rows×cols",
        "GB/s 1t",
        "GB/s 2t",
        "ref 1t",
        "GF/s 1t",
        "GF/s 2t",
        "ref 1t",
        "f32a 2t",
        "q8g 2t"
    );
    for &ty in &types {
        for (rows, cols) in [(1536usize, 576usize), (576, 1536)] {
            let Some(rb) = ty.row_bytes(cols as u64) else {
                println!(
                    "{:<7} {rows:>4}×{cols:<5} | n/a (columns not a multiple of the block)",
                    ty.name()
                );
                continue;
            };
            let rb = rb as usize;
            let fmt = block_format(ty).unwrap();
            let src = noise(rows * cols, 42);
            let mut one = vec![0u8; rows * rb];
            for (s, d) in src.chunks_exact(cols).zip(one.chunks_exact_mut(rb)) {
                fmt.quantize_row(s, None, d).unwrap();
            }
            let copies = ((96usize << 20) / one.len()).max(1);
            let all: Vec<u8> = one
                .iter()
                .copied()
                .cycle()
                .take(one.len() * copies)
                .collect();
            let mats: Vec<QMatrix> = all
                .chunks_exact(one.len())
                .map(|d| QMatrix::new(ty, rows, cols, d).unwrap())
                .collect();
            let bytes = one.len() as f64;
            let x1 = noise(cols, 1);
            let x128 = noise(128 * cols, 2);
            let mut out1 = vec![0f32; rows];
            let mut out128 = vec![0f32; 128 * rows];
            let gbs = |threads: usize, opts: MatmulOptions, out: &mut [f32]| {
                let p = pool(threads);
                let s = time(min, |i| {
                    p.install(|| kernels::matmul_with(&opts, &mats[i % copies], &x1, 1, out))
                });
                bytes / s / 1e9
            };
            let gflops = |threads: usize, opts: MatmulOptions, out: &mut [f32]| {
                let p = pool(threads);
                let s = time(min, |i| {
                    p.install(|| kernels::matmul_with(&opts, &mats[i % copies], &x128, 128, out))
                });
                2.0 * (rows * cols * 128) as f64 / s / 1e9
            };
            let d = MatmulOptions::default();
            let f32a = MatmulOptions {
                activations: Activations::F32,
                ..d
            };
            let q8g = MatmulOptions {
                gemm_min_tokens: usize::MAX,
                ..d
            };
            let g1 = gbs(1, d, &mut out1);
            let g2 = gbs(2, d, &mut out1);
            let gr = bytes
                / time(min, |i| {
                    reference::matmul(&mats[i % copies], &x1, 1, &mut out1)
                })
                / 1e9;
            let f1 = gflops(1, d, &mut out128);
            let f2 = gflops(2, d, &mut out128);
            let fr = 2.0 * (rows * cols * 128) as f64
                / time(Duration::from_millis(100), |i| {
                    reference::matmul(&mats[i % copies], &x128, 128, &mut out128)
                })
                / 1e9;
            let ga = gbs(2, f32a, &mut out1);
            let fq = gflops(2, q8g, &mut out128);
            println!(
                "{:<7} {rows:>4}×{cols:<5} | {g1:>7.1} {g2:>7.1} {gr:>7.2} | {f1:>8.1} {f2:>8.1} {fr:>8.2} | {ga:>7.1} {fq:>7.1}",
                ty.name()
            );
        }
    }
    println!(
        "GB/s: weight bytes per second at n_tokens=1; GF/s: 2·rows·cols·128 / s at n_tokens=128;"
    );
    println!("f32a: n=1 with f32 activations (dequantize + dot); q8g: n=128 on the integer row kernels instead of GEMM.");
}
