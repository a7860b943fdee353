//! The forward pass: a batch of tokens at consecutive positions in, logits out. The same code
//! serves prompt processing (many tokens) and generation (one token); each layer is the six
//! stages of [`super::layer`], every matrix product through [`crate::kernels::matmul_with`] with
//! the model's [`MatmulOptions`](crate::kernels::MatmulOptions).

use super::error::{ModelError, Result};
use super::layer::LinearObserver;
use super::weights::InputSite;
use super::Model;
use crate::kv_cache::KvCache;

impl Model<'_> {
    /// Runs `tokens` at positions `cache.len() ..`, appending them to the cache, and returns the
    /// logits (`n_vocab` per token) of `tokens[first_output..]` only: perplexity needs the second
    /// half of a window, generation only the last token, and the LM head is the largest product.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        first_output: usize,
    ) -> Result<Vec<f32>> {
        self.forward_observed(tokens, cache, first_output, None)
    }

    /// [`forward`](Self::forward) with an observer that sees the input rows of every linear
    /// product (an importance matrix is collected this way).
    pub fn forward_observed(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        first_output: usize,
        observer: Option<&mut dyn LinearObserver>,
    ) -> Result<Vec<f32>> {
        // Run the whole pass on a pool thread. Called from outside the pool, every parallel step
        // would be injected into it while this thread blocks on a condition variable — hundreds
        // of cross-thread wake-ups per generated token. From inside, each step is a cheap fork.
        if rayon::current_thread_index().is_none() {
            return rayon::scope(|_| self.forward_on_pool(tokens, cache, first_output, observer));
        }
        self.forward_on_pool(tokens, cache, first_output, observer)
    }

    fn forward_on_pool(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        first_output: usize,
        mut observer: Option<&mut dyn LinearObserver>,
    ) -> Result<Vec<f32>> {
        let c = &self.config;
        let n = tokens.len();
        if n == 0 {
            return Err(ModelError::NoTokens);
        }
        let pos0 = cache.len();
        let n_ctx = cache.n_ctx();
        if pos0 + n > n_ctx {
            return Err(ModelError::ContextFull {
                needed: pos0 + n,
                n_ctx,
            });
        }
        let first_output = first_output.min(n);
        let mut x = self.embed_tokens(tokens)?;
        let ropes = self.ropes(pos0, n);
        let mut see = |il: usize, site: InputSite, rows: &[f32]| {
            if let Some(o) = observer.as_deref_mut() {
                o.observe(il, site, rows, n);
            }
        };
        for il in 0..c.n_layer {
            let h = self.attn_input(il, &x);
            see(il, InputSite::AttnIn, &h);
            let att = self.attn_mix_cached(il, &h, n, &mut cache.layers[il], n_ctx, pos0, &ropes);
            drop(h);
            see(il, InputSite::AttnOut, &att);
            self.attn_output(il, &att, &mut x, n);
            drop(att);
            let h = self.ffn_input(il, &x);
            see(il, InputSite::FfnIn, &h);
            let act = self.ffn_hidden(il, &h, n);
            drop(h);
            see(il, InputSite::FfnOut, &act);
            self.ffn_output(il, &act, &mut x, n);
        }
        cache.advance(n);

        let n_out = n - first_output;
        let last = self.head_input(&x[first_output * c.n_embd..]);
        if let (Some(o), true) = (observer.as_deref_mut(), n_out > 0) {
            o.observe(c.n_layer, InputSite::Head, &last, n_out);
        }
        Ok(self.logits(&last, n_out))
    }
}
