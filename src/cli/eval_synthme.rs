//! `actfer eval synthme`: the motion analysis scored on a SynthME folder.

use std::fmt::Write as _;
use std::path::PathBuf;

use actfer::eval::recognition::RecognitionReport;
use actfer::face::pipeline::FacePipeline;
use actfer::flow::FlowMethod;
use actfer::models::ModelStore;
use actfer::motion::au::MotionOptions;
use actfer::motion::clip::ClipOptions;
use actfer::motion::synthme::evaluate_spotting;
use actfer::motion::synthme::{evaluate, Scores};
use actfer::synth::labels::{Kind, Labels};
use actfer::Error;
use candle_core::Device;
use clap::Args;

use super::eval::{counts_header, counts_row};

#[derive(Debug, Args)]
pub struct SynthmeArgs {
    /// A SynthME folder (`actfer synth`, frame folders).
    #[arg(long)]
    pub data: PathBuf,
    /// Flow method (see `actfer flow --help`).
    #[arg(long, default_value = "dis")]
    pub method: String,
    /// An AU is present from this displacement, in inter-ocular distances.
    #[arg(long, default_value_t = MotionOptions::default().min_displacement_iod)]
    pub min_displacement: f32,
    /// ... and at least this share of the strongest AU's displacement.
    #[arg(long, default_value_t = MotionOptions::default().min_relative)]
    pub min_relative: f32,
    /// ... and an intensity of at least this.
    #[arg(long, default_value_t = MotionOptions::default().min_intensity)]
    pub min_intensity: f32,
    /// Also write every sample (gold and predicted AUs and classes) as JSON lines here.
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: SynthmeArgs) -> anyhow::Result<()> {
    let labels = Labels::read(&a.data)?;
    let method = super::flow::method(&a.method)?;
    let store = ModelStore::from_env()?;
    let pipeline = FacePipeline::load(&store, &Device::Cpu)?;
    let options = MotionOptions {
        min_displacement_iod: a.min_displacement,
        min_relative: a.min_relative,
        min_intensity: a.min_intensity,
        ..MotionOptions::default()
    };
    if labels.clips.iter().any(|c| c.kind == Kind::Long) {
        return run_spotting(&a, &labels, &pipeline, method.as_ref(), options);
    }
    let total: usize = labels.clips.iter().map(|c| c.events.len()).sum();
    let bar = actfer::progress::bar(total as u64, "expressions");
    let report = evaluate(
        &a.data,
        &labels,
        &pipeline,
        method.as_ref(),
        &options,
        |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    if let Some(path) = &a.samples {
        let mut out = String::new();
        for s in &report.samples {
            out.push_str(&serde_json::to_string(s)?);
            out.push('\n');
        }
        std::fs::write(path, out).map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    for (id, why) in &report.skipped {
        tracing::warn!("{id} skipped: {why}");
    }
    if a.json {
        return super::print_json(&report);
    }
    let mut t = format!(
        "{} expressions, method {}, {:.1} s\n",
        report.samples.len(),
        report.method,
        report.seconds
    );
    for (name, scores) in [("micro", &report.micro), ("macro", &report.macro_)] {
        if let Some(s) = scores {
            write_scores(&mut t, name, s);
        }
    }
    print!("{t}");
    Ok(())
}

fn write_scores(t: &mut String, name: &str, s: &Scores) {
    let _ = writeln!(
        t,
        "\n== {name}: {} expressions; mean AU F1 {:.4}, ME class UF1 {:.4} UAR {:.4}, emotion UF1 {:.4}",
        s.samples, s.aus.mean_f1, s.me_class.uf1, s.me_class.uar, s.emotion.uf1
    );
    counts_header(t, "AU");
    for row in &s.aus.aus {
        counts_row(
            t,
            &format!("AU{} ({})", row.au.number, row.support),
            &row.counts,
        );
    }
    for row in &s.aus.extra {
        counts_row(t, &format!("AU{} (0)", row.au.number), &row.counts);
    }
    confusion(t, "ME class", &s.me_class);
    confusion(t, "emotion", &s.emotion);
}

fn confusion(t: &mut String, what: &str, r: &RecognitionReport) {
    let _ = writeln!(t, "{what} confusion (rows gold, columns predicted):");
    let _ = write!(t, "{:<12}", "");
    for c in &r.classes {
        let _ = write!(t, " {:>9}", &c.label[..c.label.len().min(9)]);
    }
    let _ = writeln!(t, " {:>9}", "other");
    for (i, c) in r.classes.iter().enumerate() {
        let _ = write!(t, "{:<12}", c.label);
        for v in &r.confusion[i] {
            let _ = write!(t, " {v:>9}");
        }
        let _ = writeln!(t, " {:>9}", r.other[i]);
    }
}

fn run_spotting(
    a: &SynthmeArgs,
    labels: &Labels,
    pipeline: &FacePipeline,
    method: &dyn FlowMethod,
    motion: MotionOptions,
) -> anyhow::Result<()> {
    let mut options = ClipOptions {
        motion,
        ..ClipOptions::default()
    };
    options.spotting.fps = labels.generator.fps;
    let frames: usize = labels.clips.iter().map(|c| c.frames).sum();
    let bar = actfer::progress::bar(frames as u64, "frames");
    let result = evaluate_spotting(&a.data, labels, pipeline, method, &options, |n, _| {
        bar.set_position(n as u64)
    })?;
    bar.finish_and_clear();
    if let Some(path) = &a.samples {
        let mut out = String::new();
        for s in &result.predicted {
            out.push_str(&serde_json::to_string(s)?);
            out.push('\n');
        }
        std::fs::write(path, out).map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    if a.json {
        return super::print_json(&result);
    }
    let r = &result.report;
    let mut t = format!(
        "{} long videos, {} frames, method {}, {:.1} s; {} gold and {} spotted intervals, TP at IoU >= 0.5\n",
        result.videos, result.frames, result.method, result.seconds, r.gold, r.predicted
    );
    counts_header(&mut t, "kind");
    counts_row(&mut t, "micro", &r.micro);
    counts_row(&mut t, "macro", &r.macro_);
    counts_row(&mut t, "overall", &r.overall);
    let _ = writeln!(
        t,
        "blinks: {} in the labels, {} taken for an expression",
        result.blinks, result.blinks_taken_for_expressions
    );
    print!("{t}");
    Ok(())
}
