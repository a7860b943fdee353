pub mod compare;
pub mod dequantize;
pub mod inspect;
pub mod quantize;
