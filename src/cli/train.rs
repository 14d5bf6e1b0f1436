//! `actfer train flow`: trains MEFlowNet on SynthME pairs; `actfer train motion` fits the AU
//! motion patterns.

use std::path::PathBuf;

use actfer::flow::meflownet::{Config, InitialFlow, DEFAULT_ITERS};
use actfer::flow::train::{train, TrainOptions, DEFAULT_GAMMA, DEFAULT_SHARES};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// MEFlowNet on a SynthME folder's pairs (consecutive and onset -> apex), with a sequence
    /// loss, AdamW, checkpoints (OUT.ckpt.safetensors + OUT.ckpt.json) and validation EPE on
    /// micro onset -> apex pairs.
    Flow(TrainFlowArgs),
    /// The AU motion patterns, fitted to a SynthME folder's expressions (onset -> apex
    /// motion and the labelled AUs), written as JSON (the committed weights/au_motion.json).
    Motion(TrainMotionArgs),
    /// The reasoner (the agent's language model): `data` writes training conversations from
    /// SynthME train/val clips through the real tools, `sft` fine-tunes LoRA adapters on them,
    /// `grpo` goes on with UC-GRPO on the model's own rollouts, `merge` writes the adapted
    /// model as a GGUF.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Training conversations (JSON lines): each SynthME train/val expression clip, and its
    /// apex frame as an image, through the real tools with the teacher policy; kept when the
    /// answer is the gold emotion and passes the verifier and the words checks.
    Data(super::train_policy_data::PolicyDataArgs),
    /// UC-GRPO from an SFT adapter: per step, rollouts of SynthME train clips through the
    /// real loop with the current adapter (merged as Q8_0), scored with the UC-GRPO rewards,
    /// then a clipped policy-gradient update with a KL penalty against the starting adapter.
    /// Writes OUT/adapter.safetensors, OUT/log.csv (one line per step) and a checkpoint to
    /// --resume from.
    Grpo(super::train_policy_grpo::GrpoArgs),
    #[command(flatten)]
    Lora(super::train_policy::LoraCommand),
}

#[derive(Debug, Args)]
pub struct TrainMotionArgs {
    /// SynthME training folder (frame folders); repeat for several (short clips and long
    /// videos: the long videos' blinks teach AU45).
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    /// Where the patterns go (JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Flow method.
    #[arg(long, default_value = "dis")]
    pub method: String,
    /// Ridge weight of the least squares.
    #[arg(long, default_value_t = 1e-3)]
    pub ridge: f64,
    /// Drop pattern parts that move less than this (IOD).
    #[arg(long, default_value_t = 0.004)]
    pub min_part: f32,
    /// L2 weight of the AU detectors' logistic regressions.
    #[arg(long, default_value_t = 0.001)]
    pub l2: f32,
    /// Print the fit as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl TrainCommand {
    pub fn wants_json(&self) -> bool {
        match self {
            TrainCommand::Flow(a) => a.json,
            TrainCommand::Motion(a) => a.json,
            TrainCommand::Policy(PolicyCommand::Data(a)) => a.json,
            TrainCommand::Policy(PolicyCommand::Grpo(a)) => a.json,
            TrainCommand::Policy(PolicyCommand::Lora(c)) => c.wants_json(),
        }
    }
}

#[derive(Debug, Args)]
pub struct TrainFlowArgs {
    /// SynthME training folder (`actfer synth --flow all` or `--flow apex`); repeat for
    /// several, trained on together.
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
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
    /// Sampling shares of micro onset -> apex, macro onset -> apex and consecutive pairs
    /// (normalised; an empty pool's share goes to the others).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_SHARES, value_name = "MICRO,MACRO,CONSECUTIVE")]
    pub shares: Vec<f32>,
    /// Random seed (pair sampling, mirroring, initial weights are candle's).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Refinement iterations.
    #[arg(long, default_value_t = DEFAULT_ITERS)]
    pub iters: usize,
    /// The network's sizes as a JSON file (fields of `actfer::flow::meflownet::Config`; the
    /// ones it leaves out keep their defaults, but `initial_flow` left out reads as `zero`).
    /// The weights file records them.
    #[arg(long, value_name = "FILE.json")]
    pub net: Option<PathBuf>,
    /// Where the refinement starts: `zero`, or `dis` (OpenCV's DIS flow, which the network
    /// learns to correct). Overrides --net's `initial_flow`, and on --resume the checkpoint's
    /// (the weights fit either).
    #[arg(long, value_name = "zero|dis", value_parser = parse_initial_flow)]
    pub init: Option<InitialFlow>,
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

fn parse_initial_flow(s: &str) -> Result<InitialFlow, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("{s:?}: use zero or dis"))
}

pub fn run(cmd: TrainCommand) -> anyhow::Result<()> {
    match cmd {
        TrainCommand::Motion(a) => train_motion(a),
        TrainCommand::Policy(PolicyCommand::Data(a)) => super::train_policy_data::run(a),
        TrainCommand::Policy(PolicyCommand::Grpo(a)) => super::train_policy_grpo::run(a),
        TrainCommand::Policy(PolicyCommand::Lora(c)) => super::train_policy::run(c),
        TrainCommand::Flow(a) => {
            let mut config = match &a.net {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        anyhow::anyhow!("cannot read {}: {e}; pass a JSON file", path.display())
                    })?;
                    serde_json::from_str::<Config>(&text).map_err(|e| {
                        anyhow::anyhow!("{} is not a MEFlowNet config: {e}", path.display())
                    })?
                }
                None => Config::default(),
            };
            config.iters = a.iters.max(1);
            if let Some(init) = a.init {
                config.initial_flow = init;
            }
            let shares: [f32; 3] = a.shares.as_slice().try_into().map_err(|_| {
                anyhow::anyhow!(
                    "--shares takes three numbers (micro, macro, consecutive), not {}",
                    a.shares.len()
                )
            })?;
            let opts = TrainOptions {
                config,
                data: a.data,
                val: a.val,
                out: a.out,
                steps: a.steps,
                batch: a.batch.max(1),
                crop: a.crop / 4 * 4,
                lr: a.lr,
                shares,
                seed: a.seed,
                gamma: a.gamma,
                val_every: a.val_every,
                val_pairs: a.val_pairs,
                checkpoint_every: a.checkpoint_every,
                resume: a.resume,
                initial_flow: a.init,
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

fn train_motion(a: TrainMotionArgs) -> anyhow::Result<()> {
    use actfer::face::pipeline::FacePipeline;
    use actfer::models::ModelStore;
    use actfer::motion::au::{observed_regions, LearnedPatterns, LEARNED_SCHEMA};
    use actfer::motion::learn::fit;

    let method = super::flow::method(&a.method)?;
    let store = ModelStore::from_env()?;
    let pipeline = FacePipeline::load(&store, &candle_core::Device::Cpu)?;
    let (mut examples, mut n_blinks, mut n_skipped) = (Vec::new(), 0, 0);
    for dir in &a.data {
        let (mut ex, blinks, skipped) = motion_examples(dir, &pipeline, method.as_ref())?;
        examples.append(&mut ex);
        n_blinks += blinks;
        n_skipped += skipped;
    }
    let f = fit(&examples, a.ridge, a.min_part)?;
    let labelled: Vec<actfer::motion::detect::Labelled> = examples
        .iter()
        .map(|e| {
            let present = e
                .aus
                .iter()
                .filter(|(_, r, l)| r.max(*l) > 0.0)
                .map(|a| a.0);
            (e.displacements.clone(), present.collect())
        })
        .collect();
    let aus: Vec<u8> = f.patterns.iter().map(|p| p.au).collect();
    let options = actfer::motion::detect::TrainOptions {
        l2: a.l2,
        ..Default::default()
    };
    let detectors = actfer::motion::detect::train(&observed_regions(), &labelled, &aus, &options);
    let file = LearnedPatterns {
        schema: LEARNED_SCHEMA.into(),
        command: format!(
            "actfer train motion --data {} --out {} --method {} --ridge {} --min-part {} --l2 {}",
            a.data
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(" --data "),
            a.out.display(),
            a.method,
            a.ridge,
            a.min_part,
            a.l2
        ),
        samples: f.samples,
        residual_rms_iod: f.residual_rms_iod,
        patterns: f.patterns.clone(),
        detectors: Some(detectors),
    };
    std::fs::write(&a.out, serde_json::to_string_pretty(&file)? + "\n")
        .map_err(|e| actfer::Error::io(a.out.display().to_string(), e))?;
    if a.json {
        return super::print_json(&f);
    }
    eprintln!(
        "{} examples ({} blinks; {} expressions skipped without a face); residual {:.5} IOD of {:.5}; {} patterns -> {}",
        f.samples,
        n_blinks,
        n_skipped,
        f.residual_rms_iod,
        f.signal_rms_iod,
        f.patterns.len(),
        a.out.display()
    );
    Ok(())
}

/// The training examples of one SynthME folder: every expression with its labelled AUs, and
/// every blink that stands alone as AU45 at its intensity on both eyes. Also returns how many
/// blinks there were and how many expressions showed no face.
fn motion_examples(
    dir: &std::path::Path,
    pipeline: &actfer::face::pipeline::FacePipeline,
    method: &dyn actfer::flow::FlowMethod,
) -> anyhow::Result<(Vec<actfer::motion::learn::Example>, usize, usize)> {
    use actfer::motion::au::BLINK_AU;
    use actfer::motion::learn::Example;
    use actfer::motion::synthme::{measure, measure_blinks};
    use actfer::synth::labels::{Labels, Side};

    let labels = Labels::read(dir)?;
    let total: usize = labels.clips.iter().map(|c| c.events.len()).sum();
    let bar = actfer::progress::bar(total as u64, "expressions");
    let (measured, skipped) = measure(dir, &labels, pipeline, method, |n, _| {
        bar.set_position(n as u64)
    })?;
    bar.finish_and_clear();
    let total: usize = labels.clips.iter().map(|c| c.blinks.len()).sum();
    let bar = actfer::progress::bar(total as u64, "blinks");
    let (blinks, _) = measure_blinks(dir, &labels, pipeline, method, |n, _| {
        bar.set_position(n as u64)
    })?;
    bar.finish_and_clear();
    let n_blinks = blinks.len();
    let mut examples: Vec<Example> = measured
        .into_iter()
        .map(|m| Example {
            aus: labels.clips[m.clip].events[m.event]
                .aus
                .iter()
                .map(|l| match l.side {
                    None => (l.au, l.intensity, l.intensity),
                    Some(Side::Right) => (l.au, l.intensity, 0.0),
                    Some(Side::Left) => (l.au, 0.0, l.intensity),
                })
                .collect(),
            displacements: m.displacements,
        })
        .collect();
    examples.extend(blinks.into_iter().map(|m| {
        let i = labels.clips[m.clip].blinks[m.event].intensity;
        Example {
            aus: vec![(BLINK_AU, i, i)],
            displacements: m.displacements,
        }
    }));
    Ok((examples, n_blinks, skipped.len()))
}
