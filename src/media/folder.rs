//! Folders of frames, in natural order: `2.jpg` before `10.jpg`, `img46.jpg` before `img100.jpg`.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The image files of a folder in natural order. Other files (labels, notes) are ignored.
pub(super) fn list_frames(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading folder {}", dir.display()), e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| Error::io(format!("reading folder {}", dir.display()), e))?
            .path();
        if path.is_file() && super::has_image_extension(&path) {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(Error::bad_input(
            dir,
            format!(
                "the folder holds no frames; expected image files ({})",
                super::IMAGE_EXTENSIONS.join(", ")
            ),
        ));
    }
    files.sort_by(|a, b| {
        natural_cmp(
            &a.file_name().unwrap().to_string_lossy(),
            &b.file_name().unwrap().to_string_lossy(),
        )
    });
    Ok(files)
}

/// Compares two names so that runs of digits compare as numbers: "img2" < "img10".
/// Ties between equal numbers ("01" and "1") fall back to plain string order.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while let (Some(&p), Some(&q)) = (x.first(), y.first()) {
        let ord = if p.is_ascii_digit() && q.is_ascii_digit() {
            let (dx, rx) = split_digits(x);
            let (dy, ry) = split_digits(y);
            x = rx;
            y = ry;
            let (tx, ty) = (trim_zeros(dx), trim_zeros(dy));
            tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
        } else {
            x = &x[1..];
            y = &y[1..];
            p.cmp(&q)
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    x.len().cmp(&y.len()).then_with(|| a.cmp(b))
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    s.split_at(n)
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let n = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[n.min(digits.len().saturating_sub(1))..]
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort_by(|a, b| natural_cmp(a, b));
        v
    }

    #[test]
    fn numbers_sort_by_value() {
        assert_eq!(
            sorted(&["10.png", "2.png", "1.png"]),
            ["1.png", "2.png", "10.png"]
        );
    }

    #[test]
    fn casme_style_names() {
        assert_eq!(
            sorted(&["img100.jpg", "img46.jpg", "img9.jpg"]),
            ["img9.jpg", "img46.jpg", "img100.jpg"]
        );
    }

    #[test]
    fn leading_zeros_and_prefixes() {
        assert_eq!(
            sorted(&["f010.png", "f9.png", "f0001.png"]),
            ["f0001.png", "f9.png", "f010.png"]
        );
        assert_eq!(sorted(&["b1", "a2", "a10"]), ["a2", "a10", "b1"]);
        assert_eq!(sorted(&["1", "01"]), ["01", "1"]);
    }
}
