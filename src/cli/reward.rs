//! `actfer reward`: UC-GRPO scores for rollouts against labels, and `--serve` for trainers.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actfer::agent::words::Vocabulary;
use actfer::reward::{self, io, CalibrationState, Inputs, OnProblem, Report, RewardConfig};
use actfer::Error;
use anyhow::Context as _;
use clap::Args;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct RewardArgs {
    /// Rollouts, one JSON object a line: {"id", "group", "sample", "completion" | "trace", "zoomed"}.
    #[arg(long, required_unless_present = "serve")]
    pub rollouts: Option<PathBuf>,
    /// Gold labels, one JSON object a line: {"sample", "emotion", "aus"}.
    #[arg(long, required_unless_present = "serve")]
    pub labels: Option<PathBuf>,
    /// Weights and calibration constants (TOML); defaults otherwise.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Calibration state (JSON): read if it exists, written back after the batch.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Write one score line per rollout here (`-`: stdout, the summary then goes to stderr).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write one line per group here: utility U, Ubar, Uhat, mean and std of the totals.
    #[arg(long)]
    pub groups: Option<PathBuf>,
    /// Print the summary as JSON (with every problem).
    #[arg(long)]
    pub json: bool,
    /// Fail on the first problem (exit code 2) instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// Serve requests on stdin, one JSON line each ({"rollouts": [...], "labels": [...]}),
    /// answering one JSON line each on stdout; every request is one batch.
    #[arg(long, conflicts_with_all = ["rollouts", "labels", "out", "groups", "json"])]
    pub serve: bool,
}

impl RewardArgs {
    pub fn wants_json(&self) -> bool {
        self.json || self.serve
    }
}

pub fn run(args: RewardArgs) -> anyhow::Result<()> {
    let cfg = match &args.config {
        Some(p) => RewardConfig::load(p)?,
        None => RewardConfig::default(),
    };
    let mut state = match &args.state {
        Some(p) => CalibrationState::load_or_default(p)?,
        None => CalibrationState::default(),
    };
    let vocab = vocabulary(&cfg)?;
    if args.serve {
        return serve(
            &cfg,
            &mut state,
            vocab.as_deref(),
            args.state.as_deref(),
            args.strict,
        );
    }
    let (rollouts_path, labels_path) = (
        args.rollouts.as_ref().expect("clap"),
        args.labels.as_ref().expect("clap"),
    );
    let labels_text = read(labels_path)?;
    let rollouts_text = read(rollouts_path)?;
    let on_problem = if args.strict {
        OnProblem::Fail
    } else {
        OnProblem::Skip
    };
    let lsrc = labels_path.display().to_string();
    let inputs = Inputs {
        labels: io::jsonl_lines(&labels_text).map(|(n, l)| (n, io::parse_label(l))),
        labels_source: lsrc.clone(),
        rollouts: io::parse_rollouts(&rollouts_text).into_iter(),
        rollouts_source: rollouts_path.display().to_string(),
    };
    let report = reward::run(inputs, &cfg, &mut state, vocab.as_deref(), on_problem).map_err(|p| {
        let path = if p.source == lsrc { labels_path } else { rollouts_path };
        Error::bad_input(path, format!("line {}: {} (--strict stops at the first problem; leave it out to skip and count)", p.line, p.reason))
    })?;
    if report.scores.is_empty() {
        let first = report
            .problems
            .first()
            .map_or("the file holds no rollout".to_string(), |p| {
                format!("first problem: {p}")
            });
        return Err(Error::bad_input(
            rollouts_path,
            format!(
                "no rollout could be scored ({} problem(s); {first})",
                report.problems.len()
            ),
        )
        .into());
    }
    let to_stdout = args.out.as_deref() == Some(Path::new("-"));
    if let Some(out) = &args.out {
        write_lines(out, report.scores.iter())?;
    }
    if let Some(g) = &args.groups {
        write_lines(g, report.groups.iter())?;
    }
    if let Some(p) = &args.state {
        state.save(p)?;
    }
    if !report.problems.is_empty() {
        warn_problems(&report);
    }
    if args.json {
        let text = serde_json::to_string_pretty(&report)?;
        if to_stdout {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    } else {
        let table = summary_table(&report);
        if to_stdout {
            eprint!("{table}");
        } else {
            print!("{table}");
        }
    }
    Ok(())
}

/// The word list of the words term, unless its weight is 0.
fn vocabulary(cfg: &RewardConfig) -> anyhow::Result<Option<Arc<Vocabulary>>> {
    if cfg.weights.words == 0.0 {
        return Ok(None);
    }
    let vocab = Vocabulary::shared().context(
        "the words term reads the english-words list (set [weights] words = 0 in --config to score without it)",
    )?;
    Ok(Some(vocab))
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            Error::io(format!("reading {}", path.display()), e)
        }
        .into()
    })
}

/// Writes JSON lines to a file, or to stdout for `-`.
fn write_lines<'a, T: serde::Serialize + 'a>(
    path: &Path,
    items: impl Iterator<Item = &'a T>,
) -> anyhow::Result<()> {
    let sink: Box<dyn Write> = if path == Path::new("-") {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(path)
                .map_err(|e| Error::io(format!("creating {}", path.display()), e))?,
        )
    };
    let mut w = BufWriter::with_capacity(1 << 16, sink);
    for it in items {
        serde_json::to_writer(&mut w, it)?;
        w.write_all(b"\n")?;
    }
    w.flush()
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(())
}

fn warn_problems(report: &Report) {
    let s = &report.summary;
    eprintln!(
        "warning: {} problem(s): skipped {} rollout line(s) and {} label line(s) (--strict fails instead)",
        report.problems.len(),
        s.skipped_rollouts,
        s.skipped_labels
    );
    const SHOWN: usize = 10;
    for p in report.problems.iter().take(SHOWN) {
        eprintln!("  {p}");
    }
    if report.problems.len() > SHOWN {
        eprintln!(
            "  ... and {} more (--json lists them all)",
            report.problems.len() - SHOWN
        );
    }
}

/// The human summary: counts, then means per term overall and per gold emotion.
fn summary_table(report: &Report) -> String {
    use std::fmt::Write as _;
    let s = &report.summary;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "scored {} rollouts in {} groups ({} with a defined zoom utility); {} format failures; skipped {} rollout and {} label lines",
        s.rollouts, s.groups, s.groups_with_utility, s.format_failures, s.skipped_rollouts, s.skipped_labels
    );
    let mut cols = vec![("all".to_string(), s.rollouts, s.means)];
    cols.extend(
        s.per_emotion
            .iter()
            .map(|(e, m)| (e.to_string(), m.rollouts, m.means)),
    );
    let _ = write!(t, "{:<12}", "mean");
    for (name, _, _) in &cols {
        let _ = write!(t, " {name:>10}");
    }
    let _ = write!(t, "\n{:<12}", "rollouts");
    for (_, n, _) in &cols {
        let _ = write!(t, " {n:>10}");
    }
    t.push('\n');
    type Get = fn(&reward::Means) -> f64;
    let rows: [(&str, Get); 9] = [
        ("format", |m| m.format),
        ("region", |m| m.region),
        ("au", |m| m.au),
        ("consistency", |m| m.consistency),
        ("emotion", |m| m.emotion),
        ("words", |m| m.words),
        ("utility", |m| m.utility),
        ("task", |m| m.task),
        ("total", |m| m.total),
    ];
    for (name, get) in rows {
        let _ = write!(t, "{name:<12}");
        for (_, _, m) in &cols {
            let _ = write!(t, " {:>10.4}", get(m));
        }
        t.push('\n');
    }
    if !s.state.classes.is_empty() {
        let _ = write!(t, "calibration after {} batch(es): Ubar", s.state.batches);
        for (e, c) in &s.state.classes {
            let _ = write!(t, " {e}={:.4}", c.ubar);
        }
        t.push('\n');
    }
    t
}

#[derive(Deserialize)]
struct Request {
    rollouts: Vec<Value>,
    #[serde(default)]
    labels: Vec<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

/// One request a line on stdin, one answer a line on stdout; a bad request gets
/// `{"error": "..."}` and the server goes on. The state is saved after each request.
fn serve(
    cfg: &RewardConfig,
    state: &mut CalibrationState,
    vocab: Option<&Vocabulary>,
    state_path: Option<&Path>,
    strict: bool,
) -> anyhow::Result<()> {
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in stdin.lines() {
        let line = line.map_err(|e| Error::io("reading requests on stdin", e))?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Request>(&line) {
            Err(e) => serde_json::json!({"error": format!("bad request: {e}")}),
            Ok(req) => {
                let on = if req.strict.unwrap_or(strict) {
                    OnProblem::Fail
                } else {
                    OnProblem::Skip
                };
                let inputs = Inputs {
                    labels: req
                        .labels
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (i + 1, io::label_from_value(v))),
                    labels_source: "labels".into(),
                    rollouts: req
                        .rollouts
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (i + 1, io::rollout_from_value(v, i + 1))),
                    rollouts_source: "rollouts".into(),
                };
                let mut next = state.clone();
                match reward::run(inputs, cfg, &mut next, vocab, on) {
                    Err(p) => serde_json::json!({"error": format!("{p}")}),
                    Ok(report) => {
                        *state = next;
                        if let Some(p) = state_path {
                            state.save(p)?;
                        }
                        serde_json::json!({
                            "scores": report.scores,
                            "groups": report.groups,
                            "summary": report.summary,
                            "problems": report.problems,
                        })
                    }
                }
            }
        };
        serde_json::to_writer(&mut out, &answer)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    Ok(())
}
