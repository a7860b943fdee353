//! The definition of the matrix product: dequantize each weight row to f32, dot it with each
//! activation row in f64-free plain f32. Slow and obviously correct; every optimised kernel is
//! tested against it.

use crate::tensor::QMatrix;
use lowbit_formats::block_format;

pub fn matmul(w: &QMatrix, x: &[f32], n_tokens: usize, out: &mut [f32]) {
    assert_eq!(x.len(), n_tokens * w.cols, "activation shape");
    assert_eq!(out.len(), n_tokens * w.rows, "output shape");
    let fmt = block_format(w.ty).expect("weight type has a block format");
    let mut row = vec![0f32; w.cols];
    for r in 0..w.rows {
        fmt.dequantize_row(w.row(r), &mut row).expect("row geometry checked by QMatrix::new");
        for t in 0..n_tokens {
            let xt = &x[t * w.cols..(t + 1) * w.cols];
            out[t * w.rows + r] = row.iter().zip(xt).map(|(a, b)| a * b).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lowbit_formats::GgmlType;

    #[test]
    fn f32_matmul_is_the_textbook_product() {
        let w: Vec<f32> = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bytes: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
        let m = QMatrix::new(GgmlType::F32, 2, 3, &bytes).unwrap();
        let x = [1.0, 0.0, -1.0, 0.5, 0.5, 0.5];
        let mut out = [0f32; 4];
        matmul(&m, &x, 2, &mut out);
        assert_eq!(out, [-2.0, -2.0, 3.0, 7.5]);
    }
}
