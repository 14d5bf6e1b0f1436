//! [`train_grpo`]: the loop of the module docs ([`super`]), one step at a time.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::quantized::GgmlDType;
use candle_core::Tensor;
use serde::Serialize;

use super::checkpoint::{self, GrpoCheckpoint, Identity};
use super::log::{write_record, StepRecord, CSV_HEADER};
use super::queries::{gold, step_queries, stream};
use super::rollout::{rollouts, Rollout, Setup};
use super::score::{score_step, step_rewards, Group};
use super::{GrpoOptions, ADAPTER_FILE, LOG_FILE, POLICY_FILE, STATE_FILE};
use crate::agent::eval::expression_clips;
use crate::agent::policy::LlmPolicy;
use crate::agent::run::trained_system_prompt;
use crate::agent::trajectories::{questions, refuse_test_split};
use crate::agent::words::Vocabulary;
use crate::error::{Error, Result};
use crate::evidence::AppearanceModels;
use crate::llm::lora::adapter::base_identity;
use crate::llm::lora::checkpoint::restore;
use crate::llm::lora::data::{encode, Conversation, Example, Split};
use crate::llm::lora::grpo::{reference_logprobs, update, GrpoParams, Sample, UpdateOptions};
use crate::llm::lora::log::open_log;
use crate::llm::lora::optim::AdamW;
use crate::llm::lora::sft::CHECKPOINT_JSON;
use crate::llm::lora::{merge, Adapter, LoraModel};
use crate::llm::{ChatTemplate, SamplingParams, TextModel, Tokenizer};
use crate::reward::{CalibrationState, Gold};
use crate::synth::labels::{ClipLabel, Labels};

/// Where a run reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct GrpoPaths<'a> {
    /// The base model (GGUF) the initial adapter was trained on.
    pub base: &'a Path,
    /// The initial adapter: the starting policy and the KL reference.
    pub init: &'a Path,
    /// A SynthME folder of the train or val split.
    pub data: &'a Path,
    /// The output folder.
    pub out: &'a Path,
}

/// What [`train_grpo`] did.
#[derive(Debug, Clone, Serialize)]
pub struct GrpoReport {
    /// The step reached.
    pub steps: usize,
    /// The run's planned steps.
    pub total_steps: usize,
    pub resumed_at: Option<usize>,
    /// Expression clips in the data.
    pub clips: usize,
    /// Seconds of training, resumed runs included.
    pub seconds: f64,
    pub adapter: PathBuf,
    pub log: PathBuf,
    pub checkpoint: PathBuf,
    /// This run's steps.
    pub records: Vec<StepRecord>,
}

/// Trains the adapter at `paths.init` with UC-GRPO (see the module docs of [`super`]).
pub fn train_grpo(
    opts: &GrpoOptions,
    paths: &GrpoPaths<'_>,
    models: &AppearanceModels,
) -> Result<GrpoReport> {
    let (base_model, base_sha256) = base_identity(paths.base)?;
    let init = Adapter::load(paths.init)?;
    if init.base_sha256 != base_sha256 {
        return Err(Error::bad_input(
            paths.init,
            format!(
                "the adapter was trained on {} (another sha256 than {}); pass that model as --base",
                init.base_model,
                paths.base.display()
            ),
        ));
    }
    let labels = Labels::read(paths.data)?;
    let (clips, golds) = training_clips(paths.data, &labels)?;
    let identity = (
        crate::models::sha256_file(paths.init)?,
        crate::models::sha256_file(&paths.data.join(LABELS_FILE))?,
    );
    let resumed = match &opts.resume {
        Some(p) => Some(checkpoint::read(
            p,
            &Identity {
                base: &base_sha256,
                init: &identity.0,
                data: &identity.1,
            },
        )?),
        None => None,
    };
    let opts = match &resumed {
        None => opts.clone(),
        Some((ck, _)) => GrpoOptions {
            ckpt_every: opts.ckpt_every,
            max_steps: opts.max_steps,
            resume: opts.resume.clone(),
            ..ck.options.clone()
        },
    };
    opts.check()
        .map_err(|e| Error::bad_input(paths.out, format!("training options: {e}")))?;
    std::fs::create_dir_all(paths.out)
        .map_err(|e| Error::io(paths.out.display().to_string(), e))?;

    let TextModel {
        tokenizer,
        template,
        ..
    } = TextModel::load(paths.base)?;
    let template = template.ok_or_else(|| {
        Error::bad_input(
            paths.base,
            "the model has no chat template; the agent's conversations are rendered with it",
        )
    })?;
    let model = LoraModel::open(paths.base, &init.config, opts.seed)?;
    model
        .set_lora(&init.tensors)
        .map_err(|e| Error::bad_input(paths.init, e.to_string()))?;
    let vars = model.vars();
    let sizes: Vec<usize> = vars.iter().map(|(_, v)| v.elem_count()).collect();
    let mut adam = AdamW::new(opts.adamw, &sizes);
    let mut calibration = CalibrationState::default();
    let (mut start, mut seconds) = (0, 0.0);
    if let Some((ck, tensors)) = &resumed {
        restore(&vars, &mut adam, ck.adamw_t, tensors)?;
        calibration = ck.calibration.clone();
        (start, seconds) = (ck.step, ck.seconds);
        tracing::info!(step = start, "resumed");
    }
    let vocab = if opts.reward.weights.words != 0.0 {
        Some(Vocabulary::shared()?)
    } else {
        None
    };
    let limits = opts.limits();
    let run = Run {
        opts: &opts,
        paths,
        clips: &clips,
        golds: &golds,
        questions: questions(),
        system: trained_system_prompt(),
        setup: Setup {
            root: paths.data,
            models,
            method: &opts.method,
            limits: &limits,
        },
        model: &model,
        reference: &init.tensors,
        tokenizer: &tokenizer,
        template: &template,
        vocab,
    };
    let adapter_of = |model: &LoraModel| -> Result<Adapter> {
        Ok(Adapter {
            config: init.config.clone(),
            base_model: base_model.clone(),
            base_sha256: base_sha256.clone(),
            tensors: model.lora_tensors()?,
        })
    };

    let stop = opts
        .max_steps
        .map_or(opts.steps, |m| m.min(opts.steps))
        .max(start);
    let log_path = paths.out.join(LOG_FILE);
    let mut csv = open_log(&log_path, CSV_HEADER, start)?;
    let mut records = Vec::new();
    let bar = crate::progress::bar(opts.steps as u64, "grpo");
    bar.set_position(start as u64);
    let run_start = Instant::now();
    for step in start..stop {
        let policy = adapter_of(&model)?;
        let record = run.step(step, &policy, &mut adam, &mut calibration)?;
        write_record(&mut csv, &log_path, &record)?;
        let done = step + 1;
        bar.set_position(done as u64);
        bar.set_message(format!(
            "grpo: reward {:.3}, zoom {:.2}{}",
            record.rewards.means.total,
            record.rewards.zoom_rate,
            record.kl.map_or(String::new(), |k| format!(", kl {k:.4}"))
        ));
        records.push(record);
        if done == stop || (opts.ckpt_every > 0 && done.is_multiple_of(opts.ckpt_every)) {
            let ck = GrpoCheckpoint {
                step: done,
                options: opts.clone(),
                base_model: base_model.clone(),
                base_sha256: base_sha256.clone(),
                init_sha256: identity.0.clone(),
                data_sha256: identity.1.clone(),
                adamw_t: adam.t,
                calibration: calibration.clone(),
                seconds: seconds + run_start.elapsed().as_secs_f64(),
            };
            checkpoint::write(paths.out, &ck, &vars, &adam)?;
            adapter_of(&model)?.save(&paths.out.join(ADAPTER_FILE))?;
        }
    }
    bar.finish_and_clear();
    if stop == start {
        // nothing left to do: the adapter is the checkpoint's (or the initial one)
        adapter_of(&model)?.save(&paths.out.join(ADAPTER_FILE))?;
    }
    let policy_file = paths.out.join(POLICY_FILE);
    if policy_file.is_file() {
        std::fs::remove_file(&policy_file)
            .map_err(|e| Error::io(policy_file.display().to_string(), e))?;
    }
    seconds += run_start.elapsed().as_secs_f64();
    Ok(GrpoReport {
        steps: stop,
        total_steps: opts.steps,
        resumed_at: resumed.as_ref().map(|(ck, _)| ck.step),
        clips: clips.len(),
        seconds,
        adapter: paths.out.join(ADAPTER_FILE),
        log: log_path,
        checkpoint: paths.out.join(CHECKPOINT_JSON),
        records,
    })
}

/// The labels file of a SynthME folder.
const LABELS_FILE: &str = "labels.json";

/// The expression clips of the SynthME folder `dir` and their gold labels; a folder with
/// test-split clips, or without an expression clip, is refused.
fn training_clips<'a>(dir: &Path, labels: &'a Labels) -> Result<(Vec<&'a ClipLabel>, Vec<Gold>)> {
    refuse_test_split(dir, labels)?;
    let clips: Vec<&ClipLabel> = expression_clips(labels).collect();
    if clips.is_empty() {
        return Err(Error::bad_input(
            dir,
            "holds no micro or macro expression clip; make some with `actfer synth --split train --out DIR`",
        ));
    }
    let golds = clips
        .iter()
        .map(|c| gold(c))
        .collect::<std::result::Result<Vec<Gold>, String>>()
        .map_err(|e| Error::bad_input(dir.join(LABELS_FILE), e))?;
    Ok((clips, golds))
}

/// What every step reads.
struct Run<'a> {
    opts: &'a GrpoOptions,
    paths: &'a GrpoPaths<'a>,
    clips: &'a [&'a ClipLabel],
    golds: &'a [Gold],
    questions: Vec<&'static str>,
    system: String,
    setup: Setup<'a>,
    model: &'a LoraModel,
    /// The reference adapter's tensors.
    reference: &'a BTreeMap<String, Tensor>,
    tokenizer: &'a Tokenizer,
    template: &'a ChatTemplate,
    vocab: Option<Arc<Vocabulary>>,
}

impl Run<'_> {
    /// One step: rollouts of the current `policy` adapter, their rewards, one update.
    fn step(
        &self,
        step: usize,
        policy: &Adapter,
        adam: &mut AdamW,
        calibration: &mut CalibrationState,
    ) -> Result<StepRecord> {
        let opts = self.opts;
        let t0 = Instant::now();
        let queries = step_queries(
            opts.seed,
            step,
            opts.batch,
            self.clips.len(),
            self.questions.len(),
        );
        let per_query = self.rollouts(policy, &queries)?;
        let rollout_seconds = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let groups: Vec<Group> = queries
            .iter()
            .zip(&per_query)
            .map(|(q, rollouts)| Group {
                name: format!("{}/{}", step + 1, q.key),
                sample: self.clips[q.clip].id.clone(),
                gold: self.golds[q.clip],
                rollouts,
            })
            .collect();
        let (scores, group_scores) =
            score_step(&groups, &opts.reward, calibration, self.vocab.as_deref())?;
        calibration.save(&self.paths.out.join(STATE_FILE))?;
        let flat: Vec<&Rollout> = per_query.iter().flatten().collect();
        let rewards = step_rewards(&scores, &group_scores, &flat);
        // a group whose rewards were all equal has no advantage: left out of the update
        let varied: HashSet<&str> = group_scores
            .iter()
            .filter(|g| g.std > 0.0)
            .map(|g| g.group.as_str())
            .collect();
        let mut samples = Vec::new();
        for (s, r) in scores.iter().zip(&flat) {
            if !varied.contains(s.group.as_str()) {
                continue;
            }
            match self.example(&s.id, r) {
                Ok(example) => samples.push(Sample {
                    example,
                    advantage: s.advantage,
                    reference: vec![],
                    old: None,
                }),
                Err(why) => tracing::warn!(rollout = s.id, why, "left out of the update"),
            }
        }
        let stats = if samples.is_empty() {
            None
        } else {
            if opts.beta != 0.0 {
                let examples: Vec<&Example> = samples.iter().map(|s| &s.example).collect();
                let refs = reference_logprobs(self.model, self.reference, &examples)?;
                for (s, r) in samples.iter_mut().zip(refs) {
                    s.reference = r;
                }
            }
            let update_opts = UpdateOptions {
                params: GrpoParams {
                    clip: opts.clip,
                    beta: opts.beta,
                },
                batch_rollouts: scores.len(),
                lr: opts.lr,
                max_grad_norm: opts.max_grad_norm,
                updates: opts.updates,
            };
            let vars = self.model.vars();
            Some(update(self.model, &vars, adam, &mut samples, &update_opts)?)
        };
        Ok(StepRecord {
            step: step + 1,
            rewards,
            rollouts: scores.len(),
            updated: samples.len(),
            kl: stats.filter(|_| opts.beta != 0.0).map(|s| s.kl),
            loss: stats.map(|s| s.loss),
            rollout_seconds,
            update_seconds: t1.elapsed().as_secs_f64(),
        })
    }

    /// The rollouts of each query with the `policy` adapter merged into the base as Q8_0.
    fn rollouts(
        &self,
        policy: &Adapter,
        queries: &[super::queries::Query],
    ) -> Result<Vec<Vec<Rollout>>> {
        let opts = self.opts;
        let merged = self.paths.out.join(POLICY_FILE);
        merge(self.paths.base, policy, &merged, GgmlDType::Q8_0)?;
        let sampling = SamplingParams {
            temperature: opts.temperature,
            // the rollouts draw from the whole distribution: the update's ratios are the
            // model's own probabilities
            top_k: 0,
            top_p: 1.0,
            repeat_penalty: 1.0,
            ..SamplingParams::default()
        };
        let mut llm = LlmPolicy::new(TextModel::load(&merged)?, self.system.clone(), sampling)?;
        queries
            .iter()
            .map(|q| {
                let streams = (0..opts.group)
                    .map(|g| stream(opts.seed, q.key, g))
                    .collect();
                rollouts(
                    &self.setup,
                    self.clips[q.clip],
                    self.questions[q.question],
                    &mut llm,
                    streams,
                )
            })
            .collect()
    }

    /// A rollout's conversation tokenized, its replies marked as the trained tokens, cut to
    /// `max_len` tokens.
    fn example(&self, id: &str, rollout: &Rollout) -> std::result::Result<Example, String> {
        let conversation = Conversation {
            id: id.to_string(),
            split: Split::Train,
            messages: rollout.messages.clone(),
        };
        let (mut tokens, ranges) = encode(&conversation, self.tokenizer, self.template)?;
        let max_len = self.opts.max_len;
        tokens.truncate(max_len);
        let trained: Vec<usize> = ranges
            .into_iter()
            .flatten()
            .filter(|&p| p < max_len)
            .collect();
        if trained.is_empty() {
            return Err(format!("no reply among its first {max_len} tokens"));
        }
        Ok(Example {
            id: id.to_string(),
            tokens,
            trained,
        })
    }
}
