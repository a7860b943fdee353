pub mod compare;
pub mod dequantize;
pub mod embed;
pub mod export_hf;
pub mod inspect;
pub mod quantize;
