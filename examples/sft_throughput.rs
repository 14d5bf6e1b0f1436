//! Times LoRA SFT steps on a conversation of about 400 tokens and prints JSON, with the
//! inference decoder's prefill of the same tokens as the baseline.
//!
//!     RAYON_NUM_THREADS=2 cargo run --release --example sft_throughput -- [MODEL.gguf] [STEPS]
//!
//! (`CANDLE_NUM_THREADS=1` as well keeps candle's element-wise ops off its spinning pool, the
//! faster choice on a machine whose cores are busy.)
//!
//! MODEL defaults to the default model's shipped file (SmolLM2-135M-Instruct, Q4_1). Each
//! step is one conversation (accum 1) through forward and backward with LoRA rank 16 on all
//! seven projections, and an AdamW update; the first step is left out of the median.

use std::time::Instant;

use actfer::llm::lora::{train_sft, Conversation, LoraModel, SftOptions, Split};
use actfer::llm::{Message, TextModel, DEFAULT_MODEL};
use actfer::models::ModelStore;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let model_path = match args.next() {
        Some(p) => p.into(),
        None => ModelStore::from_env()?.require(DEFAULT_MODEL)?,
    };
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let mut text = TextModel::load(&model_path)?;
    let template = text.template.as_ref().expect("a chat model");

    // a tool-loop conversation, its observation lengthened to about 400 tokens
    let conversation = |lines: usize| {
        let observation: Vec<String> = (0..lines)
            .map(|i| format!("frame {i}: AU12 lip corner puller 0.{i}, AU6 cheek raiser weak"))
            .collect();
        vec![
            Message::system("You read faces with tools. Answer with the emotion and the AUs."),
            Message::user("What emotion does the clip show?"),
            Message::assistant(r#"{"tool": "motion", "args": {"clip": "clip.mp4"}}"#),
            Message::user(format!("Observation:\n{}", observation.join("\n"))),
            Message::assistant(
                "The lip corners rise (AU12) with the cheeks (AU6) from frame 3: happiness.",
            ),
        ]
    };
    let count = |msgs: &[Message]| -> anyhow::Result<usize> {
        Ok(text
            .tokenizer
            .encode(&template.render(msgs, false)?, true, true)?
            .len())
    };
    let mut lines = 1;
    while count(&conversation(lines))? < 400 {
        lines += 1;
    }
    let messages = conversation(lines);
    let tokens = text
        .tokenizer
        .encode(&template.render(&messages, false)?, true, true)?;

    // baseline: the inference decoder's prefill of the same tokens
    text.lm.forward(&tokens, 0)?;
    let t = Instant::now();
    text.lm.forward(&tokens, 0)?;
    let prefill_tps = tokens.len() as f64 / t.elapsed().as_secs_f64();

    let dir = tempfile::tempdir()?;
    let data = dir.path().join("sft.jsonl");
    let jsonl: Vec<String> = (0..steps)
        .map(|i| {
            serde_json::to_string(&Conversation {
                id: format!("c{i}"),
                split: Split::Train,
                messages: messages.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    std::fs::write(&data, jsonl.join("\n") + "\n")?;
    let t = Instant::now();
    let lora = LoraModel::open(&model_path, &Default::default(), 0)?;
    let load_s = t.elapsed().as_secs_f64();
    // the training forward alone (no backward), logits of the last position
    let t = Instant::now();
    let hidden = lora.hidden(&tokens)?;
    lora.logits(&hidden.narrow(0, tokens.len() - 1, 1)?)?;
    let forward_tps = tokens.len() as f64 / t.elapsed().as_secs_f64();
    drop((hidden, lora));
    let opts = SftOptions {
        accum: 1,
        warmup: 0,
        val_every: 0,
        ..Default::default()
    };
    let report = train_sft(&opts, &model_path, &data, &dir.path().join("run"))?;
    let mut tps: Vec<f64> = report
        .records
        .iter()
        .skip(1)
        .map(|r| r.tokens_per_s)
        .collect();
    tps.sort_by(f64::total_cmp);
    let median = tps.get(tps.len() / 2).copied().unwrap_or(f64::NAN);
    let out = serde_json::json!({
        "model": model_path.display().to_string(),
        "threads": candle_core::utils::get_num_threads(),
        "conversation_tokens": tokens.len(),
        "tokens_per_step": report.records.first().map(|r| r.tokens),
        "steps": report.records.len(),
        "load_seconds": load_s,
        "train_tokens_per_s_median": median,
        "train_tokens_per_s_steps": report.records.iter().map(|r| r.tokens_per_s).collect::<Vec<_>>(),
        "train_forward_tokens_per_s": forward_tps,
        "prefill_tokens_per_s": prefill_tps,
        "train_over_prefill": median / prefill_tps,
        "losses": report.records.iter().map(|r| r.loss).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
