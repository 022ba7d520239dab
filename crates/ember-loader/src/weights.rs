//! [`SafetensorsWeights`]: memory-mapped safetensors shards indexed by tensor
//! name, handing out zero-copy [`RawTensor`]s or dtype-converted copies.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::SafeTensors;

use crate::dtype::{WeightDtype, bytes_to_f32, convert_bytes};
use crate::error::{LoaderError, Result};

/// One memory-mapped shard.
struct Shard {
    path: PathBuf,
    mmap: Mmap,
}

/// Where a tensor lives: shard index, stored dtype, shape and absolute byte range.
struct Entry {
    shard: usize,
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// A tensor's bytes borrowed straight from the memory map.
#[derive(Debug, Clone)]
pub struct RawTensor<'a> {
    /// Tensor name as stored in the checkpoint.
    pub name: &'a str,
    /// Stored dtype.
    pub dtype: WeightDtype,
    /// Shape, row-major.
    pub shape: Vec<usize>,
    /// Little-endian element bytes (`shape.product() * dtype.size_in_bytes()`),
    /// with no alignment guarantee.
    pub bytes: &'a [u8],
}

/// All tensors of a (possibly sharded) safetensors checkpoint, memory-mapped.
///
/// The files must not be modified while this value is alive (the usual
/// memory-map caveat).
pub struct SafetensorsWeights {
    shards: Vec<Shard>,
    tensors: HashMap<String, Entry>,
}

impl std::fmt::Debug for SafetensorsWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetensorsWeights")
            .field("files", &self.files())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl SafetensorsWeights {
    /// Memory-maps every shard and indexes its tensors.
    ///
    /// Errors name the offending file: missing/unreadable file, truncated or
    /// malformed header, or a tensor name that occurs in two shards. Tensors
    /// with unsupported dtypes are indexed; using them is an error.
    pub fn open(paths: &[PathBuf]) -> Result<Self> {
        if paths.is_empty() {
            return Err(LoaderError::NoShards);
        }
        let mut shards = Vec::with_capacity(paths.len());
        let mut tensors: HashMap<String, Entry> = HashMap::new();
        for (shard_idx, path) in paths.iter().enumerate() {
            let file = File::open(path).map_err(|e| LoaderError::io(path, e))?;
            // SAFETY: the map is read-only; like every mmap-based loader we rely
            // on the checkpoint not being modified while it is mapped.
            let mmap = unsafe { Mmap::map(&file) }.map_err(|e| LoaderError::io(path, e))?;
            let (header_len, metadata) =
                SafeTensors::read_metadata(&mmap).map_err(|e| LoaderError::Safetensors {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            let data_start = 8 + header_len;
            for (name, info) in metadata.tensors() {
                let entry = Entry {
                    shard: shard_idx,
                    dtype: info.dtype,
                    shape: info.shape.clone(),
                    start: data_start + info.data_offsets.0,
                    end: data_start + info.data_offsets.1,
                };
                if let Some(previous) = tensors.get(&name) {
                    return Err(LoaderError::DuplicateTensor {
                        name,
                        first: paths[previous.shard].clone(),
                        second: path.clone(),
                    });
                }
                tensors.insert(name, entry);
            }
            shards.push(Shard {
                path: path.clone(),
                mmap,
            });
        }
        Ok(Self { shards, tensors })
    }

    /// All tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the checkpoint holds no tensors at all.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Whether a tensor of that name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// The shard files, in the order given to [`Self::open`].
    pub fn files(&self) -> Vec<&Path> {
        self.shards.iter().map(|s| s.path.as_path()).collect()
    }

    /// The file holding tensor `name`.
    pub fn file_of(&self, name: &str) -> Result<&Path> {
        Ok(&self.shards[self.entry(name)?.shard].path)
    }

    /// Stored dtype of tensor `name` (error if missing or not F32/F16/BF16).
    pub fn dtype(&self, name: &str) -> Result<WeightDtype> {
        self.checked_dtype(name, self.entry(name)?)
    }

    /// Shape of tensor `name`.
    pub fn shape(&self, name: &str) -> Result<&[usize]> {
        Ok(&self.entry(name)?.shape)
    }

    /// Zero-copy view of tensor `name`.
    pub fn raw(&self, name: &str) -> Result<RawTensor<'_>> {
        let (key, entry) = self
            .tensors
            .get_key_value(name)
            .ok_or_else(|| self.not_found(name))?;
        let dtype = self.checked_dtype(name, entry)?;
        let shard = &self.shards[entry.shard];
        // Offsets were validated against the file length by the safetensors parser;
        // `get` keeps this panic-free regardless.
        let bytes =
            shard
                .mmap
                .get(entry.start..entry.end)
                .ok_or_else(|| LoaderError::Safetensors {
                    path: shard.path.clone(),
                    message: format!("byte range of tensor '{name}' lies outside the file"),
                })?;
        Ok(RawTensor {
            name: key,
            dtype,
            shape: entry.shape.clone(),
            bytes,
        })
    }

    /// Tensor `name` converted to f32 values, with its shape.
    pub fn to_f32(&self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let raw = self.raw(name)?;
        Ok((bytes_to_f32(raw.bytes, raw.dtype), raw.shape))
    }

    /// Tensor `name` as little-endian bytes of `target` dtype: borrowed when it
    /// is already stored that way, converted otherwise (e.g. BF16 to F16/F32
    /// for backends without bf16).
    pub fn to_dtype_bytes(&self, name: &str, target: WeightDtype) -> Result<Cow<'_, [u8]>> {
        let raw = self.raw(name)?;
        Ok(convert_bytes(raw.bytes, raw.dtype, target))
    }

    /// Total size in bytes of all tensor data (any dtype).
    pub fn total_bytes(&self) -> u64 {
        self.tensors
            .values()
            .map(|e| (e.end - e.start) as u64)
            .sum()
    }

    fn entry(&self, name: &str) -> Result<&Entry> {
        self.tensors.get(name).ok_or_else(|| self.not_found(name))
    }

    fn checked_dtype(&self, name: &str, entry: &Entry) -> Result<WeightDtype> {
        WeightDtype::from_safetensors(entry.dtype).ok_or_else(|| LoaderError::UnsupportedDtype {
            tensor: name.to_string(),
            dtype: format!("{:?}", entry.dtype),
            path: self.shards[entry.shard].path.clone(),
        })
    }

    fn not_found(&self, name: &str) -> LoaderError {
        let files = self
            .shards
            .iter()
            .map(|s| s.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        LoaderError::TensorNotFound {
            name: name.to_string(),
            files,
        }
    }
}
