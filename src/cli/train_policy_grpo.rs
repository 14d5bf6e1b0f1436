//! `actfer train policy grpo`: UC-GRPO reinforcement learning of the reasoner's LoRA adapter on
//! its own rollouts over SynthME clips (docs/reasoner/grpo.md).

use std::path::PathBuf;

use actfer::agent::grpo::{
    train_grpo, GrpoOptions, GrpoPaths, DEFAULT_BATCH, DEFAULT_BETA, DEFAULT_CKPT_EVERY,
    DEFAULT_CLIP, DEFAULT_GROUP, DEFAULT_LR, DEFAULT_MAX_LEN, DEFAULT_SEED, DEFAULT_STEPS,
    DEFAULT_TEMPERATURE,
};
use actfer::agent::Limits;
use actfer::evidence::AppearanceModels;
use actfer::llm::REASONER_ADAPTER;
use actfer::models::ModelStore;
use actfer::reward::RewardConfig;
use candle_core::Device;
use clap::Args;

/// The base model the committed adapter was trained on: the shipped Q4_1 file (weights/
/// REASONER.md), not the Q8_0 copy that `smollm2-135m-instruct` names once set-up wrote it.
const REASONER_BASE: &str = "smollm2-135m-instruct:q4_1";

#[derive(Debug, Args)]
pub struct GrpoArgs {
    /// SynthME folder of the train or val split (`actfer synth --split train`); a test-split
    /// folder is refused.
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// The adapter to start from, also the KL reference (an SFT adapter).
    #[arg(long, default_value = REASONER_ADAPTER)]
    pub init: PathBuf,
    /// Base model: a GGUF file or a model name; the one the --init adapter was trained on.
    #[arg(long, default_value = REASONER_BASE)]
    pub base: String,
    /// Steps of the run.
    #[arg(long, default_value_t = DEFAULT_STEPS)]
    pub steps: usize,
    /// Stop after this step (a smoke run, or a run resumed later).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Queries (clips) per step.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch: usize,
    /// Rollouts per query.
    #[arg(long, default_value_t = DEFAULT_GROUP)]
    pub group: usize,
    /// Sampling temperature of the rollouts.
    #[arg(long, default_value_t = DEFAULT_TEMPERATURE)]
    pub temperature: f64,
    /// Learning rate (AdamW, constant).
    #[arg(long, default_value_t = DEFAULT_LR)]
    pub lr: f64,
    /// Weight of the KL penalty against the --init adapter.
    #[arg(long, default_value_t = DEFAULT_BETA)]
    pub beta: f64,
    /// Clip range of the probability ratio.
    #[arg(long, default_value_t = DEFAULT_CLIP)]
    pub clip: f64,
    /// Optimizer steps per batch of rollouts (the clip acts from the second).
    #[arg(long, default_value_t = 1)]
    pub updates: usize,
    /// Seed of the clip order, the questions and the sampling.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Steps a rollout may take, the final answer included.
    #[arg(long, default_value_t = Limits::default().max_steps)]
    pub turns: usize,
    /// Tokens of one rollout step.
    #[arg(long, default_value_t = Limits::default().step_tokens)]
    pub step_tokens: usize,
    /// Tokens of a whole rollout.
    #[arg(long, default_value_t = Limits::default().max_tokens)]
    pub rollout_tokens: usize,
    /// How many emotions a rollout's answer may choose from, the tools' highest ranked among
    /// those the shown AUs fit (as `eval agent --emotions`; 0: every one they fit). With 1
    /// the emotion reward is the same for every rollout of a clip.
    #[arg(long, default_value_t = Limits::default().emotions)]
    pub emotions: usize,
    /// Longest conversation trained on, in tokens (longer ones are cut).
    #[arg(long, default_value_t = DEFAULT_MAX_LEN)]
    pub max_len: usize,
    /// Flow method of the motion tools.
    #[arg(long, default_value = "dis")]
    pub method: String,
    /// Reward weights and calibration constants (TOML, as `actfer reward --config`).
    #[arg(long)]
    pub reward_config: Option<PathBuf>,
    /// Checkpoint every this many steps (and at the end; 0: at the end only).
    #[arg(long, default_value_t = DEFAULT_CKPT_EVERY)]
    pub ckpt_every: usize,
    /// Go on from a checkpoint (its folder, usually --out): its settings are used, and the
    /// base model, --init adapter and data must be the same.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Print the training report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: GrpoArgs) -> anyhow::Result<()> {
    let base = actfer::llm::resolve(&a.base)?;
    let reward = match &a.reward_config {
        Some(p) => RewardConfig::load(p)?,
        None => RewardConfig::default(),
    };
    let opts = GrpoOptions {
        group: a.group,
        batch: a.batch,
        steps: a.steps,
        lr: a.lr,
        beta: a.beta,
        clip: a.clip,
        updates: a.updates,
        temperature: a.temperature,
        seed: a.seed,
        max_len: a.max_len,
        turns: a.turns,
        step_tokens: a.step_tokens,
        rollout_tokens: a.rollout_tokens,
        emotions: a.emotions,
        method: a.method,
        reward,
        ckpt_every: a.ckpt_every,
        max_steps: a.max_steps,
        resume: a.resume,
        ..GrpoOptions::default()
    };
    let store = ModelStore::from_env()?;
    let models = AppearanceModels::load(&store, &Device::Cpu)?;
    let paths = GrpoPaths {
        base: &base,
        init: &a.init,
        data: &a.data,
        out: &a.out,
    };
    let report = train_grpo(&opts, &paths, &models)?;
    if a.json {
        return super::print_json(&report);
    }
    let last = report.records.last();
    eprintln!(
        "{} steps of {} on {} clips{}: last step's mean reward {}, zoom rate {}; {:.0} s",
        report.steps,
        report.total_steps,
        report.clips,
        report
            .resumed_at
            .map_or(String::new(), |s| format!(" (resumed at {s})")),
        last.map_or("-".into(), |r| format!("{:.4}", r.rewards.means.total)),
        last.map_or("-".into(), |r| format!("{:.2}", r.rewards.zoom_rate)),
        report.seconds
    );
    eprintln!("adapter: {}", report.adapter.display());
    eprintln!("log: {}", report.log.display());
    Ok(())
}
