//! The keys and values of a conversation's opening (a system prompt) kept on disk, so a new
//! process that opens the same conversation loads them instead of running the prompt through
//! the model again: `actfer ask` runs the agent's 1,074-token system prompt once per model
//! and build, not once per question.
//!
//! One file per model, `<dir>/<model file name>.kv`, holding the tokens it stands for and
//! what made it: the model file (path, size, modification time) and the program (its size
//! and modification time: a rebuilt program may compute other numbers). A file that does not
//! match, or is damaged or truncated, is a miss; the prompt then runs and the file is
//! rewritten (through a temporary file and a rename, so a reader never sees half of one).
//!
//! Format: `ACTFERKV`, a u32 version, then u32 lengths each followed by their data: the
//! identity (UTF-8), the tokens (u32), the cache (f32); little-endian.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The folder under the model store (`$ACTFER_HOME`) that `actfer ask` keeps them in.
pub const PROMPT_CACHE: &str = "prompt-cache";

const MAGIC: &[u8; 8] = b"ACTFERKV";
const VERSION: u32 = 1;

/// A folder of prompt caches.
#[derive(Debug, Clone)]
pub struct PromptCache {
    dir: PathBuf,
}

impl PromptCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PromptCache { dir: dir.into() }
    }

    /// The file that holds `model`'s cache.
    pub fn file(&self, model: &Path) -> PathBuf {
        let name = model
            .file_name()
            .map_or("model".into(), |n| n.to_string_lossy());
        self.dir.join(format!("{name}.kv"))
    }

    /// The cache of `tokens` for `model`, when a file made by this program from this model
    /// holds exactly those tokens.
    pub fn load(&self, model: &Path, tokens: &[u32]) -> Option<Vec<f32>> {
        let bytes = std::fs::read(self.file(model)).ok()?;
        let (identity, stored, kv) = parse(&bytes)?;
        (identity == identity_of(model)? && stored == tokens).then_some(kv)
    }

    /// Writes the cache `kv` of `tokens` for `model`.
    pub fn store(&self, model: &Path, tokens: &[u32], kv: &[f32]) -> Result<()> {
        let identity = identity_of(model).ok_or_else(|| {
            Error::Internal(format!("{}: cannot read the model file", model.display()))
        })?;
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("creating {}", self.dir.display()), e))?;
        let path = self.file(model);
        let tmp = path.with_extension(format!("kv.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            f.write_all(MAGIC)?;
            f.write_all(&VERSION.to_le_bytes())?;
            f.write_all(&(identity.len() as u32).to_le_bytes())?;
            f.write_all(identity.as_bytes())?;
            f.write_all(&(tokens.len() as u32).to_le_bytes())?;
            for t in tokens {
                f.write_all(&t.to_le_bytes())?;
            }
            f.write_all(&(kv.len() as u32).to_le_bytes())?;
            for v in kv {
                f.write_all(&v.to_le_bytes())?;
            }
            f.into_inner()?.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io(format!("writing the prompt cache {}", path.display()), e)
        })
    }
}

/// What made a cache: the model file and this program, by path, size and time.
fn identity_of(model: &Path) -> Option<String> {
    let stamp = |p: &Path| -> Option<String> {
        let m = std::fs::metadata(p).ok()?;
        let t = m
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(format!("{} {} {}", p.display(), m.len(), t.as_nanos()))
    };
    let model = std::fs::canonicalize(model).ok()?;
    let exe = std::env::current_exe().ok()?;
    Some(format!("{}\n{}", stamp(&model)?, stamp(&exe)?))
}

/// The identity, tokens and cache of a file's bytes; `None` when they are not one whole file.
fn parse(bytes: &[u8]) -> Option<(String, Vec<u32>, Vec<f32>)> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (version, mut rest) = rest.split_first_chunk::<4>()?;
    if u32::from_le_bytes(*version) != VERSION {
        return None;
    }
    let mut section = |width: usize| -> Option<&[u8]> {
        let (n, tail) = rest.split_first_chunk::<4>()?;
        let len = (u32::from_le_bytes(*n) as usize).checked_mul(width)?;
        let (data, tail) = (tail.get(..len)?, &tail[len..]);
        rest = tail;
        Some(data)
    };
    let identity = String::from_utf8(section(1)?.to_vec()).ok()?;
    let words = |b: &[u8]| -> Vec<[u8; 4]> {
        b.chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect()
    };
    let tokens = words(section(4)?)
        .into_iter()
        .map(u32::from_le_bytes)
        .collect();
    let kv = words(section(4)?)
        .into_iter()
        .map(f32::from_le_bytes)
        .collect();
    rest.is_empty().then_some((identity, tokens, kv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_cache_loads_only_for_its_tokens_and_a_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.gguf");
        std::fs::write(&model, b"weights").unwrap();
        let cache = PromptCache::new(dir.path().join("cache"));
        assert_eq!(cache.load(&model, &[1, 2]), None);
        cache.store(&model, &[1, 2], &[0.5, -1.0, 3.25]).unwrap();
        assert_eq!(cache.load(&model, &[1, 2]), Some(vec![0.5, -1.0, 3.25]));
        assert_eq!(cache.load(&model, &[1, 3]), None, "other tokens");
        // a truncated file is a miss, not an error
        let file = cache.file(&model);
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() - 2]).unwrap();
        assert_eq!(cache.load(&model, &[1, 2]), None);
        // a model file that changed is a miss
        cache.store(&model, &[1, 2], &[0.5]).unwrap();
        std::fs::write(&model, b"other weights").unwrap();
        assert_eq!(cache.load(&model, &[1, 2]), None);
        // no temporary file is left behind
        let names: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["m.gguf.kv"]);
    }
}
