//! `actfer report`: a trace as one self-contained HTML page (images inlined, nothing loaded
//! from elsewhere), for a person to audit the run in a browser.

use std::path::{Path, PathBuf};

use actfer::agent::trace::FILE;
use actfer::agent::Trace;
use actfer::Error;
use clap::Args;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The trace: its trace.json, or the folder `actfer ask --trace-dir` wrote.
    pub trace: PathBuf,
    /// Where the page goes; default: report.html beside trace.json.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let file = trace_file(&a.trace)?;
    let trace = Trace::read(&file)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    for p in actfer::report::artifact_problems(&trace, dir) {
        tracing::warn!(
            "{}: step {}'s artifact is {}; the page notes it in the image's place",
            p.path.display(),
            p.step,
            p.problem
        );
    }
    let html = actfer::report::render(&trace, dir)?;
    let out = a.out.unwrap_or_else(|| dir.join("report.html"));
    std::fs::write(&out, html).map_err(|e| Error::io(out.display().to_string(), e))?;
    println!("{}", out.display());
    Ok(())
}

/// The trace.json that `path` names, directly or as its folder.
fn trace_file(path: &Path) -> actfer::Result<PathBuf> {
    if path.is_dir() {
        let file = path.join(FILE);
        if !file.is_file() {
            return Err(Error::bad_input(
                path,
                format!("no {FILE} in this folder; pass a trace folder that `actfer ask --trace-dir` wrote, or its {FILE}"),
            ));
        }
        return Ok(file);
    }
    if !path.exists() {
        return Err(Error::NotFound {
            path: path.to_path_buf(),
        });
    }
    Ok(path.to_path_buf())
}
