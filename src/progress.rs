//! Progress bars for long work: shown on a terminal, hidden when stderr is piped, with `-q`,
//! or with `--json`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

static HIDDEN: AtomicBool = AtomicBool::new(false);

/// Hides every progress bar from now on (the CLI calls this for `-q` and `--json`).
pub fn hide() {
    HIDDEN.store(true, Ordering::Relaxed);
}

/// A bar counting `len` items (a spinner when `len` is 0, i.e. unknown).
pub fn bar(len: u64, message: &'static str) -> ProgressBar {
    if is_hidden() || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = if len == 0 {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::new(len)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} {wide_bar} {pos}/{len} [{elapsed_precise} < {eta_precise}]",
        )
        .expect("valid progress template"),
    );
    bar.set_message(message);
    bar
}

/// Whether progress output is off (`-q` or `--json`).
pub fn is_hidden() -> bool {
    HIDDEN.load(Ordering::Relaxed)
}
