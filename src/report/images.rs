//! The trace's images, inlined: each PNG becomes a `data:` URI, so the page is one file that
//! opens anywhere (mailed, archived, without its folder). A file that cannot be inlined
//! becomes a note naming it in the page, never a failed report: the trace is still worth
//! reading without one crop.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::to_base64;

/// The first eight bytes of every PNG file.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// The last twelve bytes of every complete PNG file: the empty IEND chunk and its CRC.
/// Browsers draw a truncated PNG as far as it goes without any error, so the page checks.
const PNG_END: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82];

/// An image of the page: its file name, and either its `data:` URI or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    pub name: String,
    pub uri: Option<String>,
    pub problem: Option<String>,
}

/// Why an artifact is not in the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing,
    /// The name is absolute or climbs out with `..`. The trace names its artifacts relative to
    /// its folder; following any other path would copy an arbitrary local file into a page
    /// meant to be shared.
    OutsideFolder,
    NotPng,
    /// A PNG that stops before its end chunk (a write cut short).
    Truncated,
    Unreadable(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => write!(f, "missing from the trace folder"),
            Problem::OutsideFolder => write!(
                f,
                "not inlined: artifact names must be relative to the trace folder"
            ),
            Problem::NotPng => write!(f, "not a PNG file"),
            Problem::Truncated => write!(f, "a truncated PNG (it stops before its end)"),
            Problem::Unreadable(e) => write!(f, "cannot be read ({e})"),
        }
    }
}

/// `name` inside `dir`, unless the name leaves the folder.
pub fn resolve(dir: &Path, name: &str) -> Result<PathBuf, Problem> {
    let relative = Path::new(name);
    let inside = !name.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if inside {
        Ok(dir.join(relative))
    } else {
        Err(Problem::OutsideFolder)
    }
}

/// The PNG bytes of artifact `name` of the trace in `dir`.
pub fn read_png(dir: &Path, name: &str) -> Result<Vec<u8>, Problem> {
    let path = resolve(dir, name)?;
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Problem::Missing,
        _ => Problem::Unreadable(e.to_string()),
    })?;
    if !bytes.starts_with(&PNG_SIGNATURE) {
        Err(Problem::NotPng)
    } else if !bytes.ends_with(&PNG_END) {
        Err(Problem::Truncated)
    } else {
        Ok(bytes)
    }
}

/// Artifact `name` as an [`Image`] of the page.
pub fn inline(dir: &Path, name: &str) -> Image {
    match read_png(dir, name) {
        Ok(bytes) => Image {
            name: name.to_string(),
            uri: Some(format!("data:image/png;base64,{}", to_base64(&bytes))),
            problem: None,
        },
        Err(problem) => Image {
            name: name.to_string(),
            uri: None,
            problem: Some(problem.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        let dir = Path::new("/tmp/t");
        assert_eq!(resolve(dir, "a.png").unwrap(), dir.join("a.png"));
        assert_eq!(resolve(dir, "sub/a.png").unwrap(), dir.join("sub/a.png"));
        for bad in ["", "../a.png", "sub/../../a.png", "/etc/passwd"] {
            assert_eq!(resolve(dir, bad), Err(Problem::OutsideFolder), "{bad:?}");
        }
    }

    #[test]
    fn only_png_files_are_inlined() {
        let dir = tempfile::tempdir().unwrap();
        let mut png = PNG_SIGNATURE.to_vec();
        png.extend_from_slice(b"chunks");
        png.extend_from_slice(&PNG_END);
        std::fs::write(dir.path().join("a.png"), &png).unwrap();
        std::fs::write(dir.path().join("b.png"), b"GIF89a").unwrap();
        std::fs::write(dir.path().join("d.png"), &png[..png.len() - 1]).unwrap();
        let a = inline(dir.path(), "a.png");
        assert_eq!(
            a.uri.as_deref(),
            Some(format!("data:image/png;base64,{}", to_base64(&png)).as_str())
        );
        assert_eq!(read_png(dir.path(), "b.png"), Err(Problem::NotPng));
        assert_eq!(read_png(dir.path(), "c.png"), Err(Problem::Missing));
        assert_eq!(read_png(dir.path(), "d.png"), Err(Problem::Truncated));
        let c = inline(dir.path(), "c.png");
        assert_eq!(c.uri, None);
        assert_eq!(c.problem.as_deref(), Some("missing from the trace folder"));
    }
}
