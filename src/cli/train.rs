//! `actfer train flow`: trains MEFlowNet on SynthME pairs.

use std::path::PathBuf;

use actfer::flow::meflownet::DEFAULT_ITERS;
use actfer::flow::train::{train, TrainOptions, DEFAULT_GAMMA};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// MEFlowNet on a SynthME folder's pairs (consecutive and onset -> apex), with a sequence
    /// loss, AdamW, checkpoints (OUT.ckpt.safetensors + OUT.ckpt.json) and validation EPE on
    /// micro onset -> apex pairs.
    Flow(TrainFlowArgs),
}

impl TrainCommand {
    pub fn wants_json(&self) -> bool {
        match self {
            TrainCommand::Flow(a) => a.json,
        }
    }
}

#[derive(Debug, Args)]
pub struct TrainFlowArgs {
    /// SynthME training folder (`actfer synth --flow all`).
    #[arg(long)]
    pub data: PathBuf,
    /// Training steps (in total, counting resumed ones).
    #[arg(long)]
    pub steps: usize,
    /// Where the trained weights go (safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// SynthME folder for validation EPE (its micro onset -> apex pairs).
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Pairs per step.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Train on random square crops of this side (a multiple of 4; 0: whole frames).
    #[arg(long, default_value_t = 64)]
    pub crop: usize,
    /// Peak learning rate (AdamW; warm-up, then cosine decay).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Random seed (pair sampling, mirroring, initial weights are candle's).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Refinement iterations.
    #[arg(long, default_value_t = DEFAULT_ITERS)]
    pub iters: usize,
    /// Decay of the per-iteration loss weights.
    #[arg(long, default_value_t = DEFAULT_GAMMA)]
    pub gamma: f64,
    /// Validate every this many steps.
    #[arg(long, default_value_t = 50)]
    pub val_every: usize,
    /// Validation pairs (the first micro onset -> apex pairs of --val).
    #[arg(long, default_value_t = 32)]
    pub val_pairs: usize,
    /// Checkpoint every this many steps.
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: usize,
    /// Resume from a checkpoint (OUT.ckpt.safetensors; its .json gives the step).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Print the training report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: TrainCommand) -> anyhow::Result<()> {
    match cmd {
        TrainCommand::Flow(a) => {
            let opts = TrainOptions {
                data: a.data,
                val: a.val,
                out: a.out,
                steps: a.steps,
                batch: a.batch.max(1),
                crop: a.crop / 4 * 4,
                lr: a.lr,
                seed: a.seed,
                iters: a.iters.max(1),
                gamma: a.gamma,
                val_every: a.val_every,
                val_pairs: a.val_pairs,
                checkpoint_every: a.checkpoint_every,
                resume: a.resume,
            };
            let quiet = a.json;
            let report = train(&opts, |line| {
                if !quiet {
                    eprintln!("{line}");
                }
            })?;
            if a.json {
                super::print_json(&report)?;
            } else {
                eprintln!("weights: {}", report.weights.display());
            }
            Ok(())
        }
    }
}
