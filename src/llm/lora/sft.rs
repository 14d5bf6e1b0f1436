//! Supervised fine-tuning with LoRA: [`train_sft`].
//!
//! Each step takes `accum` conversations of the training split (in an order shuffled per
//! epoch from the seed), sums the negative log-likelihood of their trained tokens
//! ([`super::data`]), and divides the summed gradients by the number of trained tokens (the
//! loss is the mean over the step's tokens); the gradients are clipped to a global norm and
//! AdamW ([`super::optim`]) updates the LoRA pairs at the scheduled learning rate. Validation
//! loss (the same mean over the validation split) every `val_every` steps and at the end.
//!
//! The output folder gets:
//! - `adapter.safetensors`: the last adapter (also written at each checkpoint);
//!   `adapter.best.safetensors`: the one of lowest validation loss, when there is a validation
//!   split
//! - `log.csv`: `step,epoch,loss,val_loss,lr,tokens,tokens_per_s,seconds` per step (`tokens`
//!   counted from the start of training, `tokens_per_s` of the step, `seconds` since the start
//!   of training, resumed runs included)
//! - `checkpoint.safetensors` (the LoRA tensors, AdamW's moments as `adamw.m.NAME` and
//!   `adamw.v.NAME`) and `checkpoint.json` ([`Checkpoint`]: the step, the options, AdamW's step
//!   count, the base model's and data's sha256, counters), every `ckpt_every` steps and at the
//!   end. Resuming from it continues bit for bit: the data order of an epoch is a function of
//!   the seed and the epoch (the data generator's state at the epoch's start), the LoRA
//!   initialisation of the seed, and nothing else is random.
//!
//! Speed: the matrix products take `RAYON_NUM_THREADS` threads; candle's element-wise ops run
//! on its own spinning pool of `CANDLE_NUM_THREADS` (by default as many), which stalls when the
//! cores are shared: on a busy 2-core machine SmolLM2-135M trained at 24 tokens/s with both at
//! 2 and 83 with `CANDLE_NUM_THREADS=1` (`examples/sft_throughput.rs`, a 424-token
//! conversation).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Var;
use serde::{Deserialize, Serialize};

use super::adapter::{base_identity, Adapter, LoraConfig};
use super::checkpoint::{self, Checkpoint};
use super::data::{prepare, read_jsonl, Example, Overflow};
use super::log::open_log;
use super::model::LoraModel;
use super::optim::{
    add_grads, clip_grad_norm, learning_rate, step_vars, zero_grads, AdamW, AdamWParams,
};
use crate::llm::TextModel;
use crate::synth::rng::Rng;
use crate::{Error, Result};

/// Default peak learning rate (DESIGN.md: LoRA lr 1e-4 for SFT).
pub const DEFAULT_LR: f64 = 1e-4;
/// Default floor of the cosine decay, as a share of the peak.
pub const DEFAULT_MIN_LR_RATIO: f64 = 0.1;
/// Default warm-up steps.
pub const DEFAULT_WARMUP: usize = 10;
pub const DEFAULT_EPOCHS: usize = 1;
/// Default conversations per step.
pub const DEFAULT_ACCUM: usize = 8;
/// Default maximum tokens of a conversation.
pub const DEFAULT_MAX_LEN: usize = 2048;
pub const DEFAULT_SEED: u64 = 0;
pub const DEFAULT_VAL_EVERY: usize = 50;
pub const DEFAULT_CKPT_EVERY: usize = 100;
pub const DEFAULT_MAX_GRAD_NORM: f64 = 1.0;
pub const DEFAULT_ADAMW: AdamWParams = AdamWParams {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weight_decay: 0.01,
};

/// The file names in the output folder.
pub const ADAPTER_FILE: &str = "adapter.safetensors";
pub const BEST_ADAPTER_FILE: &str = "adapter.best.safetensors";
pub const LOG_FILE: &str = "log.csv";
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub const CHECKPOINT_JSON: &str = "checkpoint.json";

/// Training settings; every default is one of the `DEFAULT_*` constants above.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SftOptions {
    pub lora: LoraConfig,
    /// Peak learning rate.
    pub lr: f64,
    /// Where the cosine decay ends, as a share of `lr`.
    pub min_lr_ratio: f64,
    /// Warm-up steps (linear).
    pub warmup: usize,
    pub epochs: usize,
    /// Conversations per step (gradient accumulation).
    pub accum: usize,
    /// Longest conversation in tokens; longer ones are handled as `overflow` says.
    pub max_len: usize,
    pub overflow: Overflow,
    pub adamw: AdamWParams,
    /// Global gradient-norm clip (0: none).
    pub max_grad_norm: f64,
    /// Seeds the LoRA initialisation and the data order.
    pub seed: u64,
    /// Validate every this many steps (and at the end); 0: at the end only.
    pub val_every: usize,
    /// Checkpoint every this many steps (and at the end); 0: at the end only.
    pub ckpt_every: usize,
    /// Stop after this step (the schedule still spans every epoch); `None`: at the end.
    pub max_steps: Option<usize>,
    /// A checkpoint to go on from: its folder or its `checkpoint.json`. Its training
    /// settings win over these (only `val_every`, `ckpt_every` and `max_steps` are taken from
    /// here).
    pub resume: Option<PathBuf>,
}

impl Default for SftOptions {
    fn default() -> Self {
        SftOptions {
            lora: LoraConfig::default(),
            lr: DEFAULT_LR,
            min_lr_ratio: DEFAULT_MIN_LR_RATIO,
            warmup: DEFAULT_WARMUP,
            epochs: DEFAULT_EPOCHS,
            accum: DEFAULT_ACCUM,
            max_len: DEFAULT_MAX_LEN,
            overflow: Overflow::default(),
            adamw: DEFAULT_ADAMW,
            max_grad_norm: DEFAULT_MAX_GRAD_NORM,
            seed: DEFAULT_SEED,
            val_every: DEFAULT_VAL_EVERY,
            ckpt_every: DEFAULT_CKPT_EVERY,
            max_steps: None,
            resume: None,
        }
    }
}

impl SftOptions {
    fn check(&self) -> std::result::Result<(), String> {
        self.lora.clone().validated()?;
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!("learning rate {} must be positive", self.lr));
        }
        if !(0.0..=1.0).contains(&self.min_lr_ratio) {
            return Err(format!(
                "min_lr_ratio {} must be in 0..=1",
                self.min_lr_ratio
            ));
        }
        if self.epochs == 0 || self.accum == 0 {
            return Err("epochs and accum must be at least 1".into());
        }
        if self.max_len < 2 {
            return Err(format!("max_len {} leaves nothing to train", self.max_len));
        }
        Ok(())
    }
}

/// A conversation left out of training, with why.
#[derive(Debug, Clone, Serialize)]
pub struct Dropped {
    pub id: String,
    pub reason: String,
}

/// One line of `log.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub step: usize,
    /// From 1.
    pub epoch: usize,
    /// Mean loss over the step's trained tokens.
    pub loss: f32,
    pub val_loss: Option<f32>,
    pub lr: f64,
    /// Tokens run since the start of training.
    pub tokens: u64,
    pub tokens_per_s: f64,
    pub seconds: f64,
}

/// What [`train_sft`] did.
#[derive(Debug, Clone, Serialize)]
pub struct SftReport {
    /// The step reached.
    pub steps: usize,
    /// The steps of every epoch.
    pub total_steps: usize,
    pub resumed_at: Option<usize>,
    pub train_conversations: usize,
    pub val_conversations: usize,
    pub truncated: Vec<String>,
    pub dropped: Vec<Dropped>,
    /// This run's first and last step losses.
    pub first_loss: Option<f32>,
    pub last_loss: Option<f32>,
    pub val_loss: Option<f32>,
    pub best_val_loss: Option<f32>,
    pub tokens: u64,
    /// Over this run's steps.
    pub tokens_per_s: f64,
    pub seconds: f64,
    pub adapter: PathBuf,
    pub best_adapter: Option<PathBuf>,
    pub log: PathBuf,
    pub checkpoint: PathBuf,
    /// This run's steps.
    pub records: Vec<Record>,
}

/// Trains a LoRA adapter of `base` on the conversations of `data` (see the module docs);
/// writes into `out_dir`.
pub fn train_sft(opts: &SftOptions, base: &Path, data: &Path, out_dir: &Path) -> Result<SftReport> {
    let (base_model, base_sha256) = base_identity(base)?;
    let data_sha256 = crate::models::sha256_file(data)?;
    let resumed = match &opts.resume {
        Some(p) => Some(checkpoint::read(p, &base_sha256, &data_sha256)?),
        None => None,
    };
    let opts = match &resumed {
        None => opts.clone(),
        Some((ck, _)) => resumed_options(&ck.options, opts),
    };
    opts.check()
        .map_err(|e| Error::bad_input(out_dir, format!("training options: {e}")))?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir.display().to_string(), e))?;

    let TextModel {
        tokenizer,
        template,
        ..
    } = TextModel::load(base)?;
    let template = template.ok_or_else(|| {
        Error::bad_input(base, "the model has no chat template (tokenizer.chat_template); SFT renders conversations with it")
    })?;
    let convs = read_jsonl(data)?;
    let prepared = prepare(
        data,
        &convs,
        &tokenizer,
        &template,
        opts.max_len,
        opts.overflow,
    )?;
    if prepared.train.is_empty() {
        return Err(Error::bad_input(
            data,
            format!(
                "no training conversation left ({} read, {} dropped); add lines with \"split\": \"train\" and an assistant message",
                convs.len(),
                prepared.dropped.len()
            ),
        ));
    }
    if !prepared.truncated.is_empty() {
        tracing::warn!(ids = ?prepared.truncated, "conversations cut to {} tokens", opts.max_len);
    }
    if !prepared.dropped.is_empty() {
        tracing::warn!(dropped = ?prepared.dropped, "conversations left out");
    }

    let model = LoraModel::open(base, &opts.lora, opts.seed)?;
    let vars = model.vars();
    let sizes: Vec<usize> = vars.iter().map(|(_, v)| v.elem_count()).collect();
    let mut adam = AdamW::new(opts.adamw, &sizes);
    let mut state = State {
        tokens: 0,
        seconds: 0.0,
        val_loss: None,
        best_val_loss: None,
    };
    let mut start = 0;
    if let Some((ck, tensors)) = &resumed {
        checkpoint::restore(&vars, &mut adam, ck.adamw_t, tensors)?;
        start = ck.step;
        state = State {
            tokens: ck.tokens,
            seconds: ck.seconds,
            val_loss: ck.val_loss,
            best_val_loss: ck.best_val_loss,
        };
        tracing::info!(step = start, "resumed");
    }

    let n = prepared.train.len();
    let per_epoch = n.div_ceil(opts.accum);
    let total = per_epoch * opts.epochs;
    let stop = opts.max_steps.map_or(total, |m| m.min(total)).max(start);
    let paths = Paths::new(out_dir);
    let mut csv = open_log(&paths.log, CSV_HEADER, start)?;
    let adapter_of = |model: &LoraModel| -> Result<Adapter> {
        Ok(Adapter {
            config: model.lora_config().clone(),
            base_model: base_model.clone(),
            base_sha256: base_sha256.clone(),
            tensors: model.lora_tensors()?,
        })
    };

    let mut report = SftReport {
        steps: start,
        total_steps: total,
        resumed_at: resumed.as_ref().map(|(ck, _)| ck.step),
        train_conversations: n,
        val_conversations: prepared.val.len(),
        truncated: prepared.truncated.clone(),
        dropped: prepared
            .dropped
            .iter()
            .map(|(id, reason)| Dropped {
                id: id.clone(),
                reason: reason.clone(),
            })
            .collect(),
        first_loss: None,
        last_loss: None,
        val_loss: state.val_loss,
        best_val_loss: state.best_val_loss,
        tokens: state.tokens,
        tokens_per_s: 0.0,
        seconds: state.seconds,
        adapter: paths.adapter.clone(),
        best_adapter: None,
        log: paths.log.clone(),
        checkpoint: paths.json.clone(),
        records: Vec::new(),
    };
    let bar = crate::progress::bar(total as u64, "sft");
    bar.set_position(start as u64);
    let run_start = Instant::now();
    let (mut run_tokens, mut order) = (0u64, (usize::MAX, Vec::new()));
    for step in start..stop {
        let t0 = Instant::now();
        let epoch = step / per_epoch;
        if order.0 != epoch {
            order = (epoch, epoch_order(opts.seed, epoch, n));
        }
        let first = (step % per_epoch) * opts.accum;
        let batch: Vec<&Example> = order.1[first..(first + opts.accum).min(n)]
            .iter()
            .map(|&i| &prepared.train[i])
            .collect();
        let lr = learning_rate(step, total, opts.warmup, opts.lr, opts.min_lr_ratio);
        let (mut grads, nll, count, tokens) = accumulate(&model, &vars, &batch)?;
        let loss = (nll / count as f64) as f32;
        if !loss.is_finite() {
            return Err(Error::Internal(format!(
                "the loss is not finite at step {} (lr {lr:.2e}); lower --lr",
                step + 1
            )));
        }
        grads.iter_mut().flatten().for_each(|g| *g /= count as f32);
        clip_grad_norm(&mut grads, opts.max_grad_norm);
        step_vars(&mut adam, &vars, &grads, lr)?;
        let done = step + 1;
        let step_seconds = t0.elapsed().as_secs_f64();
        state.tokens += tokens as u64;
        run_tokens += tokens as u64;

        let mut val_loss = None;
        let validate = done == stop || (opts.val_every > 0 && done.is_multiple_of(opts.val_every));
        if validate && !prepared.val.is_empty() {
            let v = mean_loss(&model, &prepared.val)?;
            val_loss = Some(v);
            state.val_loss = Some(v);
            if state.best_val_loss.is_none_or(|b| v < b) {
                state.best_val_loss = Some(v);
                adapter_of(&model)?.save(&paths.best)?;
            }
            bar.suspend(|| tracing::info!(step = done, loss, val_loss = v, "validation"));
        }
        let rec = Record {
            step: done,
            epoch: epoch + 1,
            loss,
            val_loss,
            lr,
            tokens: state.tokens,
            tokens_per_s: tokens as f64 / step_seconds.max(1e-9),
            seconds: state.seconds + run_start.elapsed().as_secs_f64(),
        };
        write_record(&mut csv, &paths.log, &rec)?;
        bar.set_position(done as u64);
        bar.set_message(format!(
            "sft: loss {loss:.3}{}, {:.0} tok/s",
            state
                .val_loss
                .map_or(String::new(), |v| format!(", val {v:.3}")),
            rec.tokens_per_s
        ));
        report.first_loss.get_or_insert(loss);
        report.last_loss = Some(loss);
        report.records.push(rec);

        if done == stop || (opts.ckpt_every > 0 && done.is_multiple_of(opts.ckpt_every)) {
            let ck = Checkpoint {
                step: done,
                options: opts.clone(),
                base_model: base_model.clone(),
                base_sha256: base_sha256.clone(),
                data_sha256: data_sha256.clone(),
                adamw_t: adam.t,
                tokens: state.tokens,
                seconds: state.seconds + run_start.elapsed().as_secs_f64(),
                val_loss: state.val_loss,
                best_val_loss: state.best_val_loss,
            };
            checkpoint::write(&paths.tensors, &paths.json, &ck, &vars, &adam)?;
            adapter_of(&model)?.save(&paths.adapter)?;
        }
    }
    bar.finish_and_clear();
    if stop == start {
        // nothing left to do: the last adapter is the checkpoint's
        adapter_of(&model)?.save(&paths.adapter)?;
    }
    let run_seconds = run_start.elapsed().as_secs_f64();
    report.steps = stop;
    report.val_loss = state.val_loss;
    report.best_val_loss = state.best_val_loss;
    report.tokens = state.tokens;
    report.seconds = state.seconds + run_seconds;
    report.tokens_per_s = run_tokens as f64 / run_seconds.max(1e-9);
    report.best_adapter = paths.best.is_file().then(|| paths.best.clone());
    Ok(report)
}

/// Counters that a checkpoint carries over.
struct State {
    tokens: u64,
    seconds: f64,
    val_loss: Option<f32>,
    best_val_loss: Option<f32>,
}

struct Paths {
    adapter: PathBuf,
    best: PathBuf,
    log: PathBuf,
    tensors: PathBuf,
    json: PathBuf,
}

impl Paths {
    fn new(dir: &Path) -> Self {
        Paths {
            adapter: dir.join(ADAPTER_FILE),
            best: dir.join(BEST_ADAPTER_FILE),
            log: dir.join(LOG_FILE),
            tensors: dir.join(CHECKPOINT_FILE),
            json: dir.join(CHECKPOINT_JSON),
        }
    }
}

/// The order of the training conversations in epoch `epoch`.
fn epoch_order(seed: u64, epoch: usize, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    // a stream apart from the LoRA initialisation's (keys below 2^32)
    Rng::new(seed)
        .derive((1 << 32) + epoch as u64)
        .shuffle(&mut order);
    order
}

/// The summed gradients of the batch's summed losses (per variable, flat), the summed loss,
/// the trained tokens and the tokens run.
fn accumulate(
    model: &LoraModel,
    vars: &[(String, Var)],
    batch: &[&Example],
) -> Result<(Vec<Vec<f32>>, f64, usize, usize)> {
    let mut acc = zero_grads(vars);
    let (mut nll, mut count, mut tokens) = (0f64, 0usize, 0usize);
    for ex in batch {
        let loss = model.nll_sum(ex.inputs(), &ex.rows(), &ex.targets())?;
        add_grads(&mut acc, vars, &loss.backward()?)?;
        nll += loss.to_scalar::<f32>()? as f64;
        count += ex.trained.len();
        tokens += ex.inputs().len();
    }
    Ok((acc, nll, count, tokens))
}

/// The mean loss over the trained tokens of `examples`.
pub fn mean_loss(model: &LoraModel, examples: &[Example]) -> Result<f32> {
    let (mut nll, mut count) = (0f64, 0usize);
    for ex in examples {
        let loss = model.nll_sum(ex.inputs(), &ex.rows(), &ex.targets())?;
        nll += loss.to_scalar::<f32>()? as f64;
        count += ex.trained.len();
    }
    Ok((nll / count.max(1) as f64) as f32)
}

/// The options of a resumed run: the checkpoint's, with this run's `val_every`,
/// `ckpt_every`, `max_steps` and `resume`; other differences are logged and ignored.
fn resumed_options(saved: &SftOptions, given: &SftOptions) -> SftOptions {
    let opts = SftOptions {
        val_every: given.val_every,
        ckpt_every: given.ckpt_every,
        max_steps: given.max_steps,
        resume: given.resume.clone(),
        ..saved.clone()
    };
    let (a, b) = (
        serde_json::to_value(&opts).expect("options serialise"),
        serde_json::to_value(given).expect("options serialise"),
    );
    if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
        let differ: Vec<&String> = a.keys().filter(|k| a.get(*k) != b.get(*k)).collect();
        if !differ.is_empty() {
            tracing::info!(
                ?differ,
                "resuming with the checkpoint's settings of these fields"
            );
        }
    }
    opts
}

const CSV_HEADER: &str = "step,epoch,loss,val_loss,lr,tokens,tokens_per_s,seconds";

fn write_record(csv: &mut std::fs::File, path: &Path, r: &Record) -> Result<()> {
    writeln!(
        csv,
        "{},{},{:.6},{},{:.6e},{},{:.1},{:.3}",
        r.step,
        r.epoch,
        r.loss,
        r.val_loss.map_or(String::new(), |v| format!("{v:.6}")),
        r.lr,
        r.tokens,
        r.tokens_per_s,
        r.seconds
    )
    .map_err(|e| Error::io(path.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::lora::data::tests::conversation;
    use crate::llm::lora::data::Split;
    use crate::llm::lora::model::tests::tiny;
    use crate::llm::lora::Target;

    fn write_data(path: &Path, n_train: usize) {
        let mut lines = Vec::new();
        for i in 0..n_train {
            let c = conversation(
                &format!("t{i}"),
                Split::Train,
                &[
                    ("user", &format!("Question {i}?")),
                    ("assistant", "the answer is here"),
                ],
            );
            lines.push(serde_json::to_string(&c).unwrap());
        }
        let v = conversation(
            "v0",
            Split::Val,
            &[("user", "Question?"), ("assistant", "the answer is here")],
        );
        lines.push(serde_json::to_string(&v).unwrap());
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    fn options() -> SftOptions {
        SftOptions {
            lora: LoraConfig {
                rank: 4,
                alpha: 8.0,
                targets: vec![Target::Q, Target::V, Target::Up],
            },
            lr: 1e-2,
            warmup: 1,
            accum: 2,
            epochs: 2,
            val_every: 2,
            ckpt_every: 2,
            ..Default::default()
        }
    }

    /// Four steps straight, or two, a resume and two more: the same adapter to the bit.
    #[test]
    fn resuming_continues_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let base = tiny("qwen3", dir.path());
        let data = dir.path().join("d.jsonl");
        write_data(&data, 4); // 2 steps an epoch, 2 epochs
        let straight = train_sft(&options(), &base, &data, &dir.path().join("a")).unwrap();
        assert_eq!((straight.steps, straight.total_steps), (4, 4));
        let out = dir.path().join("b");
        let first = SftOptions {
            max_steps: Some(2),
            ..options()
        };
        assert_eq!(train_sft(&first, &base, &data, &out).unwrap().steps, 2);
        let second = SftOptions {
            resume: Some(out.clone()),
            ..options()
        };
        let resumed = train_sft(&second, &base, &data, &out).unwrap();
        assert_eq!(resumed.resumed_at, Some(2));
        assert_eq!(resumed.records.len(), 2);
        let a = Adapter::load(&straight.adapter).unwrap();
        let b = Adapter::load(&resumed.adapter).unwrap();
        assert_eq!(
            a.tensors.keys().collect::<Vec<_>>(),
            b.tensors.keys().collect::<Vec<_>>()
        );
        for (name, t) in &a.tensors {
            let x: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            let y: Vec<f32> = b.tensors[name].flatten_all().unwrap().to_vec1().unwrap();
            assert!(
                x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{name} differs"
            );
        }
        // the straight run's losses are the two halves' losses
        let halves: Vec<f32> = train_sft(&first, &base, &data, &dir.path().join("c"))
            .unwrap()
            .records
            .iter()
            .chain(&resumed.records)
            .map(|r| r.loss)
            .collect();
        let whole: Vec<f32> = straight.records.iter().map(|r| r.loss).collect();
        assert_eq!(halves, whole);
        // B moved from zero
        assert!(a.tensors.iter().any(|(n, t)| n.ends_with(".lora_b")
            && t.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 0.0));
        // the log has one line per step, the resumed one too
        let log = std::fs::read_to_string(out.join(LOG_FILE)).unwrap();
        assert_eq!(log.lines().count(), 5, "{log}");
        assert!(log.starts_with(CSV_HEADER));
    }

    #[test]
    fn loss_falls_on_a_repeated_example() {
        let dir = tempfile::tempdir().unwrap();
        let base = tiny("llama", dir.path());
        let data = dir.path().join("d.jsonl");
        write_data(&data, 1);
        let opts = SftOptions {
            lr: 1e-2,
            warmup: 0,
            accum: 1,
            epochs: 8,
            ..options()
        };
        let r = train_sft(&opts, &base, &data, &dir.path().join("run")).unwrap();
        let losses: Vec<f32> = r.records.iter().map(|r| r.loss).collect();
        assert_eq!(losses.len(), 8);
        assert!(losses[7] < 0.7 * losses[0], "{losses:?}");
        assert!(r.best_val_loss.unwrap() < r.records[1].val_loss.unwrap());
        assert!(r.best_adapter.is_some());
        let ck: Checkpoint =
            serde_json::from_str(&std::fs::read_to_string(&r.checkpoint).unwrap()).unwrap();
        assert_eq!((ck.step, ck.adamw_t), (8, 8));
    }

    #[test]
    fn resuming_on_other_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = tiny("llama", dir.path());
        let data = dir.path().join("d.jsonl");
        write_data(&data, 2);
        let out = dir.path().join("run");
        let opts = SftOptions {
            max_steps: Some(1),
            ..options()
        };
        train_sft(&opts, &base, &data, &out).unwrap();
        write_data(&data, 3);
        let again = SftOptions {
            resume: Some(out.clone()),
            ..options()
        };
        let err = train_sft(&again, &base, &data, &out).unwrap_err();
        assert!(err.to_string().contains("other data"), "{err}");
    }
}
