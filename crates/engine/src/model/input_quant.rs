//! Quantized activations: what a linear product reads when its *input* is rounded too (W8A8).
//!
//! An [`InputQuantizer`] set on the model ([`Model::input_quant`](super::Model)) rounds the rows
//! entering each layer linear, by site. Scales come from calibration (static) or from each
//! token's own rows (dynamic); choosing them is `lowbit-calib`'s job, the engine applies them in
//! one of two ways, which round activations identically and differ only in float summation
//! order (and, for a checkpoint folder with bf16/f16 scales, in that fake quantization reads the
//! weights dequantized to that dtype, as transformers does, where integer products use
//! code × scale exactly, as vLLM does):
//!
//! * **Integer products** when every linear of the site holds int8 weights
//!   ([`Model::set_int8_linear`]) and the quantizer names an int8 range for the site
//!   ([`InputQuantizer::int8_range`]): the rows become int8 codes once per site and meet the int8
//!   weights in [`crate::kernels::int8`] — the speed W8A8 is for.
//! * **Fake quantization** otherwise: the rows are rounded and turned back into f32, and the
//!   usual products read them; the rounded values are exactly what an int8 product with those
//!   scales would see, so the measured accuracy is the scheme's (per-channel ranges, which an
//!   integer product cannot apply, are measured this way).

use super::error::{ModelError, Result};
use super::weights::{InputSite, LinearId};
use crate::kernels::int8::{matmul_int8, ActRange, Int8Acts, Int8Matrix};
use crate::kernels::matmul_with;
use crate::tensor::Matrix;
use std::borrow::Cow;

/// Rounds the input rows of one site in place: `x` holds rows of `cols` values.
pub trait InputQuantizer: Send + Sync {
    /// `layer` is the layer index (`n_layer` for the LM head's site).
    fn quantize_rows(&self, layer: usize, site: InputSite, x: &mut [f32], cols: usize);

    /// The site's rounding as one int8 range per row, when it is one (per-tensor static or
    /// per-token dynamic), so that integer products can apply it; `None` keeps the site on
    /// [`quantize_rows`](Self::quantize_rows).
    fn int8_range(&self, _layer: usize, _site: InputSite) -> Option<ActRange> {
        None
    }
}

/// The rows a site's products read: float (as they are, or fake-quantized) or int8 codes.
pub(crate) enum SiteRows<'x> {
    Float(Cow<'x, [f32]>),
    Int8(Int8Acts),
}

impl super::Model<'_> {
    /// The rows the products of `site` in layer `layer` read.
    pub(crate) fn site_input<'x>(&self, layer: usize, site: InputSite, x: &'x [f32], n: usize) -> SiteRows<'x> {
        let Some(q) = self.input_quant.as_deref().filter(|_| n > 0) else {
            return SiteRows::Float(Cow::Borrowed(x));
        };
        let cols = x.len() / n;
        let all_int8 = layer < self.weights.layers.len()
            && !site.linears().is_empty()
            && site.linears().iter().all(|id| self.weights.layers[layer].int8.contains_key(id));
        if let (true, Some(range)) = (all_int8, q.int8_range(layer, site)) {
            return SiteRows::Int8(Int8Acts::quantize(x, n, cols, range));
        }
        let mut v = x.to_vec();
        q.quantize_rows(layer, site, &mut v, cols);
        SiteRows::Float(Cow::Owned(v))
    }

    /// `out` = the product of linear `id` of layer `layer` with the site's rows.
    pub(crate) fn linear_product(&self, layer: usize, id: LinearId, rows: &SiteRows<'_>, n: usize, out: &mut [f32]) {
        let lw = &self.weights.layers[layer];
        match rows {
            SiteRows::Int8(a) => matmul_int8(&lw.int8[&id], a, out),
            SiteRows::Float(x) => matmul_with(&self.matmul, &lw.linear(id).q(), x, n, out),
        }
    }

    /// Gives linear `id` of layer `il` int8 weights, used whenever the model's input quantizer
    /// names an int8 range for its site (see the module doc). The float matrix stays for every
    /// other use; replacing it ([`set_linear`](Self::set_linear)) drops the int8 form.
    pub fn set_int8_linear(&mut self, il: usize, id: LinearId, m: Int8Matrix) -> Result<()> {
        let name = id.tensor_name(il);
        let layer = self.weights.layers.get_mut(il).ok_or_else(|| ModelError::MissingTensor(name.clone()))?;
        let slot: &Matrix<'_> = layer.linear(id);
        if (m.rows(), m.cols()) != (slot.rows, slot.cols) {
            return Err(ModelError::WrongShape {
                name,
                expected: vec![slot.cols as u64, slot.rows as u64],
                found: vec![m.cols() as u64, m.rows() as u64],
            });
        }
        layer.int8.insert(id, m);
        Ok(())
    }

    /// How many layer linears run as int8 × int8 products: those holding int8 weights whose
    /// whole site does and whose site the input quantizer gives one int8 range per row.
    pub fn int8_linears(&self) -> usize {
        let Some(q) = self.input_quant.as_deref() else { return 0 };
        let sites = [InputSite::AttnIn, InputSite::AttnOut, InputSite::FfnIn, InputSite::FfnOut];
        self.weights
            .layers
            .iter()
            .enumerate()
            .map(|(il, l)| {
                sites
                    .iter()
                    .filter(|&&s| q.int8_range(il, s).is_some() && s.linears().iter().all(|id| l.int8.contains_key(id)))
                    .map(|s| s.linears().len())
                    .sum::<usize>()
            })
            .sum()
    }
}
