//! # lowbit-calib
//!
//! Calibration: everything that needs the model *run* to quantize it well. It sits above both
//! `lowbit-quant` (the methods, which never run a model) and `lowbit-engine` (which knows no
//! quantizer), and connects them:
//!
//! - [`windows`]: calibration text → token windows, cut as llama-imatrix cuts them.
//! - [`collect`]: an input site's statistics — `Σx²`, `Σ|x|`, the Hessian `XᵀX`.
//! - [`imatrix`]: importance matrices from full forward passes (llama.cpp's file format).
//! - [`sequential`]: the layer-by-layer driver for GPTQ and AWQ (layer `i + 1` calibrated on
//!   the outputs of the quantized layer `i`; memory bounded by one layer's activations).
//! - [`quantize_file`]: `lowbit quantize` as a library call; [`inmemory`]: quantizing a loaded
//!   model for `perplexity --quantize` and `embed --quantize`.
//! - [`observers`] and [`act_quant`]: int8 activation ranges from calibration (minmax, moving
//!   average, percentile, MSE, entropy) or per token, applied through the engine's
//!   `InputQuantizer` (W8A8).
//! - [`sensitivity`], [`budget`], [`recipe`]: one type per tensor under a size or quality
//!   target, and the method × budget search with its report.

pub mod act_quant;
pub mod budget;
pub mod collect;
mod error;
pub mod heldout;
pub mod hf_checkpoint;
pub mod imatrix;
pub mod int8_weights;
pub mod inmemory;
pub mod observers;
pub mod quantize_file;
pub mod recipe;
pub mod report_html;
pub mod sensitivity;
pub mod sequential;
pub mod windows;

pub use error::CalibError;
pub use windows::CalibWindows;
