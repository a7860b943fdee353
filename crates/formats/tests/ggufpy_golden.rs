//! Bit-exactness of dequantization and quality of quantization against gguf-py, an independent
//! implementation of ggml's formats. The fixture comes from `scripts/gen_golden.py`.

use lowbit_formats::{block_format, GgmlType};

const FIXTURE: &str = include_str!("fixtures/ggufpy_golden.txt");

/// Mirrors the script's generator (top 24 bits of a 64-bit LCG, exact in f32).
struct Lcg(u64);

impl Lcg {
    fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }
    fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
    fn weight(&mut self) -> f32 {
        let u = self.uniform();
        u * u * u + 0.25 * self.uniform()
    }
}

fn fnv64(values: &[f32]) -> u64 {
    let mut h = 0xcbf29ce484222325u64;
    for b in values.iter().flat_map(|v| v.to_le_bytes()) {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    h
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn matches_gguf_py() {
    let mut checked = 0;
    for line in FIXTURE.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let ty = GgmlType::from_name(f[1]).unwrap();
        let fmt = block_format(ty).unwrap();
        match f[0] {
            "dequant" => {
                let bytes = hex(f[2]);
                let n = bytes.len() / ty.block_bytes() * ty.block_elems();
                let mut y = vec![0f32; n];
                fmt.dequantize_row(&bytes, &mut y).unwrap();
                assert_eq!(format!("{:016x}", fnv64(&y)), f[3], "{ty} dequantize");
            }
            "quantize" => {
                let mut rng = Lcg(f[2].parse().unwrap());
                let n: usize = f[3].parse().unwrap();
                let reference: f64 = f[4].parse().unwrap();
                let x: Vec<f32> = (0..n).map(|_| rng.weight()).collect();
                let mut q = vec![0u8; ty.row_bytes(n as u64).unwrap() as usize];
                fmt.quantize_row(&x, None, &mut q).unwrap();
                let mut y = vec![0f32; n];
                fmt.dequantize_row(&q, &mut y).unwrap();
                let sse: f64 = x
                    .iter()
                    .zip(&y)
                    .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                    .sum();
                eprintln!(
                    "{ty}: sse {sse:.4} vs gguf-py {reference:.4} ({:.1}%)",
                    100.0 * sse / reference
                );
                assert!(sse <= reference * (1.0 + 1e-9), "{ty}: {sse} > {reference}");
            }
            other => panic!("unknown fixture line kind {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 9);
}
