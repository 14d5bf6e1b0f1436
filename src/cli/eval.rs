//! `actfer eval`: the evaluation protocols over prediction and gold files (formats in
//! `actfer::eval`'s docs and README.md, "Evaluation").

use std::fmt::Write as _;
use std::path::PathBuf;

use actfer::eval::{self, aus, flow, recognition, spotting, Counts};
use actfer::Error;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// ME spotting, MEGC: TP when IoU >= 0.5 with a not-yet-matched gold interval of the same
    /// video and kind; TP/FP/FN, precision, recall, F1 for micro, macro and overall. JSONL lines
    /// {"video", "onset", "offset", "kind": "micro"|"macro"}, frames inclusive.
    Spotting(SpottingArgs),
    /// ME recognition: UF1, UAR, accuracy, per-class table and confusion matrix. JSONL lines
    /// {"id", "label"}, joined on id.
    Recognition(RecognitionArgs),
    /// AUs: per-AU F1 and mean F1 over the AUs present in gold. JSONL lines {"id", "aus"},
    /// joined on id.
    Aus(AusArgs),
    /// Optical flow: EPE overall, inside a mask, and per gold magnitude (< 1, 1-3, > 3 px), over
    /// Middlebury .flo files or folders of them matched by name.
    Flow(FlowArgs),
    /// Motion analysis on a SynthME folder: every expression's onset -> apex motion read as
    /// AUs and an emotion (face found on the onset frame), scored per AU (F1), by ME class
    /// (UF1/UAR) and by emotion, micro and macro apart.
    Synthme(super::eval_synthme::SynthmeArgs),
    /// The agent on a SynthME folder: each expression clip asked one question; emotion and ME
    /// class UF1/UAR, AU F1, parse rate, mean steps, zoom rate and seconds per sample, next to
    /// the tool-only pipeline (spotting, motion AUs, prototype inference; no language model).
    Agent(super::eval_agent::AgentArgs),
}

#[derive(Debug, Args)]
pub struct Files {
    /// Predictions.
    #[arg(long)]
    pub pred: PathBuf,
    /// Gold labels.
    #[arg(long)]
    pub gold: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SpottingArgs {
    #[command(flatten)]
    pub files: Files,
    /// Let a prediction match gold of the other kind (counts stay by gold/predicted kind).
    #[arg(long)]
    pub any_kind: bool,
}

#[derive(Debug, Args)]
pub struct RecognitionArgs {
    #[command(flatten)]
    pub files: Files,
    /// Compare labels exactly as written (no emotion spellings, no lowercasing).
    #[arg(long)]
    pub raw_labels: bool,
}

#[derive(Debug, Args)]
pub struct AusArgs {
    #[command(flatten)]
    pub files: Files,
    /// Tell R12, L12 and AU12 apart.
    #[arg(long)]
    pub sides: bool,
}

#[derive(Debug, Args)]
pub struct FlowArgs {
    /// Predicted .flo file, or folder of .flo files.
    #[arg(long)]
    pub pred: PathBuf,
    /// Gold .flo file, or folder of .flo files (matched to predictions by name).
    #[arg(long)]
    pub gold: PathBuf,
    /// Mask image (non-zero = inside), or for folders a folder of NAME.png per gold NAME.flo.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl EvalCommand {
    pub fn wants_json(&self) -> bool {
        match self {
            EvalCommand::Spotting(a) => a.files.json,
            EvalCommand::Recognition(a) => a.files.json,
            EvalCommand::Aus(a) => a.files.json,
            EvalCommand::Flow(a) => a.json,
            EvalCommand::Synthme(a) => a.json,
            EvalCommand::Agent(a) => a.json,
        }
    }
}

pub fn run(cmd: EvalCommand) -> anyhow::Result<()> {
    match cmd {
        EvalCommand::Spotting(a) => run_spotting(a),
        EvalCommand::Recognition(a) => run_recognition(a),
        EvalCommand::Aus(a) => run_aus(a),
        EvalCommand::Flow(a) => run_flow(a),
        EvalCommand::Synthme(a) => super::eval_synthme::run(a),
        EvalCommand::Agent(a) => super::eval_agent::run(a),
    }
}

fn run_spotting(a: SpottingArgs) -> anyhow::Result<()> {
    let gold = spotting::read_intervals(&a.files.gold)?;
    let pred = spotting::read_intervals(&a.files.pred)?;
    check_videos(&a.files.gold, &gold, &pred)?;
    let report = spotting::evaluate(
        &gold,
        &pred,
        spotting::SpottingOptions {
            match_kinds: !a.any_kind,
        },
    );
    if a.files.json {
        return super::print_json(&report);
    }
    let mut t = format!(
        "{} gold and {} predicted intervals; TP at IoU >= 0.5\n",
        report.gold, report.predicted
    );
    counts_header(&mut t, "kind");
    counts_row(&mut t, "micro", &report.micro);
    counts_row(&mut t, "macro", &report.macro_);
    counts_row(&mut t, "overall", &report.overall);
    print!("{t}");
    Ok(())
}

fn run_recognition(a: RecognitionArgs) -> anyhow::Result<()> {
    let gold = recognition::read_labels(&a.files.gold)?;
    let pred = recognition::read_labels(&a.files.pred)?;
    let joined = eval::join_ids(&gold, &pred).map_err(Error::Internal)?;
    let report = recognition::evaluate(
        &joined,
        recognition::RecognitionOptions {
            normalise: !a.raw_labels,
        },
    )
    .map_err(|e| Error::bad_input(&a.files.gold, e))?;
    warn_ids(&report.missing_ids, &report.unmatched_ids);
    if a.files.json {
        return super::print_json(&report);
    }
    let mut t = format!(
        "{} gold samples, {} classes: UF1 {:.4}  UAR {:.4}  accuracy {:.4}\n",
        report.samples,
        report.classes.len(),
        report.uf1,
        report.uar,
        report.accuracy
    );
    counts_header(&mut t, "class");
    for c in &report.classes {
        counts_row(&mut t, &c.label, &c.counts);
    }
    let width = report
        .classes
        .iter()
        .map(|c| c.label.len())
        .max()
        .unwrap_or(0)
        .max(9);
    let _ = write!(
        t,
        "\nconfusion (rows gold, columns predicted)\n{:<width$}",
        ""
    );
    for c in &report.classes {
        let _ = write!(t, " {:>width$}", c.label);
    }
    let _ = writeln!(t, " {:>width$} {:>width$}", "(other)", "(missing)");
    for (i, c) in report.classes.iter().enumerate() {
        let _ = write!(t, "{:<width$}", c.label);
        for n in &report.confusion[i] {
            let _ = write!(t, " {n:>width$}");
        }
        let _ = writeln!(
            t,
            " {:>width$} {:>width$}",
            report.other[i], report.missing[i]
        );
    }
    if !report.other_labels.is_empty() {
        let _ = writeln!(
            t,
            "predicted labels outside the gold classes: {}",
            report.other_labels.join(", ")
        );
    }
    print!("{t}");
    Ok(())
}

fn run_aus(a: AusArgs) -> anyhow::Result<()> {
    let gold = aus::read_au_sets(&a.files.gold)?;
    let pred = aus::read_au_sets(&a.files.pred)?;
    let joined = eval::join_ids(&gold, &pred).map_err(Error::Internal)?;
    let report = aus::evaluate(
        &joined,
        aus::AuOptions {
            count_sides: a.sides,
        },
    );
    warn_ids(&report.missing_ids, &report.unmatched_ids);
    if a.files.json {
        return super::print_json(&report);
    }
    let mut t = format!(
        "{} gold samples, {} AUs in gold: mean F1 {:.4}{}\n",
        report.samples,
        report.aus.len(),
        report.mean_f1,
        if a.sides { " (sides counted)" } else { "" }
    );
    counts_header(&mut t, "AU");
    for s in &report.aus {
        counts_row(&mut t, &s.au.to_string(), &s.counts);
    }
    counts_row(&mut t, "pooled", &report.pooled);
    if !report.extra.is_empty() {
        let extra: Vec<String> = report
            .extra
            .iter()
            .map(|s| format!("{} ({} FP)", s.au, s.counts.fp))
            .collect();
        let _ = writeln!(
            t,
            "predicted AUs in no gold sample (not in the mean): {}",
            extra.join(", ")
        );
    }
    print!("{t}");
    Ok(())
}

fn run_flow(a: FlowArgs) -> anyhow::Result<()> {
    let report = flow::evaluate_paths(&a.pred, &a.gold, a.mask.as_deref())?;
    if !report.unmatched.is_empty() {
        tracing::warn!(
            "{} predicted .flo file(s) have no gold file and are ignored (first: {})",
            report.unmatched.len(),
            report.unmatched[0]
        );
    }
    if a.json {
        return super::print_json(&report);
    }
    let p = &report.pooled;
    let mut t = format!(
        "{} file(s); EPE in px, pooled over pixels; {} gold pixel(s) of unknown flow left out\n",
        report.files.len(),
        p.unknown
    );
    let _ = writeln!(t, "{:<16} {:>12} {:>10}", "pixels", "count", "EPE");
    let mut row = |name: &str, s: &flow::EpeStat| {
        let epe = s.epe.map_or("-".to_string(), |e| format!("{e:.4}"));
        let _ = writeln!(t, "{name:<16} {:>12} {epe:>10}", s.pixels);
    };
    row("all", &p.all);
    if let Some(m) = &p.masked {
        row("inside mask", m);
    }
    row("gold < 1 px", &p.small);
    row("gold 1-3 px", &p.medium);
    row("gold > 3 px", &p.large);
    print!("{t}");
    Ok(())
}

/// Spotting predictions name videos: none of them in the gold file is a naming mismatch (an
/// error, where it would score F1 0); some of them outside it, a warning. A video with no
/// predicted interval is a spotter that found nothing there, so not a warning.
fn check_videos(
    gold_path: &std::path::Path,
    gold: &[spotting::Interval],
    pred: &[spotting::Interval],
) -> anyhow::Result<()> {
    use std::collections::BTreeSet;
    let videos = |list: &[spotting::Interval]| -> BTreeSet<String> {
        list.iter().map(|i| i.video.clone()).collect()
    };
    let (gold_videos, pred_videos) = (videos(gold), videos(pred));
    let outside: Vec<&String> = pred_videos.difference(&gold_videos).collect();
    if !gold_videos.is_empty() && !pred_videos.is_empty() && outside.len() == pred_videos.len() {
        return Err(Error::bad_input(
            gold_path,
            format!(
                "no predicted video is in the gold file (gold names e.g. {:?}, the predictions \
                 e.g. {:?}); name the videos the same way in both files",
                gold_videos.first().map_or("", |v| v.as_str()),
                outside[0]
            ),
        )
        .into());
    }
    if !outside.is_empty() {
        tracing::warn!(
            "{} predicted video(s) are not in the gold file; their intervals count as false \
             positives (first: {})",
            outside.len(),
            outside[0]
        );
    }
    Ok(())
}

fn warn_ids(missing: &[String], unmatched: &[String]) {
    if !missing.is_empty() {
        tracing::warn!(
            "{} gold id(s) have no prediction and count as wrong (first: {})",
            missing.len(),
            missing[0]
        );
    }
    if !unmatched.is_empty() {
        tracing::warn!(
            "{} predicted id(s) have no gold line and are ignored (first: {})",
            unmatched.len(),
            unmatched[0]
        );
    }
}

pub(super) fn counts_header(t: &mut String, first: &str) {
    let _ = writeln!(
        t,
        "{first:<12} {:>6} {:>6} {:>6} {:>9} {:>9} {:>9}",
        "TP", "FP", "FN", "precision", "recall", "F1"
    );
}

pub(super) fn counts_row(t: &mut String, name: &str, c: &Counts) {
    let _ = writeln!(
        t,
        "{name:<12} {:>6} {:>6} {:>6} {:>9.4} {:>9.4} {:>9.4}",
        c.tp, c.fp, c.fn_, c.precision, c.recall, c.f1
    );
}
