//! The lattice IQ types against golden vectors from gguf-py (see scripts/gen_iq_fixtures.py):
//! dequantization must be bit-identical, and the read-only contract must hold.

use lowbit_formats::{block_format, BlockFormat, FormatError, GgmlType};

/// (type, raw blocks, gguf-py's dequantization as little-endian f32)
const GOLDEN: &[(GgmlType, &[u8], &[u8])] = &[
    (
        GgmlType::IQ1_S,
        include_bytes!("fixtures/iq_grid/iq1_s.blocks"),
        include_bytes!("fixtures/iq_grid/iq1_s.f32"),
    ),
    (
        GgmlType::IQ1_M,
        include_bytes!("fixtures/iq_grid/iq1_m.blocks"),
        include_bytes!("fixtures/iq_grid/iq1_m.f32"),
    ),
    (
        GgmlType::IQ2_XXS,
        include_bytes!("fixtures/iq_grid/iq2_xxs.blocks"),
        include_bytes!("fixtures/iq_grid/iq2_xxs.f32"),
    ),
    (
        GgmlType::IQ2_XS,
        include_bytes!("fixtures/iq_grid/iq2_xs.blocks"),
        include_bytes!("fixtures/iq_grid/iq2_xs.f32"),
    ),
    (
        GgmlType::IQ2_S,
        include_bytes!("fixtures/iq_grid/iq2_s.blocks"),
        include_bytes!("fixtures/iq_grid/iq2_s.f32"),
    ),
    (
        GgmlType::IQ3_XXS,
        include_bytes!("fixtures/iq_grid/iq3_xxs.blocks"),
        include_bytes!("fixtures/iq_grid/iq3_xxs.f32"),
    ),
    (
        GgmlType::IQ3_S,
        include_bytes!("fixtures/iq_grid/iq3_s.blocks"),
        include_bytes!("fixtures/iq_grid/iq3_s.f32"),
    ),
];

fn format(ty: GgmlType) -> &'static dyn BlockFormat {
    block_format(ty).unwrap_or_else(|| panic!("{ty} has no block format"))
}

#[test]
fn dequantize_matches_gguf_py_bit_for_bit() {
    for &(ty, blocks, expected) in GOLDEN {
        let n_blocks = blocks.len() / ty.block_bytes();
        assert!(
            n_blocks >= 2 && blocks.len() == n_blocks * ty.block_bytes(),
            "{ty}: bad fixture"
        );
        assert_eq!(expected.len(), n_blocks * 256 * 4, "{ty}: bad fixture");
        let mut got = vec![0f32; n_blocks * 256];
        format(ty).dequantize_row(blocks, &mut got).unwrap();
        for (i, (g, e)) in got.iter().zip(expected.chunks_exact(4)).enumerate() {
            let e = f32::from_le_bytes([e[0], e[1], e[2], e[3]]);
            assert_eq!(
                g.to_bits(),
                e.to_bits(),
                "{ty}: element {i}: got {g}, gguf-py {e}"
            );
        }
    }
}

#[test]
fn all_zero_blocks_dequantize_to_zero() {
    for &(ty, _, _) in GOLDEN {
        let blocks = vec![0u8; 3 * ty.block_bytes()];
        let mut got = vec![1f32; 3 * 256];
        format(ty).dequantize_row(&blocks, &mut got).unwrap();
        // IQ1 grids are offset, so a zero scale can give -0.0, as in ggml: compare by value.
        assert!(
            got.iter().all(|&v| v == 0.0),
            "{ty}: nonzero output from zero blocks"
        );
    }
}

#[test]
fn wrong_lengths_are_errors() {
    for &(ty, blocks, _) in GOLDEN {
        let f = format(ty);
        let bb = ty.block_bytes();
        let mut out = vec![0f32; 256];
        assert_eq!(
            f.dequantize_row(&blocks[..bb - 1], &mut out),
            Err(FormatError::ByteLength {
                ty,
                expected: bb,
                got: bb - 1
            })
        );
        assert_eq!(
            f.dequantize_row(&blocks[..2 * bb], &mut out),
            Err(FormatError::ByteLength {
                ty,
                expected: bb,
                got: 2 * bb
            })
        );
        assert_eq!(
            f.dequantize_row(&blocks[..bb], &mut out[..255]),
            Err(FormatError::PartialBlock {
                ty,
                n_elems: 255,
                block_elems: 256
            })
        );
        assert_eq!(f.dequantize_row(&[], &mut []), Ok(()));
    }
}

#[test]
fn quantizing_is_refused() {
    for &(ty, blocks, _) in GOLDEN {
        let f = format(ty);
        assert!(!f.can_quantize());
        let mut dst = blocks[..ty.block_bytes()].to_vec();
        assert_eq!(
            f.quantize_row(&[0.5; 256], None, &mut dst),
            Err(FormatError::QuantizeUnsupported(ty))
        );
        assert_eq!(
            dst,
            &blocks[..ty.block_bytes()],
            "{ty}: refused quantize wrote to dst"
        );
    }
}

#[test]
fn blocks_are_independent() {
    for &(ty, blocks, _) in GOLDEN {
        let f = format(ty);
        let n = blocks.len() / ty.block_bytes();
        let mut row = vec![0f32; n * 256];
        f.dequantize_row(blocks, &mut row).unwrap();
        for (b, expected) in blocks
            .chunks_exact(ty.block_bytes())
            .zip(row.chunks_exact(256))
        {
            let mut one = [0f32; 256];
            f.dequantize_row(b, &mut one).unwrap();
            assert!(
                one.iter()
                    .zip(expected)
                    .all(|(a, e)| a.to_bits() == e.to_bits()),
                "{ty}"
            );
        }
    }
}
