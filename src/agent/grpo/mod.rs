//! UC-GRPO training of the reasoner's LoRA adapter (`actfer train policy grpo`; DESIGN.md,
//! "Training the reasoner (SFT, then UC-GRPO)").
//!
//! From an SFT adapter (also the KL reference), each step:
//! 1. merges the current adapter into the base model as Q8_0, so the rollouts run on the fast
//!    inference path the agent runs on ([`crate::llm::lora::merge`]);
//! 2. takes `batch` queries ([`queries`]): expression clips of a SynthME train or val folder
//!    (a test split is refused), in an order shuffled per pass over the folder, each with a
//!    question drawn from prompts/train_questions.txt;
//! 3. runs `group` rollouts of each through the real loop ([`crate::agent::run`]) with the
//!    trained system prompt, sampling at `temperature` ([`rollout`]); a clip's rollouts share
//!    one toolbox, so its perception (faces, flow, spotting) runs once;
//! 4. scores them with the UC-GRPO rewards, the zoom utility's calibration carried from step
//!    to step ([`score`], [`crate::reward`]): each rollout's advantage;
//! 5. updates the adapter on each rollout's conversation up to its first final answer, as the
//!    model wrote it ([`crate::llm::lora::grpo`]). A group whose rewards were all equal has no
//!    advantage and is left out of the update (its KL term with it), which saves its forward
//!    and backward passes.
//!
//! The output folder gets `adapter.safetensors` (at each checkpoint and at the end),
//! `log.csv` (one line per step, [`log`]), `reward_state.json` (the calibration after the last
//! step), and `checkpoint.safetensors` + `checkpoint.json` ([`checkpoint`]) every `ckpt_every`
//! steps and at the end. `policy.gguf`, the merged model of the step's rollouts, is removed at
//! the end. A resumed run goes on bit for bit where the machine allows: the queries, questions
//! and sampling seeds are functions of the seed and the step, and the checkpoint holds the
//! adapter, AdamW's moments and the calibration.
//!
//! Where training differs from inference:
//! - the verifier sends no answer back for revision, so the reward and the update read the same
//!   (first) answer;
//! - the update reads the log-probabilities of the conversation's text tokenized again, at
//!   temperature 1 and without the step schema's mask; the rollouts drew from the masked logits
//!   at `temperature`, and constrained decoding may have split the text into other tokens;
//! - a clip's rollouts share its toolbox, so a later rollout's schema may offer the intervals
//!   an earlier one spotted before this one asked for them.

pub mod checkpoint;
pub mod log;
pub mod queries;
pub mod rollout;
pub mod score;
mod train;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::run::Limits;
use crate::llm::lora::optim::AdamWParams;
use crate::reward::RewardConfig;

pub use train::{train_grpo, GrpoPaths, GrpoReport};

/// Default rollouts per query (`G`).
pub const DEFAULT_GROUP: usize = 4;
/// Default queries per step.
pub const DEFAULT_BATCH: usize = 4;
/// Default steps of a run.
pub const DEFAULT_STEPS: usize = 200;
/// Default learning rate (DESIGN.md: 1e-5 to 5e-5 for RL).
pub const DEFAULT_LR: f64 = 2e-5;
/// Default weight of the KL penalty.
pub const DEFAULT_BETA: f64 = 0.04;
/// Default clip range of the ratio.
pub const DEFAULT_CLIP: f64 = 0.2;
/// Default sampling temperature of the rollouts (DESIGN.md: about 0.8 to 1.0).
pub const DEFAULT_TEMPERATURE: f64 = 0.9;
pub const DEFAULT_SEED: u64 = 0;
pub const DEFAULT_CKPT_EVERY: usize = 10;
/// Default longest conversation trained on, in tokens (longer ones are cut).
pub const DEFAULT_MAX_LEN: usize = 2048;
pub const DEFAULT_MAX_GRAD_NORM: f64 = 1.0;
/// AdamW without weight decay: decay would pull the adapter towards zero, that is towards the
/// base model, not the reference; the KL term is what keeps the policy near the reference.
pub const DEFAULT_ADAMW: AdamWParams = AdamWParams {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weight_decay: 0.0,
};

/// The file names in the output folder.
pub const ADAPTER_FILE: &str = "adapter.safetensors";
pub const LOG_FILE: &str = "log.csv";
pub const STATE_FILE: &str = "reward_state.json";
pub const POLICY_FILE: &str = "policy.gguf";

/// Training settings; every default is one of the `DEFAULT_*` constants above or the loop's
/// own ([`Limits`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpoOptions {
    /// Rollouts per query.
    pub group: usize,
    /// Queries per step.
    pub batch: usize,
    /// Steps of the run.
    pub steps: usize,
    pub lr: f64,
    /// Weight of the KL penalty against the reference (the initial adapter).
    pub beta: f64,
    /// The ratio's clip range.
    pub clip: f64,
    /// Optimizer steps per batch of rollouts.
    pub updates: usize,
    pub temperature: f64,
    /// Seeds the query order, the questions and the sampling.
    pub seed: u64,
    /// Global gradient-norm clip (0: none).
    pub max_grad_norm: f64,
    /// Longest conversation trained on, in tokens.
    pub max_len: usize,
    /// Steps a rollout may take, the final answer included.
    pub turns: usize,
    /// Tokens of one step.
    pub step_tokens: usize,
    /// Tokens of a whole rollout.
    pub rollout_tokens: usize,
    /// How many emotions an answer may choose from ([`Limits::emotions`]).
    pub emotions: usize,
    /// Flow method of the motion tools.
    pub method: String,
    pub reward: RewardConfig,
    pub adamw: AdamWParams,
    /// Checkpoint every this many steps (and at the end); 0: at the end only.
    pub ckpt_every: usize,
    /// Stop after this step (of `steps`); `None`: at the end.
    pub max_steps: Option<usize>,
    /// A checkpoint to go on from (its folder or its `checkpoint.json`); its settings win
    /// over these but for `ckpt_every`, `max_steps` and `resume`.
    pub resume: Option<PathBuf>,
}

impl Default for GrpoOptions {
    fn default() -> Self {
        let limits = Limits::default();
        GrpoOptions {
            group: DEFAULT_GROUP,
            batch: DEFAULT_BATCH,
            steps: DEFAULT_STEPS,
            lr: DEFAULT_LR,
            beta: DEFAULT_BETA,
            clip: DEFAULT_CLIP,
            updates: 1,
            temperature: DEFAULT_TEMPERATURE,
            seed: DEFAULT_SEED,
            max_grad_norm: DEFAULT_MAX_GRAD_NORM,
            max_len: DEFAULT_MAX_LEN,
            turns: limits.max_steps,
            step_tokens: limits.step_tokens,
            rollout_tokens: limits.max_tokens,
            emotions: limits.emotions,
            method: "dis".into(),
            reward: RewardConfig::default(),
            adamw: DEFAULT_ADAMW,
            ckpt_every: DEFAULT_CKPT_EVERY,
            max_steps: None,
            resume: None,
        }
    }
}

impl GrpoOptions {
    /// The loop's budgets for one rollout: no revision (see the module docs).
    pub fn limits(&self) -> Limits {
        Limits {
            max_steps: self.turns,
            max_tokens: self.rollout_tokens,
            step_tokens: self.step_tokens,
            emotions: self.emotions,
            revisions: 0,
            ..Limits::default()
        }
    }

    /// Checks the settings; says what is wrong.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.group < 2 {
            return Err(format!(
                "group {}: a group needs 2 rollouts or more (advantages compare them)",
                self.group
            ));
        }
        if self.batch == 0 || self.steps == 0 || self.updates == 0 {
            return Err("batch, steps and updates must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("learning rate {} must be positive", self.lr));
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(format!("beta {} must be 0 or more", self.beta));
        }
        if !(self.clip > 0.0 && self.clip < 1.0) {
            return Err(format!("clip {} must lie in (0, 1)", self.clip));
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!(
                "temperature {} must be positive: greedy rollouts of one query are all the same",
                self.temperature
            ));
        }
        if self.turns < 2 || self.step_tokens == 0 || self.rollout_tokens == 0 {
            return Err(
                "a rollout needs 2 turns or more (evidence, then the answer) and some tokens"
                    .into(),
            );
        }
        if self.max_len < 2 {
            return Err(format!("max_len {} leaves nothing to train", self.max_len));
        }
        self.reward.validate()
    }
}
