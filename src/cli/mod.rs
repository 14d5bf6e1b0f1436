//! The `actfer` command line: one file per subcommand, each a thin layer over the library.

mod analyze;
mod ask;
mod au;
mod chat;
mod detect;
mod eval;
mod eval_agent;
mod eval_synthme;
mod explain;
mod facs;
mod flow;
mod generate;
mod media;
mod model_choice;
mod models;
mod quantize;
mod report;
mod reward;
mod spot;
mod subject;
mod synth;
mod train;
mod train_policy;
mod train_policy_data;
mod train_policy_grpo;

use clap::{Parser, Subcommand};

/// actfer: agentic facial-expression reasoning (face tools, optical flow, AU evidence).
#[derive(Debug, Parser)]
#[command(name = "actfer", version, about, propagate_version = true)]
pub struct Cli {
    /// Log more: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print errors only: no warnings, no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The model store: list, verify and locate models.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Find faces: box, score, 5 landmarks, 68 and 478 points, head pose. Every face of an
    /// image (largest first); the subject of a clip, tracked. Exit code 3 when there is no face.
    Detect(detect::DetectArgs),
    /// AU evidence from one image (or one frame of a clip): per face, AUs with intensity,
    /// FACS letter, side and source, the expression classifier, and emotion inference from the
    /// AUs. Exit code 3 when there is no face.
    Au(au::AuArgs),
    /// Ask a question about a face: the language model calls the face tools step by step and answers with an emotion and the AUs its observations showed, each citing its steps; writes the trace. Exit code 3 when there is no face
    Ask(ask::AskArgs),
    /// Micro-expression explanations for a clip or a dataset (a SynthME folder or a folder of
    /// clips): each clip spotted, each interval's AUs and emotion read from motion and
    /// explained by the language model; one JSON line per clip in --out, resumable (clips
    /// already there are not done again).
    Explain(explain::ExplainArgs),
    /// A trace as one self-contained HTML page: the question, the answer with its evidence and
    /// checks, every step with its thought, tool call, observation, AU bars, charts and
    /// images (inlined; nothing is loaded from elsewhere).
    Report(report::ReportArgs),
    /// The FACS tables: AU catalogue, facial regions, emotion prototypes.
    #[command(subcommand)]
    Facs(facs::FacsCommand),
    /// Inspect videos, frame folders and images.
    #[command(subcommand)]
    Media(media::MediaCommand),
    /// Score reasoning rollouts with UC-GRPO rewards against gold labels.
    Reward(reward::RewardArgs),
    /// Evaluation protocols: ME spotting (MEGC F1), recognition (UF1, UAR), AUs (per-AU F1),
    /// optical flow (EPE). Malformed input: exit code 2, naming the file and the line.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Optical flow between two images or two frames of a clip (--onset, --apex), with a
    /// classical method (TV-L1, DIS, Farneback); .flo and a colour map; --face aligns first.
    Flow(flow::FlowArgs),
    /// Expression intervals in a video from facial motion (onset, apex, offset; micro or
    /// macro; blinks apart), with the motion curves drawn (--png). Exit code 3 without a face.
    Spot(spot::SpotArgs),
    /// A clip's expressions from motion: for each spotted interval (or --onset/--apex), AUs
    /// with evidence, the emotion distribution and the region statistics.
    Analyze(analyze::AnalyzeArgs),
    /// SynthME: labelled synthetic micro-expression clips (frames, labels.json, ground-truth
    /// flow) from real identities, deterministic from a seed.
    Synth(synth::SynthArgs),
    /// Generate text from a prompt with the language model (default: the embedded
    /// SmolLM2-135M-Instruct), streamed to stdout.
    Generate(generate::GenerateArgs),
    /// Talk with the language model: each input line is a user message.
    Chat(chat::ChatArgs),
    /// Rewrite a GGUF language model in another quantization (e.g. Q4_1 -> Q8_0).
    Quantize(quantize::QuantizeArgs),
    /// Train networks: `train flow` trains MEFlowNet on SynthME pairs.
    #[command(subcommand)]
    Train(train::TrainCommand),
}

impl Cli {
    /// Whether the command prints machine-readable output (progress bars then stay hidden).
    pub fn wants_json(&self) -> bool {
        match &self.command {
            Command::Models(c) => c.wants_json(),
            Command::Media(c) => c.wants_json(),
            Command::Detect(a) => a.json,
            Command::Au(a) => a.json,
            Command::Ask(a) => a.json,
            Command::Explain(_) => false,
            Command::Report(_) => false,
            Command::Facs(c) => c.wants_json(),
            Command::Reward(c) => c.wants_json(),
            Command::Eval(c) => c.wants_json(),
            Command::Synth(a) => a.json,
            Command::Flow(a) => a.json,
            Command::Spot(a) => a.json,
            Command::Analyze(a) => a.json,
            Command::Generate(a) => a.json,
            Command::Chat(_) => false,
            Command::Quantize(a) => a.json,
            Command::Train(c) => c.wants_json(),
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Models(c) => models::run(c),
        Command::Media(c) => media::run(c),
        Command::Detect(a) => detect::run(a),
        Command::Au(a) => au::run(a),
        Command::Ask(a) => ask::run_ask(a),
        Command::Explain(a) => explain::run(a),
        Command::Report(a) => report::run(a),
        Command::Facs(c) => facs::run(c),
        Command::Reward(c) => reward::run(c),
        Command::Eval(c) => eval::run(c),
        Command::Synth(a) => synth::run(a),
        Command::Flow(a) => flow::run(a),
        Command::Spot(a) => spot::run(a),
        Command::Analyze(a) => analyze::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Chat(a) => chat::run(a),
        Command::Quantize(a) => quantize::run(a),
        Command::Train(c) => train::run(c),
    }
}

/// Prints a value as pretty JSON on stdout.
use subject::subject_frame;

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
