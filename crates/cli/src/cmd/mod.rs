pub mod compare;
pub mod dequantize;
pub mod embed;
pub mod export_hf;
pub mod generate;
pub mod inspect;
pub mod perplexity;
pub mod quantize;
