//! UC-GRPO on the tiny chat model (tests/support/tiny_gguf.rs): the per-token log-probabilities
//! the update reads, the direction of one update (a positive advantage raises a rollout's
//! likelihood, a negative one lowers it, the KL term alone pulls towards the reference), and
//! `actfer train policy grpo` end to end on a small SynthME folder, resumed, with its refusals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use actfer::llm::lora::adapter::base_identity;
use actfer::llm::lora::data::{encode, Conversation, Example, Split};
use actfer::llm::lora::grpo::{
    reference_logprobs, token_terms, update, GrpoParams, Sample, UpdateOptions, UpdateStats,
};
use actfer::llm::lora::optim::AdamW;
use actfer::llm::lora::sft::DEFAULT_ADAMW;
use actfer::llm::lora::{Adapter, LoraConfig, LoraModel};
use actfer::llm::{Message, TextModel};
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::common::{fails_with, json_env, succeeds};
use crate::tiny_gguf;

/// The tiny qwen2 chat model with a context of 4096 tokens (the file's own 512 is too short
/// for the agent's conversations: its tokenizer spends about a token per byte).
fn tiny_model(dir: &Path) -> PathBuf {
    let short = dir.join("tiny-512.gguf");
    tiny_gguf::write_tiny_chat_model("qwen2", GgmlDType::F32, &short);
    let mut file = std::fs::File::open(&short).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let tensors: Vec<(&str, QTensor)> = names
        .iter()
        .map(|n| {
            (
                n.as_str(),
                content.tensor(&mut file, n, &Device::Cpu).unwrap(),
            )
        })
        .collect();
    let mut metadata: BTreeMap<&str, &Value> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let long = Value::U32(4096);
    metadata.insert("qwen2.context_length", &long);
    let path = dir.join("tiny.gguf");
    let mut out = std::fs::File::create(&path).unwrap();
    let metadata: Vec<(&str, &Value)> = metadata.into_iter().collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    gguf_file::write(&mut out, &metadata, &tensors).unwrap();
    path
}

fn lora() -> LoraConfig {
    LoraConfig {
        rank: 4,
        alpha: 8.0,
        ..Default::default()
    }
}

/// LoRA tensors of `model`'s shapes, drawn from N(0, scale^2) with `seed`.
fn random_lora(model: &LoraModel, seed: u64, scale: f64) -> BTreeMap<String, Tensor> {
    let mut rng = seed;
    let mut next = move || {
        // xorshift64, mapped to [-1, 1)
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    };
    model
        .vars()
        .into_iter()
        .map(|(name, var)| {
            let n = var.elem_count();
            let v: Vec<f32> = (0..n).map(|_| (next() * scale) as f32).collect();
            (
                name,
                Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap(),
            )
        })
        .collect()
}

/// A one-step agent conversation on the tiny model, its reply marked as trained.
fn example(base: &Path) -> Example {
    let model = TextModel::load(base).unwrap();
    let c = Conversation {
        id: "r".into(),
        split: Split::Train,
        messages: vec![
            Message::system("You read faces."),
            Message::user("Question: Which emotion? Take one step."),
            Message::assistant(
                r#"{"thought": "Look at the motion.", "tool": "spot_expressions", "args": {}}"#,
            ),
        ],
    };
    let (tokens, ranges) = encode(&c, &model.tokenizer, model.template.as_ref().unwrap()).unwrap();
    Example {
        id: "r".into(),
        tokens,
        trained: ranges.into_iter().flatten().collect(),
    }
}

fn logprob_sum(model: &LoraModel, ex: &Example) -> f64 {
    let lp: Vec<f32> = model
        .token_logprobs(ex.inputs(), &ex.rows(), &ex.targets())
        .unwrap()
        .to_vec1()
        .unwrap();
    lp.iter().map(|&v| v as f64).sum()
}

/// `updates` AdamW steps at `lr` of `model` on `ex` with `advantage`; returns their statistics.
fn update_once(
    model: &LoraModel,
    ex: &Example,
    advantage: f64,
    (params, reference): (GrpoParams, Vec<f32>),
    updates: usize,
    lr: f64,
) -> UpdateStats {
    let vars = model.vars();
    let sizes: Vec<usize> = vars.iter().map(|(_, v)| v.elem_count()).collect();
    let mut adam = AdamW::new(DEFAULT_ADAMW, &sizes);
    let mut samples = vec![Sample {
        example: ex.clone(),
        advantage,
        reference,
        old: None,
    }];
    let opts = UpdateOptions {
        params,
        batch_rollouts: 1,
        lr,
        max_grad_norm: 1.0,
        updates,
    };
    update(model, &vars, &mut adam, &mut samples, &opts).unwrap()
}

const NO_KL: GrpoParams = GrpoParams {
    clip: 0.2,
    beta: 0.0,
};

#[test]
fn token_logprobs_add_up_to_the_nll() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_model(dir.path());
    let model = LoraModel::open(&base, &lora(), 3).unwrap();
    model.set_lora(&random_lora(&model, 5, 0.05)).unwrap();
    let ex = example(&base);
    let (inputs, rows, targets) = (ex.inputs(), ex.rows(), ex.targets());
    let lp: Vec<f32> = model
        .token_logprobs(inputs, &rows, &targets)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(lp.len(), ex.trained.len());
    assert!(lp.iter().all(|&v| v < 0.0), "{lp:?}");
    let nll: f32 = model
        .nll_sum(inputs, &rows, &targets)
        .unwrap()
        .to_scalar()
        .unwrap();
    let sum: f32 = lp.iter().sum();
    assert!((nll + sum).abs() <= 1e-5 * nll.abs(), "{nll} vs {sum}");
    // each token alone is its own NLL
    for k in [0, lp.len() / 2, lp.len() - 1] {
        let one: f32 = model
            .nll_sum(inputs, &rows[k..=k], &targets[k..=k])
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!((one + lp[k]).abs() < 1e-5, "token {k}: {one} vs {}", lp[k]);
    }
}

#[test]
fn the_advantage_sets_the_direction_of_the_update() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_model(dir.path());
    let ex = example(&base);
    for advantage in [1.0, -1.0] {
        let model = LoraModel::open(&base, &lora(), 3).unwrap();
        model.set_lora(&random_lora(&model, 5, 0.05)).unwrap();
        let before = logprob_sum(&model, &ex);
        let stats = update_once(&model, &ex, advantage, (NO_KL, vec![]), 1, 1e-2);
        let after = logprob_sum(&model, &ex);
        println!("A = {advantage}: sum log p {before} -> {after}");
        // rho = 1 on the first pass: loss = -A
        assert!((stats.loss + advantage).abs() < 1e-9, "{}", stats.loss);
        assert_eq!((stats.tokens, stats.clipped), (ex.trained.len(), 0));
        // measured: -629.6 -> -556.7 (A = 1) and -697.2 (A = -1)
        if advantage > 0.0 {
            assert!(after > before + 1.0, "A = 1: {before} -> {after}");
        } else {
            assert!(after < before - 1.0, "A = -1: {before} -> {after}");
        }
    }
    // more passes over the same rollouts: the ratio leaves the clip range and is held
    let model = LoraModel::open(&base, &lora(), 3).unwrap();
    model.set_lora(&random_lora(&model, 5, 0.05)).unwrap();
    let stats = update_once(&model, &ex, 1.0, (NO_KL, vec![]), 4, 1e-2);
    assert!(stats.clipped > 0, "{stats:?}");
}

#[test]
fn the_kl_term_pulls_towards_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_model(dir.path());
    let ex = example(&base);
    let model = LoraModel::open(&base, &lora(), 3).unwrap();
    let reference = random_lora(&model, 5, 0.05);
    // the policy: the reference moved away
    let moved: BTreeMap<String, Tensor> = random_lora(&model, 9, 0.05)
        .into_iter()
        .map(|(n, t)| {
            let sum = (&reference[&n] + t).unwrap();
            (n, sum)
        })
        .collect();
    model.set_lora(&moved).unwrap();
    let kl = |model: &LoraModel| -> f64 {
        let r = reference_logprobs(model, &reference, &[&ex])
            .unwrap()
            .remove(0);
        let lp: Vec<f32> = model
            .token_logprobs(ex.inputs(), &ex.rows(), &ex.targets())
            .unwrap()
            .to_vec1()
            .unwrap();
        let p = GrpoParams {
            clip: 0.2,
            beta: 1.0,
        };
        token_terms(&lp, &lp, &r, 0.0, &p, 1).kl_sum / lp.len() as f64
    };
    let before = kl(&model);
    // the reference's tensors went back out of the model after the reference pass
    let own = model.lora_tensors().unwrap();
    for (n, t) in &moved {
        let d = (t - &own[n]).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0, "{n}");
    }
    let r = reference_logprobs(&model, &reference, &[&ex])
        .unwrap()
        .remove(0);
    let p = GrpoParams {
        clip: 0.2,
        beta: 1.0,
    };
    // AdamW's first step moves every value by about lr: a small one, as the KL is small
    let stats = update_once(&model, &ex, 0.0, (p, r), 1, 1e-3);
    assert!((stats.kl - before).abs() < 1e-6, "{} vs {before}", stats.kl);
    let after = kl(&model);
    println!("KL {before} -> {after}");
    // measured: 0.0318 -> 0.0141
    assert!(
        before > 0.0 && after < 0.8 * before,
        "KL {before} -> {after}"
    );
}

/// A SynthME folder of `clips` expression clips of `split`.
fn synth(dir: &Path, split: &str, clips: usize) -> PathBuf {
    let out = dir.join(format!("synth-{split}"));
    succeeds(&[
        "-q",
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--size",
        "128",
        // half the frames of the default: the perception of a clip is most of a step here
        "--fps",
        "15",
        "--seed",
        "3",
        "--clips",
        &clips.to_string(),
        "--split",
        split,
        "--no-neutral",
        "--flow",
        "none",
    ]);
    out
}

/// An adapter of the tiny model with random pairs: the SFT adapter the run starts from.
fn init_adapter(base: &Path, path: &Path) {
    let model = LoraModel::open(base, &lora(), 3).unwrap();
    let (base_model, base_sha256) = base_identity(base).unwrap();
    Adapter {
        config: lora(),
        base_model,
        base_sha256,
        tensors: random_lora(&model, 5, 0.05),
    }
    .save(path)
    .unwrap();
}

#[test]
fn train_policy_grpo_runs_resumes_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_model(dir.path());
    let init = dir.path().join("init.safetensors");
    init_adapter(&base, &init);
    let data = synth(dir.path(), "train", 2);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "policy",
            "grpo",
            "--base",
            &s(&base),
            "--init",
            &s(&init),
            "--data",
            &s(&data),
            "--out",
            &s(out),
            "--steps",
            "2",
            "--batch",
            "1",
            "--group",
            "4",
            "--turns",
            "3",
            "--step-tokens",
            "400",
            "--rollout-tokens",
            "1200",
            "--ckpt-every",
            "1",
            "--lr",
            "1e-2",
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |extra: &[&str], out: &Path| {
        let mut a = args(out);
        a.extend(extra.iter().map(|x| x.to_string()));
        // candle's spinning pool of element-wise threads stalls on shared cores (see
        // src/llm/lora/sft.rs); one thread ran this test 5x faster on a busy 2-core machine
        json_env(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            &[("CANDLE_NUM_THREADS", "1")],
        )
    };
    let straight = dir.path().join("straight");
    let r = run(&[], &straight);
    assert_eq!(
        (r["steps"].as_u64(), r["clips"].as_u64()),
        (Some(2), Some(2))
    );
    let records = r["records"].as_array().unwrap();
    for rec in records {
        println!(
            "step {}: total {}, updated {}, {} s + {} s",
            rec["step"],
            rec["rewards"]["means"]["total"],
            rec["updated"],
            rec["rollout_seconds"],
            rec["update_seconds"]
        );
    }
    assert_eq!(records.len(), 2);
    for rec in records {
        assert_eq!(rec["rollouts"], 4, "{rec}");
        let m = &rec["rewards"]["means"];
        for term in ["format", "region", "au", "consistency", "emotion", "words"] {
            let v = m[term].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{term} {v}");
        }
    }
    // the constrained decoder keeps the steps parseable: rollouts answer (those that do not
    // ran out of tokens)
    assert!(records
        .iter()
        .any(|r| r["rewards"]["means"]["format"].as_f64() > Some(0.0)));
    let log = std::fs::read_to_string(straight.join("log.csv")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(log.starts_with("step,format,region,au,consistency,emotion,utility,words,"));
    assert!(!straight.join("policy.gguf").exists());
    assert!(straight.join("reward_state.json").is_file());
    // where a group's rewards differed the adapter moved
    let updated: u64 = records.iter().map(|r| r["updated"].as_u64().unwrap()).sum();
    let a = Adapter::load(&straight.join("adapter.safetensors")).unwrap();
    let b = Adapter::load(&init).unwrap();
    let moved = a.tensors.iter().any(|(n, t)| {
        let d = (t - &b.tensors[n])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        d.to_scalar::<f32>().unwrap() > 0.0
    });
    assert_eq!(moved, updated > 0, "updated {updated}");
    assert!(
        updated > 0,
        "no group had rewards that differed: {records:?}"
    );

    // one step, then a resume for the second: the same log lines and adapter
    let halves = dir.path().join("halves");
    run(&["--max-steps", "1"], &halves);
    let second = run(&["--resume", &s(&halves)], &halves);
    assert_eq!(second["resumed_at"], 1);
    let log2 = std::fs::read_to_string(halves.join("log.csv")).unwrap();
    let numbers = |log: &str| -> Vec<String> {
        // every column but the two timings
        log.lines()
            .map(|l| l.rsplitn(3, ',').nth(2).unwrap().to_string())
            .collect()
    };
    assert_eq!(numbers(&log2), numbers(&log));
    let c = Adapter::load(&halves.join("adapter.safetensors")).unwrap();
    for (n, t) in &a.tensors {
        let d = (t - &c.tensors[n])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0, "{n}");
    }

    // refusals, each naming the file at fault
    let bad = |extra: &[(&str, String)]| {
        let mut a = args(&dir.path().join("bad"));
        for (flag, value) in extra {
            let k = a.iter().position(|x| x == flag).unwrap();
            a[k + 1] = value.clone();
        }
        fails_with(&a.iter().map(String::as_str).collect::<Vec<_>>(), 2)
    };
    let test_split = synth(dir.path(), "test", 1);
    let e = bad(&[("--data", s(&test_split))]);
    assert!(e.contains("test-split") && e.contains("synth-test"), "{e}");
    let e = bad(&[("--data", s(&dir.path().join("nowhere")))]);
    assert!(e.contains("nowhere"), "{e}");
    let other = dir.path().join("other.gguf");
    tiny_gguf::write_tiny_chat_model("qwen2", GgmlDType::Q8_0, &other);
    let e = bad(&[("--base", s(&other))]);
    assert!(
        e.contains("init.safetensors") && e.contains("--base"),
        "{e}"
    );
}
