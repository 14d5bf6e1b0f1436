//! The model store: one place that turns a model name into a file.
//!
//! Every default model is pinned in `tools/manifest.json` (embedded here at build time):
//! which registry package it comes from, the checksum of each source file, and the checksum of
//! each converted file that `tools/setup` writes under `$ACTFER_HOME` (default
//! `~/.cache/actfer`). [`ModelStore::resolve`] accepts, in order: an existing path, a manifest
//! name, or a Hugging Face `owner/repo:file` (downloaded through hf-hub and cached there).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The manifest, as committed in `tools/manifest.json`.
pub const MANIFEST_JSON: &str = include_str!("../tools/manifest.json");

/// Environment variable naming the cache folder.
pub const HOME_ENV: &str = "ACTFER_HOME";

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub packages: BTreeMap<String, Package>,
    pub models: Vec<ModelEntry>,
}

/// A registry package that holds source files.
#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    pub registry: String,
    pub version: String,
    pub file: String,
    pub sha256: String,
}

/// A model (or a set of test assets) the project uses by default.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub role: String,
    pub package: String,
    pub licence: String,
    /// The model's path under the cache: a file, or a folder for multi-file entries.
    pub path: String,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// What a check of one file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checksum {
    /// Present with the pinned size and sha256.
    Verified,
    /// Present with the pinned size; not hashed.
    SizeOk,
    Missing,
    /// Shorter than pinned: an interrupted download or copy.
    Truncated,
    WrongSize,
    Mismatch,
}

impl Checksum {
    pub fn is_ok(self) -> bool {
        matches!(self, Checksum::Verified | Checksum::SizeOk)
    }

    /// What the state means, in words (`truncated (shorter than the pinned size)`).
    pub fn explain(self) -> &'static str {
        match self {
            Checksum::Verified | Checksum::SizeOk => "ok",
            Checksum::Missing => "missing",
            Checksum::Truncated => "truncated (shorter than the pinned size)",
            Checksum::WrongSize => "has the wrong size",
            Checksum::Mismatch => "does not match its pinned sha256",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FileStatus {
    pub path: PathBuf,
    pub size: Option<u64>,
    pub expected_size: u64,
    pub checksum: Checksum,
}

/// One row of `actfer models list`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub name: String,
    pub role: String,
    pub path: PathBuf,
    /// Bytes on disk, all files together.
    pub size: u64,
    pub licence: String,
    pub package: String,
    pub registry: String,
    pub version: String,
    /// The worst status over the model's files.
    pub checksum: Checksum,
    pub files: Vec<FileStatus>,
}

/// Resolves model names to files; see the module docs.
#[derive(Debug, Clone)]
pub struct ModelStore {
    home: PathBuf,
    manifest: Manifest,
}

impl ModelStore {
    /// The store at `$ACTFER_HOME`, or `~/.cache/actfer`.
    pub fn from_env() -> Result<Self> {
        let home = match std::env::var_os(HOME_ENV) {
            Some(h) if !h.is_empty() => PathBuf::from(h),
            _ => {
                let user_home = std::env::var_os("HOME").ok_or_else(|| {
                    Error::Internal(format!(
                        "neither {HOME_ENV} nor HOME is set; set {HOME_ENV} to the model cache"
                    ))
                })?;
                PathBuf::from(user_home).join(".cache").join("actfer")
            }
        };
        Ok(Self::with_home(home))
    }

    pub fn with_home(home: PathBuf) -> Self {
        let manifest = serde_json::from_str(MANIFEST_JSON)
            .expect("tools/manifest.json is valid (checked by a test)");
        ModelStore { home, manifest }
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn entry(&self, name: &str) -> Option<&ModelEntry> {
        self.manifest.models.iter().find(|m| m.name == name)
    }

    /// A default model by name, or an error listing the known names.
    pub fn known(&self, name: &str) -> Result<&ModelEntry> {
        self.entry(name).ok_or_else(|| self.unknown(name))
    }

    /// Checks every file of a model: sizes always, sha256 when `hash` is set.
    pub fn status(&self, entry: &ModelEntry, hash: bool) -> ModelStatus {
        let files: Vec<FileStatus> = entry
            .files
            .iter()
            .map(|f| self.check_file(f, hash))
            .collect();
        let checksum = files
            .iter()
            .map(|f| f.checksum)
            .find(|c| !c.is_ok())
            .unwrap_or(if hash {
                Checksum::Verified
            } else {
                Checksum::SizeOk
            });
        let package = &self.manifest.packages[&entry.package];
        ModelStatus {
            name: entry.name.clone(),
            role: entry.role.clone(),
            path: self.home.join(&entry.path),
            size: files.iter().filter_map(|f| f.size).sum(),
            licence: entry.licence.clone(),
            package: entry.package.clone(),
            registry: package.registry.clone(),
            version: package.version.clone(),
            checksum,
            files,
        }
    }

    fn check_file(&self, file: &FileEntry, hash: bool) -> FileStatus {
        let path = self.home.join(&file.path);
        let size = std::fs::metadata(&path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        let checksum = match size {
            None => Checksum::Missing,
            Some(n) if n < file.size => Checksum::Truncated,
            Some(n) if n != file.size => Checksum::WrongSize,
            Some(_) if !hash => Checksum::SizeOk,
            Some(_) => match sha256_file(&path) {
                Ok(digest) if digest == file.sha256 => Checksum::Verified,
                _ => Checksum::Mismatch,
            },
        };
        FileStatus {
            path,
            size,
            expected_size: file.size,
            checksum,
        }
    }

    /// The path of a default model after a check of every file: present with its pinned size,
    /// and its sha256 the pinned one ([`stamped_sha256`]: hashed once, then again only when the
    /// file's size or modification time changed). A missing, truncated or damaged file is an
    /// error that names it and says to run set-up.
    pub fn require(&self, name: &str) -> Result<PathBuf> {
        let entry = self.known(name)?;
        let status = self.status(entry, false);
        if let Some(bad) = status.files.iter().find(|f| !f.checksum.is_ok()) {
            return Err(Error::BadModel {
                name: name.to_string(),
                path: bad.path.clone(),
                reason: format!(
                    "{} ({} bytes, expected {})",
                    bad.checksum.explain(),
                    bad.size.unwrap_or(0),
                    bad.expected_size
                ),
            });
        }
        for (file, checked) in entry.files.iter().zip(&status.files) {
            if stamped_sha256(&checked.path)? != file.sha256 {
                return Err(Error::BadModel {
                    name: name.to_string(),
                    path: checked.path.clone(),
                    reason: Checksum::Mismatch.explain().into(),
                });
            }
        }
        Ok(status.path)
    }

    /// A model from anywhere: an existing file or folder, a manifest name, or a Hugging Face
    /// `owner/repo:file`, in that order.
    pub fn resolve(&self, spec: &str) -> Result<PathBuf> {
        let as_path = Path::new(spec);
        if as_path.exists() {
            return Ok(as_path.to_path_buf());
        }
        if self.entry(spec).is_some() {
            return self.require(spec);
        }
        if let Some((repo, file)) = parse_hf_spec(spec) {
            return hf_file(repo, file);
        }
        if spec.contains(std::path::MAIN_SEPARATOR) || as_path.extension().is_some() {
            return Err(Error::NotFound {
                path: as_path.to_path_buf(),
            });
        }
        Err(self.unknown(spec))
    }

    fn unknown(&self, spec: &str) -> Error {
        let known: Vec<&str> = self
            .manifest
            .models
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        Error::ModelUnavailable {
            spec: spec.to_string(),
            reason: format!(
                "not a file, not a known model ({}), and not a Hugging Face file (owner/repo:file)",
                known.join(", ")
            ),
        }
    }
}

/// Splits `owner/repo:file` into the repo id and the file name.
fn parse_hf_spec(spec: &str) -> Option<(&str, &str)> {
    let (repo, file) = spec.split_once(':')?;
    let (owner, name) = repo.split_once('/')?;
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    (valid(owner) && valid(name) && !owner.starts_with('.') && !file.is_empty())
        .then_some((repo, file))
}

/// A file of a Hugging Face model repo: from the hf-hub cache (`$HF_HOME/hub`) when present,
/// otherwise downloaded into it.
pub fn hf_file(repo: &str, file: &str) -> Result<PathBuf> {
    let spec = format!("{repo}:{file}");
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(!crate::progress::is_hidden())
        .build()
        .map_err(|e| Error::ModelUnavailable {
            spec: spec.clone(),
            reason: e.to_string(),
        })?;
    api.model(repo.to_string()).get(file).map_err(|e| Error::ModelUnavailable {
        spec,
        reason: format!("not in the Hugging Face cache and the download failed ({e}); pass a local file instead"),
    })
}

/// What a file's hash was when it had a size and a modification time: `.NAME.sha256` beside
/// `NAME`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    modified_ns: u128,
    sha256: String,
}

fn stamp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.sha256"))
}

/// The size and modification time `path` has now.
fn stamp_of(path: &Path, sha256: String) -> Result<Stamp> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let modified_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(Stamp {
        size: meta.len(),
        modified_ns,
        sha256,
    })
}

fn read_stamp(path: &Path) -> Option<Stamp> {
    serde_json::from_slice(&std::fs::read(stamp_path(path)).ok()?).ok()
}

/// Records `sha256` as the hash of `path` at its size and modification time now (where the
/// folder is writable; a store on a read-only disk is hashed at each check instead).
fn write_stamp(path: &Path, sha256: String) -> Result<()> {
    let stamp = stamp_of(path, sha256)?;
    let dest = stamp_path(path);
    let tmp = dest.with_extension(format!("{}.tmp", std::process::id()));
    let json = serde_json::to_vec(&stamp).expect("a stamp serializes");
    if std::fs::write(&tmp, json).is_ok() && std::fs::rename(&tmp, &dest).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(())
}

/// The sha256 of `path`, from its stamp when the file's size and modification time are the
/// stamp's, else hashed (and the stamp written).
pub fn stamped_sha256(path: &Path) -> Result<String> {
    if let Some(stamp) = read_stamp(path) {
        if stamp_of(path, String::new())?.same_file_as(&stamp) {
            return Ok(stamp.sha256);
        }
    }
    let sha = sha256_file(path)?;
    write_stamp(path, sha.clone())?;
    Ok(sha)
}

impl Stamp {
    fn same_file_as(&self, other: &Stamp) -> bool {
        self.size == other.size && self.modified_ns == other.modified_ns
    }
}

/// Records the hash of a file set-up has just written (a converted model), so later runs can
/// tell it was damaged since ([`check_written`]).
pub fn stamp_written(path: &Path) -> Result<()> {
    write_stamp(path, sha256_file(path)?)
}

/// Checks a file set-up wrote (a converted model, no pinned hash): unchanged since its stamp
/// ([`stamp_written`]), or changed in time or size but with the same bytes. A file without a
/// stamp gets one now. Anything else is an error naming it and the fix.
pub fn check_written(name: &str, path: &Path) -> Result<()> {
    let Some(stamp) = read_stamp(path) else {
        return stamp_written(path);
    };
    let now = stamp_of(path, String::new())?;
    if now.same_file_as(&stamp) {
        return Ok(());
    }
    let sha = sha256_file(path)?;
    if sha != stamp.sha256 {
        return Err(Error::BadModel {
            name: name.to_string(),
            path: path.to_path_buf(),
            reason: "changed since set-up wrote it (its sha256 is not the one recorded then)"
                .into(),
        });
    }
    write_stamp(path, sha)
}

/// The sha256 of a file as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_and_names_are_unique() {
        let store = ModelStore::with_home(PathBuf::from("/nonexistent"));
        let mut names: Vec<&str> = store
            .manifest()
            .models
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
        for m in &store.manifest().models {
            assert!(
                store.manifest().packages.contains_key(&m.package),
                "{} names an unknown package",
                m.name
            );
            for f in &m.files {
                assert_eq!(f.sha256.len(), 64, "{}", f.path);
                assert!(
                    f.path.starts_with(&m.path),
                    "{} lies outside {}",
                    f.path,
                    m.path
                );
            }
        }
    }

    /// A converted file is checked against the hash recorded when it was written: the same
    /// bytes pass however often the file is touched; other bytes of the same size fail.
    #[test]
    fn written_files_are_checked_against_their_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.gguf");
        std::fs::write(&path, b"0123456789").unwrap();
        stamp_written(&path).unwrap();
        check_written("copy", &path).unwrap();
        // rewritten with the same bytes: a new time, the same hash
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, b"0123456789").unwrap();
        check_written("copy", &path).unwrap();
        std::fs::write(&path, b"0123456780").unwrap();
        let err = check_written("copy", &path).unwrap_err().to_string();
        assert!(
            err.contains("copy.gguf") && err.contains("changed since set-up wrote it"),
            "{err}"
        );
        assert_eq!(stamped_sha256(&path).unwrap(), sha256_file(&path).unwrap());
    }

    #[test]
    fn hf_specs() {
        assert_eq!(
            parse_hf_spec("Qwen/Qwen3-0.6B-GGUF:q8.gguf"),
            Some(("Qwen/Qwen3-0.6B-GGUF", "q8.gguf"))
        );
        assert_eq!(parse_hf_spec("Qwen/Qwen3-0.6B-GGUF"), None);
        assert_eq!(parse_hf_spec("./a/b:c"), None);
        assert_eq!(parse_hf_spec("/a/b:c"), None);
    }

    #[test]
    fn missing_and_truncated_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::with_home(dir.path().to_path_buf());
        let entry = store.manifest().models[0].clone();
        let err = store.require(&entry.name).unwrap_err().to_string();
        assert!(
            err.contains(&entry.files[0].path)
                && err.contains("missing")
                && err.contains("tools/setup"),
            "{err}"
        );

        let path = dir.path().join(&entry.files[0].path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"short").unwrap();
        let err = store.require(&entry.name).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        assert_eq!(
            store.status(&entry, true).files[0].checksum,
            Checksum::Truncated
        );
    }
}
