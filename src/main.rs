//! The `actfer` binary: parse, set up logging, run, map errors to exit codes.

mod cli;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    restore_sigpipe();
    let cli = cli::Cli::parse();
    init_logging(&cli);
    if let Err(err) = cli::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(exit_code(&err));
    }
}

/// Dies quietly on a closed pipe (`actfer facs aus | head`), as command-line tools do, instead
/// of Rust's default of ignoring SIGPIPE and panicking in `println!`.
fn restore_sigpipe() {
    // SAFETY: setting a signal disposition to its default at start-up, before any thread.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(cli: &cli::Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    if cli.quiet || cli.wants_json() {
        actfer::progress::hide();
    }
    if std::env::var_os("OPENCV_LOG_LEVEL").is_none() && cli.verbose < 2 {
        // OpenCV's own warnings repeat what our errors say; show them with -vv.
        std::env::set_var("OPENCV_LOG_LEVEL", "ERROR");
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // colours only for a person at a terminal, not in a log file or a pipe
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// 2 when the input or the set-up is at fault, 1 for anything else.
fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|e| e.downcast_ref::<actfer::Error>())
        .map_or(1, actfer::Error::exit_code)
}
