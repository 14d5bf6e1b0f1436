//! The trainers' CSV logs: one line per step, the step number first, kept across a resume.

use std::path::Path;

use crate::{Error, Result};

/// Opens a CSV log for appending: a new file with `header`, or (resuming at `start`) the old
/// one without the lines of steps past `start`, so a resumed run's lines follow on from the
/// checkpoint's step and none is written twice.
pub fn open_log(path: &Path, header: &str, start: usize) -> Result<std::fs::File> {
    let mut lines = vec![header.to_string()];
    if start > 0 {
        if let Ok(old) = std::fs::read_to_string(path) {
            lines.extend(
                old.lines()
                    .skip(1)
                    .filter(|l| {
                        l.split(',')
                            .next()
                            .and_then(|s| s.parse::<usize>().ok())
                            .is_some_and(|s| s <= start)
                    })
                    .map(String::from),
            );
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).map_err(|e| Error::io(path.display().to_string(), e))?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path.display().to_string(), e))
}
