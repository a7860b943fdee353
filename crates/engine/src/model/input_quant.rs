//! Quantized activations: what a linear product reads when its *input* is rounded too (W8A8).
//!
//! The engine's products take f32 rows. An [`InputQuantizer`] set on the model
//! ([`Model::input_quant`](super::Model)) rounds the rows entering each layer linear, by site,
//! before the product reads them — fake quantization: the rounded values are exactly what an
//! int8 × int8 product with those scales would see, so the measured accuracy is the scheme's.
//! Scales come from calibration (static) or from each token's own rows (dynamic); choosing them
//! is `lowbit-calib`'s job, the engine only applies them.

use super::weights::InputSite;
use std::borrow::Cow;

/// Rounds the input rows of one site in place: `x` holds rows of `cols` values.
pub trait InputQuantizer: Send + Sync {
    /// `layer` is the layer index (`n_layer` for the LM head's site).
    fn quantize_rows(&self, layer: usize, site: InputSite, x: &mut [f32], cols: usize);
}

impl super::Model<'_> {
    /// The rows a site's products read: `x` itself, or its quantized copy.
    pub(crate) fn site_input<'x>(&self, layer: usize, site: InputSite, x: &'x [f32], n: usize) -> Cow<'x, [f32]> {
        match &self.input_quant {
            Some(q) if n > 0 => {
                let mut v = x.to_vec();
                q.quantize_rows(layer, site, &mut v, x.len() / n);
                Cow::Owned(v)
            }
            _ => Cow::Borrowed(x),
        }
    }
}
