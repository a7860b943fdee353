//! What a tensor is quantized to: a GGUF block type, or one of lowbit's affine integer layouts
//! (`int4-g128`, `int3-g64-sym`, `int8-ch`), which have no GGUF type and are measured in memory
//! (and exported to Hugging Face checkpoints).

use lowbit_formats::grid::AffineRow;
use lowbit_formats::GgmlType;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Block(GgmlType),
    Affine(AffineRow),
}

impl Target {
    /// A block type name (`Q4_K`) or an affine layout (`int4-g128`).
    pub fn parse(s: &str) -> Option<Target> {
        if let Some(a) = AffineRow::parse(s) {
            return Some(Target::Affine(a));
        }
        GgmlType::from_name(&s.to_ascii_uppercase()).map(Target::Block)
    }

    pub fn name(&self) -> String {
        match self {
            Target::Block(t) => t.name().to_string(),
            Target::Affine(a) => a.name(),
        }
    }

    /// Why rows of `cols` cannot take this target, if they cannot.
    pub fn check_row(&self, cols: usize) -> Result<(), String> {
        match self {
            Target::Block(t) => {
                if cols % t.block_elems() != 0 {
                    Err(format!(
                        "rows of {cols} do not split into {t}'s {}-element blocks",
                        t.block_elems()
                    ))
                } else {
                    Ok(())
                }
            }
            Target::Affine(a) => a.check(cols).map_err(|e| e.to_string()),
        }
    }

    /// Whether the target has a free offset (min) per group: what HQQ optimises.
    pub fn has_offset(&self) -> bool {
        match self {
            Target::Block(t) => matches!(
                t,
                GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q2_K | GgmlType::Q4_K | GgmlType::Q5_K
            ),
            Target::Affine(a) => !a.symmetric,
        }
    }

    /// Plain float storage: nothing to solve, every method just converts.
    pub fn is_float(&self) -> bool {
        matches!(
            self,
            Target::Block(GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::F64)
        )
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}
