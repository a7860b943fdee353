//! Int8 weights for the engine's integer W8A8 products: taken from what a method produced (the
//! codes of an `int8-ch-sym` layout) or from a checkpoint folder, and handed to the model per
//! linear. The model keeps its float matrices for everything else; a linear without int8 weights,
//! or a site whose activations are not one int8 range per row, stays on fake quantization.

use crate::error::CalibError;
use lowbit_engine::kernels::int8::Int8Matrix;
use lowbit_engine::model::{LinearId, Model};
use lowbit_quant::methods::{Encoded, QuantOutcome};
use std::collections::BTreeMap;

/// One linear's int8 form: GGUF tensor name, row-major codes (`rows × cols`), one scale per row.
pub type Int8Linear = (String, Vec<i8>, Vec<f32>);

/// The int8 forms among a method's outcomes: symmetric 8-bit affine codes, one group per row.
pub fn from_outcomes(outcomes: &BTreeMap<String, QuantOutcome>) -> Vec<Int8Linear> {
    outcomes
        .iter()
        .filter_map(|(name, o)| match &o.encoded {
            Encoded::Affine(t)
                if t.layout.bits == 8
                    && t.layout.symmetric
                    && t.layout.group.is_none()
                    && t.params.iter().all(|p| p.zero == 128.0 && p.offset == 0.0) =>
            {
                let codes = t.codes.iter().map(|&c| (c as i16 - 128) as i8).collect();
                let scales = t.params.iter().map(|p| p.scale).collect();
                Some((name.clone(), codes, scales))
            }
            _ => None,
        })
        .collect()
}

/// Gives the model's layer linears their int8 forms; names that are not layer linears (an LM
/// head) are left out. Returns how many were installed.
pub fn install(model: &mut Model, linears: Vec<Int8Linear>) -> Result<usize, CalibError> {
    let mut n = 0;
    for (name, codes, scales) in linears {
        let Some((il, id)) = LinearId::parse_tensor_name(&name) else { continue };
        let m = model.weights.layers.get(il).map(|l| l.linear(id));
        let Some((rows, cols)) = m.map(|m| (m.rows, m.cols)) else { continue };
        let packed = Int8Matrix::new(rows, cols, &codes, &scales).ok_or_else(|| {
            CalibError::Invalid(format!(
                "{name}: {} int8 codes and {} scales do not fit its {rows} × {cols} shape",
                codes.len(),
                scales.len()
            ))
        })?;
        model.set_int8_linear(il, id, packed).map_err(|e| CalibError::Invalid(format!("{name}: {e}")))?;
        n += 1;
    }
    Ok(n)
}
