//! llama.cpp importance matrices: per-column mean squared activations that tell a quantizer
//! which weights matter.
//!
//! Two on-disk forms exist. The legacy `.dat` stores per tensor `(sum/count) * ncall` and a call
//! count, so importance is `value / ncall`. The GGUF form stores raw sums (`<name>.in_sum2`,
//! shape `[row_len, n_experts]`) and per-expert token counts (`<name>.counts`, shape
//! `[1, n_experts]`), so importance is `sum / count` per expert. Both normalise to the same
//! importance values here, with llama.cpp's conventions for empty data (legacy: `ncall <= 0`
//! keeps the stored values; GGUF: an expert with zero count gets weight 1).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use lowbit_formats::GgmlType;

use crate::error::{FileError, Result};
use crate::gguf::{GgufFile, GgufWriter, StrArray, TensorSpec, Value};

const SUM_SUFFIX: &str = ".in_sum2";
const COUNT_SUFFIX: &str = ".counts";
const KEY_DATASETS: &str = "imatrix.datasets";
const KEY_CHUNK_COUNT: &str = "imatrix.chunk_count";
const KEY_CHUNK_SIZE: &str = "imatrix.chunk_size";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImatrixFormat {
    /// `llama-imatrix --output-format dat`.
    Legacy,
    Gguf,
}

/// The statistics for one weight tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct ImatrixEntry {
    pub name: String,
    /// Columns per expert. Legacy files do not record an expert split, so there it is the full
    /// value count and `n_experts` is 1.
    pub row_len: usize,
    pub n_experts: usize,
    /// As stored: raw sums (GGUF) or `(sum/count)*ncall` (legacy); `row_len * n_experts` values.
    pub sums: Vec<f32>,
    /// Per-expert token counts (GGUF) or `[ncall]` (legacy).
    pub counts: Vec<f32>,
    importance: Vec<f32>,
}

impl ImatrixEntry {
    /// Per-column importance, `row_len * n_experts` values (expert-major).
    pub fn importance(&self) -> &[f32] {
        &self.importance
    }

    /// One expert's `row_len` importance values.
    pub fn expert(&self, e: usize) -> Option<&[f32]> {
        self.importance
            .get(e * self.row_len..(e + 1) * self.row_len)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Imatrix {
    format: ImatrixFormat,
    entries: Vec<ImatrixEntry>,
    index: HashMap<String, usize>,
    datasets: Vec<String>,
    chunk_count: Option<u32>,
    chunk_size: Option<u32>,
}

impl Default for Imatrix {
    fn default() -> Self {
        Imatrix::new()
    }
}

impl Imatrix {
    /// An empty GGUF-form imatrix, to be filled with [`insert`](Self::insert) and saved.
    pub fn new() -> Imatrix {
        Imatrix {
            format: ImatrixFormat::Gguf,
            entries: Vec::new(),
            index: HashMap::new(),
            datasets: Vec::new(),
            chunk_count: None,
            chunk_size: None,
        }
    }

    /// Loads either form, chosen by the GGUF magic.
    pub fn load(path: impl AsRef<Path>) -> Result<Imatrix> {
        let path = path.as_ref();
        let mut magic = [0u8; 4];
        {
            use std::io::Read;
            let mut f = std::fs::File::open(path).map_err(|e| FileError::io(path, "opening", e))?;
            let n = f
                .read(&mut magic)
                .map_err(|e| FileError::io(path, "reading", e))?;
            if n < 4 {
                magic = [0; 4];
            }
        }
        if &magic == crate::gguf::MAGIC {
            load_gguf(path)
        } else {
            load_legacy(path)
        }
    }

    pub fn format(&self) -> ImatrixFormat {
        self.format
    }

    /// Importance for a weight tensor (e.g. `blk.0.attn_q.weight`): one value per column, times
    /// the number of experts for MoE tensors.
    pub fn get(&self, tensor: &str) -> Option<&[f32]> {
        self.entry(tensor).map(ImatrixEntry::importance)
    }

    pub fn entry(&self, tensor: &str) -> Option<&ImatrixEntry> {
        self.index.get(tensor).map(|&i| &self.entries[i])
    }

    /// Entries sorted by name.
    pub fn entries(&self) -> &[ImatrixEntry] {
        &self.entries
    }

    pub fn datasets(&self) -> &[String] {
        &self.datasets
    }

    /// The first (usually only) dataset name.
    pub fn dataset(&self) -> Option<&str> {
        self.datasets.first().map(String::as_str)
    }

    pub fn chunk_count(&self) -> Option<u32> {
        self.chunk_count
    }

    pub fn chunk_size(&self) -> Option<u32> {
        self.chunk_size
    }

    pub fn set_datasets(&mut self, datasets: Vec<String>) {
        self.datasets = datasets;
    }

    pub fn set_chunks(&mut self, chunk_count: u32, chunk_size: u32) {
        self.chunk_count = Some(chunk_count);
        self.chunk_size = Some(chunk_size);
    }

    /// Adds or replaces the statistics for `tensor` in GGUF form: `sums` holds
    /// `row_len * counts.len()` raw sums of squared activations, `counts` the tokens seen per
    /// expert.
    pub fn insert(
        &mut self,
        tensor: &str,
        row_len: usize,
        sums: Vec<f32>,
        counts: Vec<f32>,
    ) -> Result<()> {
        let bad = |m: String| FileError::InvalidData(format!("imatrix entry '{tensor}': {m}"));
        let entry = make_gguf_entry(tensor, row_len, sums, counts).map_err(bad)?;
        match self.index.get(tensor) {
            Some(&i) => self.entries[i] = entry,
            None => {
                let at = self.entries.partition_point(|e| e.name.as_str() < tensor);
                self.entries.insert(at, entry);
                self.reindex();
            }
        }
        Ok(())
    }

    fn reindex(&mut self) {
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
    }

    /// Writes the GGUF form llama.cpp's `llama-quantize --imatrix` accepts (it requires the
    /// dataset, chunk count and chunk size keys, so absent values are written as empty / 0).
    /// Entries loaded from a legacy file are written with `counts = [ncall]`, which keeps their
    /// importance unchanged whenever `ncall > 0`.
    pub fn save_gguf(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if self.entries.is_empty() {
            return Err(FileError::invalid(
                path,
                "refusing to write an imatrix with no entries",
            ));
        }
        let meta = vec![
            ("general.type".to_string(), Value::from("imatrix")),
            (
                KEY_DATASETS.to_string(),
                Value::from(self.datasets.iter().collect::<StrArray>()),
            ),
            (
                KEY_CHUNK_COUNT.to_string(),
                Value::U32(self.chunk_count.unwrap_or(0)),
            ),
            (
                KEY_CHUNK_SIZE.to_string(),
                Value::U32(self.chunk_size.unwrap_or(0)),
            ),
        ];
        let mut specs = Vec::with_capacity(self.entries.len() * 2);
        for e in &self.entries {
            specs.push(TensorSpec::new(
                format!("{}{SUM_SUFFIX}", e.name),
                &[e.row_len as u64, e.n_experts as u64],
                GgmlType::F32,
            ));
            specs.push(TensorSpec::new(
                format!("{}{COUNT_SUFFIX}", e.name),
                &[1, e.n_experts as u64],
                GgmlType::F32,
            ));
        }
        let mut w = GgufWriter::create(path, meta, specs)?;
        let mut buf = Vec::new();
        for e in &self.entries {
            for (suffix, vals) in [(SUM_SUFFIX, &e.sums), (COUNT_SUFFIX, &e.counts)] {
                buf.clear();
                buf.extend(vals.iter().flat_map(|x| x.to_le_bytes()));
                w.write_tensor(&format!("{}{suffix}", e.name), &buf)?;
            }
        }
        w.finish()
    }
}

fn make_gguf_entry(
    name: &str,
    row_len: usize,
    sums: Vec<f32>,
    counts: Vec<f32>,
) -> Result<ImatrixEntry, String> {
    let n_experts = counts.len();
    if row_len == 0 || n_experts == 0 {
        return Err("row length and expert count must be nonzero".into());
    }
    if row_len.checked_mul(n_experts) != Some(sums.len()) {
        return Err(format!(
            "{} sums do not match {row_len} columns x {n_experts} experts",
            sums.len()
        ));
    }
    if let Some(c) = counts.iter().find(|c| !c.is_finite() || **c < 0.0) {
        return Err(format!("invalid token count {c}"));
    }
    let mut importance = Vec::with_capacity(sums.len());
    for (row, &count) in sums.chunks_exact(row_len).zip(&counts) {
        // llama.cpp rounds the stored float count to an integer before dividing.
        let count = count.round();
        if count > 0.0 {
            importance.extend(row.iter().map(|&s| s / count));
        } else {
            importance.extend(std::iter::repeat(1.0).take(row_len));
        }
    }
    Ok(ImatrixEntry {
        name: name.to_owned(),
        row_len,
        n_experts,
        sums,
        counts,
        importance,
    })
}

fn load_gguf(path: &Path) -> Result<Imatrix> {
    let f = GgufFile::open(path)?;
    let bad = |m: String| FileError::invalid(path, m);
    let datasets = match f.get(KEY_DATASETS) {
        None => Vec::new(),
        Some(_) => f
            .get_str_array(KEY_DATASETS)?
            .iter()
            .map(str::to_owned)
            .collect(),
    };
    let opt_u32 = |k: &str| f.get(k).map(|_| f.get_u32(k)).transpose();
    let chunk_count = opt_u32(KEY_CHUNK_COUNT)?;
    let chunk_size = opt_u32(KEY_CHUNK_SIZE)?;

    let mut pairs: BTreeMap<&str, [Option<&crate::gguf::TensorInfo>; 2]> = BTreeMap::new();
    for t in f.tensors() {
        let (base, slot) = if let Some(b) = t.name.strip_suffix(SUM_SUFFIX) {
            (b, 0)
        } else if let Some(b) = t.name.strip_suffix(COUNT_SUFFIX) {
            (b, 1)
        } else {
            continue; // llama.cpp ignores other tensors too
        };
        if t.ty != GgmlType::F32 {
            return Err(bad(format!(
                "tensor '{}' is {}, expected F32",
                t.name, t.ty
            )));
        }
        pairs.entry(base).or_default()[slot] = Some(t);
    }
    if pairs.is_empty() {
        return Err(bad(
            "no imatrix entries (no '*.in_sum2' / '*.counts' tensors)".into(),
        ));
    }
    let floats = |t: &crate::gguf::TensorInfo| -> Vec<f32> {
        f.tensor_data(t)
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect()
    };
    let mut entries = Vec::with_capacity(pairs.len());
    for (name, pair) in pairs {
        let [Some(sum), Some(count)] = pair else {
            return Err(bad(format!(
                "entry '{name}' has only one of '{SUM_SUFFIX}' and '{COUNT_SUFFIX}'"
            )));
        };
        let n_experts = count.n_elements() as usize;
        if sum.dims.len() > 2 || sum.n_rows() != n_experts as u64 {
            return Err(bad(format!(
                "entry '{name}': in_sum2 shape {:?} does not match {n_experts} counts",
                sum.dims
            )));
        }
        let e = make_gguf_entry(name, sum.dims[0] as usize, floats(sum), floats(count))
            .map_err(|m| bad(format!("entry '{name}': {m}")))?;
        entries.push(e);
    }
    let mut im = Imatrix {
        format: ImatrixFormat::Gguf,
        entries,
        index: HashMap::new(),
        datasets,
        chunk_count,
        chunk_size,
    };
    im.reindex();
    Ok(im)
}

/// Sequential reader over the legacy file's bytes; every length is checked against what is left.
struct Legacy<'a> {
    path: &'a Path,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Legacy<'a> {
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(FileError::Truncated {
                path: self.path.into(),
                offset: self.pos as u64,
                need: n as u64,
                left: self.left() as u64,
                what: what(),
            });
        }
        self.pos += n;
        Ok(&self.buf[self.pos - n..self.pos])
    }

    fn i32(&mut self, what: &dyn Fn() -> String) -> Result<i32> {
        Ok(i32::from_le_bytes(
            self.take(4, what)?.try_into().expect("4 bytes"),
        ))
    }

    /// A non-negative i32 count of `size`-byte items that must fit in what is left.
    fn count(&mut self, size: usize, min: i32, what: &dyn Fn() -> String) -> Result<usize> {
        let offset = self.pos as u64;
        let n = self.i32(what)?;
        if n < min {
            return Err(FileError::invalid(
                self.path,
                format!("{} at offset {offset} is {n}", what()),
            ));
        }
        let n = n as usize;
        if n * size > self.left() {
            return Err(FileError::CountTooLarge {
                path: self.path.into(),
                offset,
                what: what(),
                count: n as u64,
                left: self.left() as u64,
            });
        }
        Ok(n)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String> {
        let n = self.count(1, 0, &|| format!("length of {}", what()))?;
        let offset = self.pos;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| {
            FileError::invalid(
                self.path,
                format!("{} at offset {offset} is not valid UTF-8", what()),
            )
        })
    }
}

fn load_legacy(path: &Path) -> Result<Imatrix> {
    let buf = std::fs::read(path).map_err(|e| FileError::io(path, "reading", e))?;
    let mut r = Legacy {
        path,
        buf: &buf,
        pos: 0,
    };
    // Smallest entry: name length, ncall, nval and one value.
    let n = r.count(16, 1, &|| "entry count".into())?;
    let mut entries = Vec::with_capacity(n);
    let mut index = HashMap::with_capacity(n);
    for i in 0..n {
        let name = r.string(&|| format!("name of entry {i}"))?;
        let ncall = r.i32(&|| format!("ncall of '{name}'"))?;
        let nval = r.count(4, 1, &|| format!("value count of '{name}'"))?;
        let bytes = r.take(nval * 4, &|| format!("values of '{name}'"))?;
        let sums: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        let importance = if ncall > 0 {
            sums.iter().map(|&v| v / ncall as f32).collect()
        } else {
            sums.clone()
        };
        if index.insert(name.clone(), ()).is_some() {
            return Err(FileError::invalid(
                path,
                format!("entry '{name}' appears twice"),
            ));
        }
        entries.push(ImatrixEntry {
            name,
            row_len: nval,
            n_experts: 1,
            sums,
            counts: vec![ncall as f32],
            importance,
        });
    }
    let (mut chunk_count, mut datasets) = (None, Vec::new());
    if r.left() > 0 {
        let c = r.i32(&|| "chunk count".into())?;
        chunk_count = Some(
            u32::try_from(c)
                .map_err(|_| FileError::invalid(path, format!("negative chunk count {c}")))?,
        );
        if r.left() > 0 {
            let d = r.string(&|| "dataset name".into())?;
            if !d.is_empty() {
                datasets.push(d);
            }
        }
        if r.left() > 0 {
            return Err(FileError::invalid(
                path,
                format!("{} unexpected bytes at offset {}", r.left(), r.pos),
            ));
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let mut im = Imatrix {
        format: ImatrixFormat::Legacy,
        entries,
        index: HashMap::new(),
        datasets,
        chunk_count,
        chunk_size: None,
    };
    im.reindex();
    Ok(im)
}
