//! Quantizes one tensor: rows in parallel, each row through the target's `BlockFormat`, with the
//! error measured on the way (the block is dequantized while it is still in cache, which costs far
//! less than a second pass over the tensor).

use lowbit_formats::metrics::ErrorStats;
use lowbit_formats::{block_format, FormatError, GgmlType};
use rayon::prelude::*;

/// Rows per parallel task: large enough to amortise scheduling, small enough to balance 2–64 cores.
const ROWS_PER_TASK: usize = 16;

/// The quantized bytes of one tensor and what they cost.
pub struct QuantizedTensor {
    pub bytes: Vec<u8>,
    pub stats: ErrorStats,
}

/// Quantizes `values` (rows of `row_len`, ggml order) to `target`. `importance` has one weight per
/// column (length `row_len`) and is used for every row.
pub fn quantize_tensor(
    values: &[f32],
    row_len: usize,
    target: GgmlType,
    importance: Option<&[f32]>,
) -> Result<QuantizedTensor, FormatError> {
    let format = block_format(target).ok_or(FormatError::NoFormat(target))?;
    if !format.can_quantize() {
        return Err(FormatError::QuantizeUnsupported(target));
    }
    if row_len == 0 || values.len() % row_len != 0 {
        return Err(FormatError::InvalidParameter(format!(
            "{} values do not form rows of {row_len}",
            values.len()
        )));
    }
    let row_bytes = target
        .row_bytes(row_len as u64)
        .ok_or(FormatError::PartialBlock {
            ty: target,
            n_elems: row_len,
            block_elems: target.block_elems(),
        })? as usize;
    if let Some(imp) = importance {
        if imp.len() != row_len {
            return Err(FormatError::ImportanceLength {
                expected: row_len,
                got: imp.len(),
            });
        }
    }
    let n_rows = values.len() / row_len;
    let mut bytes = vec![0u8; n_rows * row_bytes];
    let stats = bytes
        .par_chunks_mut(ROWS_PER_TASK * row_bytes)
        .zip(values.par_chunks(ROWS_PER_TASK * row_len))
        .map(|(dst, src)| {
            let mut stats = ErrorStats::default();
            let mut back = vec![0f32; row_len];
            for (d, s) in dst
                .chunks_exact_mut(row_bytes)
                .zip(src.chunks_exact(row_len))
            {
                format.quantize_row(s, importance, d)?;
                format.dequantize_row(d, &mut back)?;
                stats.add(s, &back)?;
            }
            Ok(stats)
        })
        .try_reduce(ErrorStats::default, |mut a, b| {
            a.merge(&b);
            Ok(a)
        })?;
    Ok(QuantizedTensor { bytes, stats })
}

/// Dequantizes a whole tensor of `ty` to f32 (rows in parallel).
pub fn dequantize_tensor(
    bytes: &[u8],
    ty: GgmlType,
    n_elems: usize,
    row_len: usize,
) -> Result<Vec<f32>, FormatError> {
    let format = block_format(ty).ok_or(FormatError::NoFormat(ty))?;
    let row_bytes = ty
        .row_bytes(row_len as u64)
        .ok_or(FormatError::PartialBlock {
            ty,
            n_elems: row_len,
            block_elems: ty.block_elems(),
        })? as usize;
    if row_len == 0 || n_elems % row_len != 0 || bytes.len() != n_elems / row_len * row_bytes {
        return Err(FormatError::ByteLength {
            ty,
            expected: n_elems / row_len.max(1) * row_bytes,
            got: bytes.len(),
        });
    }
    let mut out = vec![0f32; n_elems];
    out.par_chunks_mut(ROWS_PER_TASK * row_len)
        .zip(bytes.par_chunks(ROWS_PER_TASK * row_bytes))
        .try_for_each(|(dst, src)| format.dequantize_row(src, dst))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn f16_tensor_round_trips_and_reports_small_error() {
        let v = ramp(64 * 40);
        let q = quantize_tensor(&v, 64, GgmlType::F16, None).unwrap();
        assert_eq!(q.bytes.len(), v.len() * 2);
        assert!(q.stats.rmse() < 1e-3);
        let back = dequantize_tensor(&q.bytes, GgmlType::F16, v.len(), 64).unwrap();
        for (a, b) in v.iter().zip(&back) {
            assert!((a - b).abs() < 1e-3);
        }
    }

    #[test]
    fn bad_shapes_are_errors_not_panics() {
        let v = ramp(100);
        assert!(quantize_tensor(&v, 30, GgmlType::F16, None).is_err());
        assert!(quantize_tensor(&v, 0, GgmlType::F16, None).is_err());
        assert!(quantize_tensor(&v, 50, GgmlType::F16, Some(&[1.0; 3])).is_err());
        assert!(dequantize_tensor(&[0u8; 10], GgmlType::F16, 100, 50).is_err());
    }
}
