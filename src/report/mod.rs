//! `actfer report`: a trace as one self-contained HTML page for a person to audit, the
//! question, the answer with its evidence and checks, then every step with its thought, tool
//! call, observation, AU bars, charts and images.
//!
//! Self-contained means one file with nothing to fetch: images are inlined as `data:` URIs,
//! the style and the one small script are in the page, charts are inline SVG, and a
//! Content-Security-Policy forbids any other source, so the page shows the same offline,
//! mailed or archived. Trace text is model-generated (and the question is anyone's), so the
//! template escapes everything it prints (minijinja's HTML auto-escaping); only the charts,
//! drawn here from numbers, go in unescaped.
//!
//! - [`view`]: what the page shows, computed from the trace
//! - [`images`]: artifacts inlined, or a note saying why not
//! - [`svg`]: the spotting curve and the clip timeline

pub mod images;
pub mod svg;
pub mod view;

/// Base64 (RFC 4648, standard alphabet, padded): the `data:` URIs of the inlined images and
/// the script's hash in the page's Content-Security-Policy.
pub fn to_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

use std::path::{Path, PathBuf};

use minijinja::{context, Environment, Value};
use sha2::{Digest, Sha256};

use crate::agent::trace::Trace;
use crate::error::{Error, Result};

/// The analysed frame with the subject's box drawn, beside `trace.json` when the run wrote
/// one; the page shows it when present.
pub use crate::agent::trace::FRAME;

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
/// Records on `<body>` whether every image decoded and how many script errors the page
/// raised, so a headless browser's DOM dump can be checked.
const SCRIPT: &str = include_str!("page.js");

/// The page for the trace whose files are in `dir` (where `trace.json` is). Artifacts that
/// cannot be inlined are noted in the page ([`artifact_problems`] lists them); the frame is
/// shown only when the run wrote one.
pub fn render(trace: &Trace, dir: &Path) -> Result<String> {
    let page = view::Page::new(trace, dir);
    let mut env = Environment::new();
    // The name ends in .html, so everything the template prints is HTML-escaped.
    env.add_template("page.html", TEMPLATE)
        .map_err(|e| Error::Internal(format!("report template: {e:#}")))?;
    let template = env
        .get_template("page.html")
        .map_err(|e| Error::Internal(format!("report template: {e:#}")))?;
    template
        .render(context! {
            page,
            style => Value::from_safe_string(STYLE.to_string()),
            script => Value::from_safe_string(SCRIPT.to_string()),
            csp => content_security_policy(),
        })
        .map_err(|e| Error::Internal(format!("report template: {e:#}")))
}

/// Only inline styles, `data:` images and this page's own script (by hash) may load.
fn content_security_policy() -> String {
    let hash = to_base64(&Sha256::digest(SCRIPT.as_bytes()));
    format!(
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
         script-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'"
    )
}

/// An image of the trace that the page could not inline.
#[derive(Debug, Clone)]
pub struct ArtifactProblem {
    /// The step that named it.
    pub step: usize,
    pub path: PathBuf,
    pub problem: images::Problem,
}

/// The step artifacts that [`render`] notes instead of showing: missing, unreadable, not a
/// (complete) PNG, or named outside the trace folder.
pub fn artifact_problems(trace: &Trace, dir: &Path) -> Vec<ArtifactProblem> {
    trace
        .steps
        .iter()
        .flat_map(|s| s.observation.artifacts.iter().map(move |a| (s.id, a)))
        .filter_map(|(step, name)| {
            let problem = images::read_png(dir, name).err()?;
            Some(ArtifactProblem {
                step,
                path: dir.join(name),
                problem,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
