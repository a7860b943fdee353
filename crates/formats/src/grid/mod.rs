//! Fixed-scale encoding: a block type's scales chosen once, then its element codes set one by one.
//!
//! Round-to-nearest picks a block's scales and its codes together. Error-feedback methods (GPTQ)
//! need the two apart: choose the scales of a block first (from the weights as they are when the
//! sweep reaches it), then round one column at a time, each rounding error pushed onto the columns
//! not yet rounded, every code landing on the grid those scales define. This module gives every
//! writable block type that split:
//!
//! - [`fit_row`] (a) fits the scales (and mins) of a row's blocks exactly as
//!   [`BlockFormat::quantize_row`] does — with importance when given — and returns a [`RowGrid`]:
//!   per group of elements the `(scale, offset)` the reader will form, and the level set;
//! - [`RowGrid::nearest`] / [`RowGrid::value`] round one element onto that grid;
//! - [`RowGrid::encode`] (b) writes the blocks with the fitted scales and any codes.
//!
//! `encode(fit_row(x), nearest codes of x)` is bit-identical to `quantize_row(x)`: the fit *is*
//! the quantizer's, and the codes a quantizer writes are the nearest levels under the scales it
//! stored (tests/grid.rs checks both on every type). The per-type knowledge — where a block keeps
//! its scales and codes — lives beside each format as a [`BlockGrid`] implementation.
//!
//! Affine integer layouts (lowbit's GPTQ/AWQ export targets) get the same interface through
//! [`affine_row`]: `value = (code − zero) · scale`, scales stored as f16 as the checkpoints do.

mod affine;
mod levels;

pub use affine::{affine_row, AffineRow};
pub use levels::Levels;

use crate::{block_format, BlockFormat, FormatError, GgmlType};

/// What the reader forms for one group of elements: `value = (level − zero) · scale + offset`.
/// GGUF types have `zero = 0`; affine layouts have `offset = 0` and an integer `zero`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GroupParams {
    pub scale: f32,
    pub offset: f32,
    pub zero: f32,
}

impl GroupParams {
    #[inline(always)]
    pub fn value(&self, level: f32) -> f32 {
        (level - self.zero) * self.scale + self.offset
    }
}

/// Where one block type keeps its scales and its codes. Implemented beside each format.
pub trait BlockGrid: Sync {
    /// Elements sharing one [`GroupParams`] (32 for the legacy types, 16 or 32 for the k-quants).
    fn group(&self) -> usize;
    /// The levels a code can take.
    fn levels(&self) -> Levels;
    /// The parameters the reader forms from this block's header, one per group.
    fn params(&self, block: &[u8], out: &mut [GroupParams]);
    /// The code of every element of the block.
    fn read_codes(&self, block: &[u8], codes: &mut [u8]);
    /// Writes every element's code, keeping the header (fields derived from the codes, such as
    /// Q8_1's sum or Q8_K's block sums, are recomputed).
    fn write_codes(&self, block: &mut [u8], codes: &[u8]);
    /// Multiplies the block's stored scale(s) by `r` in their stored precision: a clipping search
    /// shrinks the whole grid without refitting it. Offsets (mins) are kept.
    fn rescale(&self, block: &mut [u8], r: f32);
    /// Sets group `j` to the representable parameters nearest `p` with the block's super-scales
    /// kept; only the types with a free offset (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K) can, the others
    /// return false and change nothing.
    fn set_params(&self, _block: &mut [u8], _j: usize, _p: GroupParams) -> bool {
        false
    }
}

/// The grid of every writable block type, or None for float types (every value is its own
/// level there: nothing to solve) and read-only types.
pub fn block_grid(ty: GgmlType) -> Option<&'static dyn BlockGrid> {
    block_format(ty).and_then(|f| f.grid())
}

/// A row (or a slice of a row spanning whole blocks) with its scales chosen.
#[derive(Clone, Debug)]
pub struct RowGrid {
    kind: Kind,
    /// Elements per group.
    pub group: usize,
    pub levels: Levels,
    /// One per group, in element order.
    pub params: Vec<GroupParams>,
    len: usize,
}

#[derive(Clone)]
enum Kind {
    Blocks {
        ty: GgmlType,
        grid: &'static dyn BlockGrid,
        bytes: Vec<u8>,
    },
    Affine {
        bits: u8,
    },
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Blocks { ty, .. } => write!(f, "Blocks({ty})"),
            Kind::Affine { bits } => write!(f, "Affine({bits} bits)"),
        }
    }
}

/// (a): fits the blocks of `src` as `quantize_row` does and returns their grid.
pub fn fit_row(ty: GgmlType, src: &[f32], importance: Option<&[f32]>) -> Result<RowGrid, FormatError> {
    let format = block_format(ty).ok_or(FormatError::NoFormat(ty))?;
    let grid = format.grid().ok_or(FormatError::InvalidParameter(format!(
        "{ty} has no fixed-scale encoding (float and read-only types round each value on its own)"
    )))?;
    let n_bytes = ty
        .row_bytes(src.len() as u64)
        .ok_or(FormatError::PartialBlock {
            ty,
            n_elems: src.len(),
            block_elems: ty.block_elems(),
        })? as usize;
    let mut bytes = vec![0u8; n_bytes];
    format.quantize_row(src, importance, &mut bytes)?;
    Ok(RowGrid::from_blocks(format, grid, bytes, src.len()))
}

/// Reads the grid of already-quantized blocks (e.g. a row of a GGUF tensor).
pub fn grid_of_blocks(ty: GgmlType, bytes: &[u8]) -> Result<RowGrid, FormatError> {
    let format = block_format(ty).ok_or(FormatError::NoFormat(ty))?;
    let grid = format
        .grid()
        .ok_or(FormatError::InvalidParameter(format!("{ty} has no fixed-scale encoding")))?;
    let bb = ty.block_bytes();
    if bytes.len() % bb != 0 {
        return Err(FormatError::ByteLength {
            ty,
            expected: bytes.len() / bb * bb,
            got: bytes.len(),
        });
    }
    let len = bytes.len() / bb * ty.block_elems();
    Ok(RowGrid::from_blocks(format, grid, bytes.to_vec(), len))
}

impl RowGrid {
    fn from_blocks(
        format: &'static dyn BlockFormat,
        grid: &'static dyn BlockGrid,
        bytes: Vec<u8>,
        len: usize,
    ) -> RowGrid {
        let ty = format.ty();
        let (be, bb, g) = (ty.block_elems(), ty.block_bytes(), grid.group());
        let mut params = vec![GroupParams::default(); len / g];
        for (blk, p) in bytes.chunks_exact(bb).zip(params.chunks_exact_mut(be / g)) {
            grid.params(blk, p);
        }
        RowGrid {
            kind: Kind::Blocks { ty, grid, bytes },
            group: g,
            levels: grid.levels(),
            params,
            len,
        }
    }

    pub(crate) fn affine(bits: u8, group: usize, params: Vec<GroupParams>, len: usize) -> RowGrid {
        RowGrid {
            kind: Kind::Affine { bits },
            group,
            levels: Levels::Affine {
                qmax: (1 << bits) - 1,
            },
            params,
            len,
        }
    }

    /// Elements covered.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The block type, or None for an affine layout.
    pub fn ty(&self) -> Option<GgmlType> {
        match &self.kind {
            Kind::Blocks { ty, .. } => Some(*ty),
            Kind::Affine { .. } => None,
        }
    }

    #[inline(always)]
    pub fn params_of(&self, i: usize) -> &GroupParams {
        &self.params[i / self.group]
    }

    /// The value code `code` stands for at element `i`.
    #[inline(always)]
    pub fn value(&self, i: usize, code: u8) -> f32 {
        self.params_of(i).value(self.levels.level(code))
    }

    /// The code nearest `v` at element `i`, rounded exactly as the type's own quantizer rounds.
    #[inline(always)]
    pub fn nearest(&self, i: usize, v: f32) -> u8 {
        self.levels.code(v, self.params_of(i))
    }

    /// Nearest code and its value.
    #[inline(always)]
    pub fn round(&self, i: usize, v: f32) -> (u8, f32) {
        let c = self.nearest(i, v);
        (c, self.value(i, c))
    }

    /// The codes as fitted (round-to-nearest's), for block types; affine grids have none stored.
    pub fn fitted_codes(&self) -> Option<Vec<u8>> {
        match &self.kind {
            Kind::Blocks { ty, grid, bytes } => {
                let be = ty.block_elems();
                let mut codes = vec![0u8; self.len];
                for (blk, c) in bytes.chunks_exact(ty.block_bytes()).zip(codes.chunks_exact_mut(be)) {
                    grid.read_codes(blk, c);
                }
                Some(codes)
            }
            Kind::Affine { .. } => None,
        }
    }

    /// Nearest codes for a whole slice of values.
    pub fn nearest_codes(&self, values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| self.nearest(i, v))
            .collect()
    }

    /// (b): the blocks with this grid's scales and `codes` (one per element). Affine grids have
    /// no block bytes: take their codes and [`params`](Self::params) directly.
    pub fn encode(&self, codes: &[u8], dst: &mut [u8]) -> Result<(), FormatError> {
        let Kind::Blocks { ty, grid, bytes } = &self.kind else {
            return Err(FormatError::InvalidParameter(
                "an affine grid has no block bytes to encode".into(),
            ));
        };
        if codes.len() != self.len || dst.len() != bytes.len() {
            return Err(FormatError::ByteLength {
                ty: *ty,
                expected: bytes.len(),
                got: dst.len(),
            });
        }
        let n = self.levels.n_codes();
        if let Some(c) = codes.iter().find(|&&c| c as usize >= n) {
            return Err(FormatError::InvalidParameter(format!(
                "{ty}: code {c} outside its {n} levels"
            )));
        }
        dst.copy_from_slice(bytes);
        let be = ty.block_elems();
        for (blk, c) in dst.chunks_exact_mut(ty.block_bytes()).zip(codes.chunks_exact(be)) {
            grid.write_codes(blk, c);
        }
        Ok(())
    }

    /// Multiplies the stored scale of block `b` by `r` (a clipping candidate); the block's group
    /// parameters follow. Affine grids scale their groups in block units of one group.
    pub fn rescale_block(&mut self, b: usize, r: f32) {
        match &mut self.kind {
            Kind::Blocks { ty, grid, bytes } => {
                let (be, bb) = (ty.block_elems(), ty.block_bytes());
                let blk = &mut bytes[b * bb..(b + 1) * bb];
                grid.rescale(blk, r);
                let per = be / self.group;
                grid.params(blk, &mut self.params[b * per..(b + 1) * per]);
            }
            Kind::Affine { .. } => {
                let p = &mut self.params[b];
                p.scale = crate::float::round_f16(p.scale * r);
            }
        }
    }

    /// Sets group `j`'s parameters to the representable ones nearest `p`; false when the type
    /// cannot (no free offset).
    pub fn set_group(&mut self, j: usize, p: GroupParams) -> bool {
        match &mut self.kind {
            Kind::Blocks { ty, grid, bytes } => {
                let (be, bb) = (ty.block_elems(), ty.block_bytes());
                let per = be / self.group;
                let b = j / per;
                let blk = &mut bytes[b * bb..(b + 1) * bb];
                if !grid.set_params(blk, j % per, p) {
                    return false;
                }
                grid.params(blk, &mut self.params[b * per..(b + 1) * per]);
                true
            }
            Kind::Affine { bits } => {
                let qmax = ((1u32 << *bits) - 1) as f32;
                let scale = crate::float::round_f16(p.scale);
                self.params[j] = GroupParams {
                    scale,
                    offset: 0.0,
                    zero: p.zero.round_ties_even().clamp(0.0, qmax),
                };
                true
            }
        }
    }

    /// Elements per block (the unit a clipping search rescales).
    pub fn block_elems(&self) -> usize {
        match &self.kind {
            Kind::Blocks { ty, .. } => ty.block_elems(),
            Kind::Affine { .. } => self.group,
        }
    }
}
