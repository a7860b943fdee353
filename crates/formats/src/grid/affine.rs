//! Affine integer rows as grids: `value = (code − zero) · scale`, one (scale, zero) per group of
//! consecutive columns or per row, scales rounded to f16 because that is how GPTQ, AWQ and
//! compressed-tensors checkpoints store them (so a result measured in memory is the result a
//! checkpoint would give).

use super::{GroupParams, Levels, RowGrid};
use crate::affine::params_for_range;
use crate::float::round_f16;
use crate::FormatError;

/// One affine integer layout, as `--type int4-g128` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AffineRow {
    /// Code width, 2..=8.
    pub bits: u8,
    /// Zero point fixed at `2^(bits−1)` (signed codes) instead of chosen per group.
    pub symmetric: bool,
    /// Columns per group; None = one group per row (per output channel).
    pub group: Option<usize>,
}

impl AffineRow {
    /// Columns sharing parameters in a row of `cols`.
    pub fn group_len(&self, cols: usize) -> usize {
        self.group.unwrap_or(cols)
    }

    /// Checks the layout against a row length.
    pub fn check(&self, cols: usize) -> Result<(), FormatError> {
        if !(2..=8).contains(&self.bits) {
            return Err(FormatError::InvalidParameter(format!(
                "{} bits: affine layouts have 2 to 8",
                self.bits
            )));
        }
        let g = self.group_len(cols);
        if g == 0 || cols % g != 0 {
            return Err(FormatError::InvalidParameter(format!(
                "groups of {g} do not split a row of {cols} (choose a group size that divides it)"
            )));
        }
        Ok(())
    }

    /// Bits per weight including one f16 scale (and for asymmetric layouts a packed zero point
    /// of `bits` bits) per group, as the checkpoints store them.
    pub fn bits_per_weight(&self, cols: usize) -> f64 {
        let g = self.group_len(cols) as f64;
        let per_group = 16.0 + if self.symmetric { 0.0 } else { self.bits as f64 };
        self.bits as f64 + per_group / g
    }

    /// The name `--type` accepts: `int4-g128`, `int8-ch`, with `-sym` when symmetric.
    pub fn name(&self) -> String {
        let g = match self.group {
            Some(g) => format!("g{g}"),
            None => "ch".into(),
        };
        let s = if self.symmetric { "-sym" } else { "" };
        format!("int{}-{g}{s}", self.bits)
    }

    /// Parses `intB-gG`, `intB-ch`, optionally followed by `-sym` or `-asym` (asymmetric is the
    /// default: it measured better on every model here).
    pub fn parse(s: &str) -> Option<AffineRow> {
        let s = s.to_ascii_lowercase();
        let rest = s.strip_prefix("int")?;
        let mut parts = rest.split('-');
        let bits: u8 = parts.next()?.parse().ok()?;
        let group = match parts.next()? {
            "ch" => None,
            g => Some(g.strip_prefix('g')?.parse::<usize>().ok().filter(|&g| g > 0)?),
        };
        let symmetric = match parts.next() {
            None | Some("asym") => false,
            Some("sym") => true,
            Some(_) => return None,
        };
        if parts.next().is_some() || !(2..=8).contains(&bits) {
            return None;
        }
        Some(AffineRow {
            bits,
            symmetric,
            group,
        })
    }
}

/// Shrink factors of the clipping search: 1, 0.98, …, 0.70.
const SHRINK_STEPS: u32 = 15;
const SHRINK_MIN: f32 = 0.7;

/// Fits every group of `src` (one row): min/max range, then a clipping search over shrink factors
/// that keeps the range with the least importance-weighted squared error (importance: one weight
/// per element, e.g. the calibration Σx² of its column).
pub fn affine_row(
    src: &[f32],
    layout: &AffineRow,
    importance: Option<&[f32]>,
) -> Result<RowGrid, FormatError> {
    layout.check(src.len())?;
    if let Some(w) = importance {
        if w.len() != src.len() {
            return Err(FormatError::ImportanceLength {
                expected: src.len(),
                got: w.len(),
            });
        }
    }
    let g = layout.group_len(src.len());
    let levels = Levels::Affine {
        qmax: (1 << layout.bits) - 1,
    };
    let params = src
        .chunks_exact(g)
        .enumerate()
        .map(|(k, x)| {
            let w = importance.map(|w| &w[k * g..(k + 1) * g]);
            fit_group(x, w, layout, &levels)
        })
        .collect();
    Ok(RowGrid::affine(layout.bits, g, params, src.len()))
}

fn fit_group(x: &[f32], w: Option<&[f32]>, layout: &AffineRow, levels: &Levels) -> GroupParams {
    let (lo, hi) = x
        .iter()
        .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let params = |shrink: f32| {
        let (s, z) = params_for_range(shrink * lo, shrink * hi, layout.bits, layout.symmetric);
        GroupParams {
            scale: round_f16(s),
            offset: 0.0,
            zero: z as f32,
        }
    };
    let error = |p: &GroupParams| -> f64 {
        x.iter()
            .enumerate()
            .map(|(j, &v)| {
                let e = (v - p.value(levels.level(levels.code(v, p)))) as f64;
                w.map_or(1.0, |w| w[j] as f64) * e * e
            })
            .sum()
    };
    let mut best = params(1.0);
    let mut best_err = error(&best);
    for k in 1..=SHRINK_STEPS {
        let p = params(1.0 - k as f32 * (1.0 - SHRINK_MIN) / SHRINK_STEPS as f32);
        let e = error(&p);
        if e < best_err {
            (best, best_err) = (p, e);
        }
    }
    best
}
