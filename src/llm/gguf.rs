//! Opening a GGUF file: header, metadata and tensor table, checked before any weight is read.
//!
//! A GGUF file is a header (magic, version, counts), metadata key/values, a tensor table
//! (name, shape, type, offset), then aligned tensor data. [`GgufFile::open`] reads everything
//! but the data and checks that every tensor lies inside the file, so a truncated download
//! is reported at once, naming the file and the first tensor that is cut, instead of failing
//! half-way through loading.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};

use crate::{Error, Result};

/// A GGUF file whose header and tensor table have been read and checked.
pub struct GgufFile {
    pub path: PathBuf,
    pub content: Content,
    pub reader: BufReader<File>,
    /// File size in bytes.
    pub size: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("tensors", &self.content.tensor_infos.len())
            .field("metadata", &self.content.metadata.len())
            .field("size", &self.size)
            .finish()
    }
}

impl GgufFile {
    /// Opens `path`: a missing file, a file that is not GGUF, a cut header or a cut tensor
    /// are errors that name the file and say what to do.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
            });
        }
        let file = File::open(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(path.display().to_string(), e))?
            .len();
        let mut reader = BufReader::new(file);
        let mut magic = [0u8; 4];
        use std::io::Read;
        if reader.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
            return Err(Error::bad_input(
                path,
                format!(
                    "not a GGUF file (starts with {:?}, {size} bytes); pass a .gguf model file",
                    String::from_utf8_lossy(&magic[..(size.min(4) as usize)])
                ),
            ));
        }
        use std::io::Seek;
        reader
            .rewind()
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        let content = Content::read(&mut reader).map_err(|e| {
            Error::bad_input(
                path,
                format!(
                    "truncated or corrupt GGUF header ({}); download the file again",
                    without_backtrace(&e)
                ),
            )
        })?;
        check_tensor_extents(path, &content, size)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            content,
            reader,
            size,
        })
    }

    /// `general.architecture`, e.g. `llama`, `qwen3`, `gemma3`.
    pub fn architecture(&self) -> Result<String> {
        self.string("general.architecture")?.ok_or_else(|| {
            Error::bad_input(
                &self.path,
                "GGUF metadata has no general.architecture; the file was not written by a GGUF converter",
            )
        })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    /// A string value; `Ok(None)` when absent, an error when present with another type.
    pub fn string(&self, key: &str) -> Result<Option<String>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .to_string()
                .map(|s| Some(s.clone()))
                .map_err(|_| self.bad_key(key, "a string", v)),
        }
    }

    /// An integer value of any width; `Ok(None)` when absent.
    pub fn integer(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => value_integer(v)
                .map(Some)
                .ok_or_else(|| self.bad_key(key, "an integer", v)),
        }
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.bad_key(key, "a boolean", v)),
        }
    }

    /// An array of strings (the tokenizer's tokens and merges).
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.to_string()
                        .cloned()
                        .map_err(|_| self.bad_key(key, "strings", v))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => Err(self.bad_key(key, "an array of strings", v)),
        }
    }

    /// An array of integers (token types).
    pub fn integers(&self, key: &str) -> Result<Option<Vec<i64>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| value_integer(v).ok_or_else(|| self.bad_key(key, "integers", v)))
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => Err(self.bad_key(key, "an array of integers", v)),
        }
    }

    /// An array of floats (SentencePiece scores).
    pub fn floats(&self, key: &str) -> Result<Option<Vec<f32>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::F32(x) => Ok(*x),
                    Value::F64(x) => Ok(*x as f32),
                    _ => Err(self.bad_key(key, "floats", v)),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(v) => Err(self.bad_key(key, "an array of floats", v)),
        }
    }

    fn bad_key(&self, key: &str, expected: &str, got: &Value) -> Error {
        Error::bad_input(
            &self.path,
            format!(
                "GGUF metadata {key} should be {expected}, found {:?}",
                got.value_type()
            ),
        )
    }
}

fn value_integer(v: &Value) -> Option<i64> {
    Some(match v {
        Value::U8(x) => *x as i64,
        Value::I8(x) => *x as i64,
        Value::U16(x) => *x as i64,
        Value::I16(x) => *x as i64,
        Value::U32(x) => *x as i64,
        Value::I32(x) => *x as i64,
        Value::U64(x) => *x as i64,
        Value::I64(x) => *x,
        _ => return None,
    })
}

/// Every tensor must end inside the file; the first one that does not is named.
fn check_tensor_extents(path: &Path, content: &Content, size: u64) -> Result<()> {
    let mut tensors: Vec<_> = content.tensor_infos.iter().collect();
    tensors.sort_by_key(|(_, info)| info.offset);
    for (name, info) in tensors {
        let elems = info.shape.elem_count() as u64;
        let block = info.ggml_dtype.block_size() as u64;
        let bytes = elems.div_ceil(block) * info.ggml_dtype.type_size() as u64;
        let end = content.tensor_data_offset + info.offset + bytes;
        if end > size {
            return Err(Error::bad_input(
                path,
                format!(
                    "truncated GGUF: tensor {name} ends at byte {end} but the file has {size} bytes; \
                     the download was cut short, fetch the file again (tools/setup for the default model)"
                ),
            ));
        }
    }
    Ok(())
}

/// A candle error's message without the backtrace candle adds under `RUST_BACKTRACE`: a person
/// reading about a damaged file needs what is wrong with it, not our call stack.
fn without_backtrace(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(inner),
        other => other.to_string(),
    }
}
