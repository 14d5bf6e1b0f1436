//! A trace folder written safely: one run at a time per folder (a lock file beside it), the
//! run's files written into a fresh folder next to it and moved into place at the end, so a
//! trace folder always holds one whole run, never a mix of two, and a run that fails before
//! its trace leaves the previous trace as it was.

use std::path::{Path, PathBuf};

use super::trace::FILE;
use crate::error::{Error, Result};

/// The folder a run writes into ([`path`](Self::path)) and where it goes at the end
/// ([`finish`](Self::finish)). Dropped unfinished, it removes its work and its lock.
#[derive(Debug)]
pub struct RunDir {
    target: PathBuf,
    work: PathBuf,
    lock: PathBuf,
    finished: bool,
}

impl RunDir {
    /// Takes `target` for this run: refused (exit 2) when another live run holds it, or when
    /// it is a file, or a folder with files that are not a trace's.
    pub fn new(target: &Path) -> Result<RunDir> {
        let cannot = |what: &str, e: std::io::Error| {
            Error::bad_input(
                target,
                format!("cannot {what} ({e}); choose a writable --trace-dir"),
            )
        };
        if target.exists() {
            if !target.is_dir() {
                return Err(Error::bad_input(
                    target,
                    "exists and is not a folder; choose another --trace-dir",
                ));
            }
            let files = std::fs::read_dir(target)
                .map_err(|e| cannot("read the folder", e))?
                .count();
            if files > 0 && !target.join(FILE).exists() {
                return Err(Error::bad_input(
                    target,
                    "holds files that are not a trace's; choose a new or empty --trace-dir",
                ));
            }
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::bad_input(target, "names no folder; give --trace-dir a name"))?;
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| cannot("create its parent folder", e))?;
        let lock = parent.join(format!(".{name}.lock"));
        take_lock(&lock, target)?;
        let pid = std::process::id();
        let work = parent.join(format!(".{name}.{pid}.partial"));
        let made = std::fs::remove_dir_all(&work)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .and_then(|_| std::fs::create_dir(&work));
        if let Err(e) = made {
            let _ = std::fs::remove_file(&lock);
            return Err(cannot("create a folder beside it", e));
        }
        Ok(RunDir {
            target: target.to_path_buf(),
            work,
            lock,
            finished: false,
        })
    }

    /// Where this run writes its files.
    pub fn path(&self) -> &Path {
        &self.work
    }

    /// Moves the run's files into place (the previous trace there is replaced whole) and
    /// releases the lock; the trace folder's path.
    pub fn finish(mut self) -> Result<PathBuf> {
        let io = |e: std::io::Error| Error::io(self.target.display().to_string(), e);
        let old = self.work.with_extension("old");
        if self.target.exists() {
            std::fs::rename(&self.target, &old).map_err(io)?;
        }
        std::fs::rename(&self.work, &self.target).map_err(io)?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io)?;
        }
        self.finished = true;
        let _ = std::fs::remove_file(&self.lock);
        Ok(self.target.clone())
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.finished {
            let _ = std::fs::remove_dir_all(&self.work);
            let _ = std::fs::remove_file(&self.lock);
        }
    }
}

/// Creates the lock file holding this process's id; a lock whose process is gone (a run that
/// was killed) is taken over.
fn take_lock(lock: &Path, target: &Path) -> Result<()> {
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock)
        {
            Ok(mut f) => {
                use std::io::Write;
                let _ = writeln!(f, "{}", std::process::id());
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = std::fs::read_to_string(lock).unwrap_or_default();
                let holder: Option<u32> = holder.trim().parse().ok();
                let alive = holder.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                if alive {
                    return Err(Error::bad_input(
                        target,
                        format!(
                            "another run (process {}) is writing this trace folder; wait for \
                             it or choose another --trace-dir",
                            holder.unwrap_or_default()
                        ),
                    ));
                }
                let _ = std::fs::remove_file(lock);
            }
            Err(e) => {
                return Err(Error::bad_input(
                    target,
                    format!("cannot lock the trace folder ({e}); choose a writable --trace-dir"),
                ))
            }
        }
    }
    Err(Error::bad_input(
        target,
        "cannot lock the trace folder; choose another --trace-dir",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_replaces_the_previous_trace_whole_and_one_run_holds_a_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("t");
        let first = RunDir::new(&target).unwrap();
        std::fs::write(first.path().join(FILE), "{}").unwrap();
        std::fs::write(first.path().join("zoom_1.png"), "x").unwrap();
        // a second run on the same folder is refused while the first holds it
        let e = RunDir::new(&target).unwrap_err();
        assert!(e.to_string().contains("another run"), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(first.finish().unwrap(), target);
        assert!(target.join("zoom_1.png").exists());
        // the next run's files replace the folder: nothing of the first is left
        let second = RunDir::new(&target).unwrap();
        std::fs::write(second.path().join(FILE), "{}").unwrap();
        second.finish().unwrap();
        assert!(target.join(FILE).exists());
        assert!(!target.join("zoom_1.png").exists());
        // a run dropped unfinished leaves the trace as it was and nothing beside it
        let third = RunDir::new(&target).unwrap();
        std::fs::write(third.path().join("frame.png"), "y").unwrap();
        drop(third);
        assert!(!target.join("frame.png").exists());
        let names: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["t"]);
    }

    #[test]
    fn a_folder_that_is_not_a_trace_or_a_stale_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let mine = tmp.path().join("photos");
        std::fs::create_dir(&mine).unwrap();
        std::fs::write(mine.join("holiday.jpg"), "x").unwrap();
        let e = RunDir::new(&mine).unwrap_err();
        assert!(e.to_string().contains("not a trace's"), "{e}");
        let file = tmp.path().join("notes.txt");
        std::fs::write(&file, "x").unwrap();
        assert!(RunDir::new(&file).is_err());
        // a lock left by a process that is gone is taken over
        let target = tmp.path().join("t");
        std::fs::write(tmp.path().join(".t.lock"), "4294967\n").unwrap();
        RunDir::new(&target).unwrap().finish().unwrap();
    }
}
