//! Ad-hoc bridge for checking lowbit against gguf-py / llama.cpp from Python (see
//! `scripts/check_against_ggml.py`): raw little-endian files in, raw files out.
//!
//!   oracle dequant TYPE in.bin out.f32
//!   oracle quant TYPE N_PER_ROW in.f32 out.bin [importance.f32]

use lowbit_formats::{block_format, GgmlType};
use std::fs;

fn f32s(path: &str) -> Vec<f32> {
    let b = fs::read(path).expect("read input");
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ty = GgmlType::from_name(&args[2]).expect("type name");
    let fmt = block_format(ty).expect("format");
    match args[1].as_str() {
        "dequant" => {
            let src = fs::read(&args[3]).expect("read input");
            let n = src.len() / ty.block_bytes() * ty.block_elems();
            let mut out = vec![0f32; n];
            fmt.dequantize_row(&src, &mut out).expect("dequantize");
            let bytes: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
            fs::write(&args[4], bytes).expect("write");
        }
        "quant" => {
            let n_per_row: usize = args[3].parse().expect("n_per_row");
            let src = f32s(&args[4]);
            let imp = args.get(6).map(|p| f32s(p));
            let row_bytes = n_per_row / ty.block_elems() * ty.block_bytes();
            let rows = src.len() / n_per_row;
            let mut out = vec![0u8; rows * row_bytes];
            for r in 0..rows {
                let x = &src[r * n_per_row..(r + 1) * n_per_row];
                let w = imp
                    .as_ref()
                    .map(|v| &v[(r * n_per_row) % v.len()..][..n_per_row]);
                fmt.quantize_row(x, w, &mut out[r * row_bytes..(r + 1) * row_bytes])
                    .expect("quantize");
            }
            fs::write(&args[5], out).expect("write");
        }
        other => panic!("unknown command {other}"),
    }
}
