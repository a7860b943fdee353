//! # lowbit-files
//!
//! Bytes on disk: reading and writing GGUF, safetensors and Hugging Face model folders, and
//! llama.cpp's importance-matrix files. Everything read from a file is validated against the file's
//! own length before any allocation, so a hostile header cannot make lowbit allocate more than the
//! file holds.
