//! `actfer train policy sft` and `merge` on a tiny chat model (tests/support/tiny_gguf.rs: 2
//! layers of width 64, its own 267-token ChatML vocabulary): the loss falls on a repeated
//! conversation, the files load, and the merged model says the trained answer more readily
//! than the base.

use std::path::Path;

use actfer::llm::lora::Adapter;
use actfer::llm::{Message, TextModel};
use candle_core::quantized::GgmlDType;

use crate::common::json;
use crate::tiny_gguf;

const ANSWER: &str = "the answer is here";

fn write_data(path: &Path) {
    let line = |id: &str, split: &str| {
        serde_json::json!({
            "id": id,
            "split": split,
            "messages": [
                {"role": "user", "content": "Which emotion?"},
                {"role": "assistant", "content": ANSWER},
            ],
        })
        .to_string()
    };
    std::fs::write(
        path,
        format!("{}\n{}\n", line("t0", "train"), line("v0", "val")),
    )
    .unwrap();
}

/// The log-probability of the answer's first token after the question, by inference.
fn answer_logprob(model: &mut TextModel) -> f32 {
    let template = model.template.as_ref().unwrap();
    let prompt = template
        .render(&[Message::user("Which emotion?")], true)
        .unwrap();
    let tokens = model.tokenizer.encode(&prompt, true, true).unwrap();
    let first = model.tokenizer.encode(ANSWER, false, false).unwrap()[0];
    let logits = model.lm.forward(&tokens, 0).unwrap();
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln();
    logits[first as usize] - lse
}

#[test]
fn sft_then_merge_on_a_tiny_model() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("tiny.gguf");
    tiny_gguf::write_tiny_chat_model("qwen2", GgmlDType::F32, &base);
    let data = dir.path().join("sft.jsonl");
    write_data(&data);
    let out = dir.path().join("run");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let report = json(&[
        "train",
        "policy",
        "sft",
        "--base",
        &path(&base),
        "--data",
        &path(&data),
        "--out",
        &path(&out),
        "--rank",
        "4",
        "--alpha",
        "8",
        "--targets",
        "q,v,down",
        "--lr",
        "1e-2",
        "--epochs",
        "6",
        "--accum",
        "1",
        "--warmup",
        "0",
        "--val-every",
        "2",
    ]);
    let losses: Vec<f64> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["loss"].as_f64().unwrap())
        .collect();
    assert_eq!(losses.len(), 6);
    // measured: 9.81 -> 6.61
    assert!(losses[5] < 0.8 * losses[0], "{losses:?}");
    assert_eq!(report["train_conversations"], 1);
    assert_eq!(report["val_conversations"], 1);
    assert!(
        report["best_val_loss"].as_f64().unwrap()
            < report["records"][1]["val_loss"].as_f64().unwrap()
    );
    let log = std::fs::read_to_string(out.join("log.csv")).unwrap();
    assert_eq!(log.lines().count(), 7, "{log}");
    assert!(
        out.join("checkpoint.json").is_file() && out.join("adapter.best.safetensors").is_file()
    );
    let adapter = Adapter::load(&out.join("adapter.safetensors")).unwrap();
    assert_eq!(adapter.tensors.len(), 2 * 3 * tiny_gguf::LAYERS);
    assert_eq!(adapter.base_model, "tiny.gguf");

    let mut base_model = TextModel::load(&base).unwrap();
    let before = answer_logprob(&mut base_model);
    for dtype in ["f32", "q8_0"] {
        let merged = dir.path().join(format!("merged-{dtype}.gguf"));
        let m = json(&[
            "train",
            "policy",
            "merge",
            "--base",
            &path(&base),
            "--adapter",
            &path(&out.join("adapter.safetensors")),
            "--out",
            &path(&merged),
            "--type",
            dtype,
        ]);
        assert_eq!(m["merged"], 3 * tiny_gguf::LAYERS, "{m}");
        assert_eq!(m["same_base"], true);
        let mut tuned = TextModel::load(&merged).unwrap();
        let after = answer_logprob(&mut tuned);
        // measured: -9.78 -> -8.76 (f32 and q8_0)
        assert!(
            after > before + 0.5,
            "{dtype}: log p(answer) {before} -> {after}"
        );
    }
}

/// The default model's own tokenizer and template bound the assistant turns of a tool-loop
/// conversation cleanly: the trained tokens decode to each content and `<|im_end|>`.
#[test]
fn smollm2_tokens_bound_the_assistant_turns() {
    use actfer::llm::lora::data::encode;
    use actfer::llm::lora::{Conversation, Split};
    let model =
        TextModel::load(&actfer::llm::resolve(actfer::llm::DEFAULT_MODEL).unwrap()).unwrap();
    let contents = [
        r#"{"tool": "motion", "args": {"clip": "clip.mp4", "frames": [3, 12]}}"#,
        " Leading space, digits 2024 and AU12 at 0.75; café 😀.\n",
        "Happiness: the lip corners rise (AU12).",
    ];
    let c = Conversation {
        id: "c".into(),
        split: Split::Train,
        messages: vec![
            Message::system("You read faces."),
            Message::user("What does the clip show?"),
            Message::assistant(contents[0]),
            Message::user("Observation: AU12 0.75 from frame 3."),
            Message::assistant(contents[1]),
            Message::user("And the emotion?"),
            Message::assistant(contents[2]),
        ],
    };
    let (tokens, ranges) = encode(&c, &model.tokenizer, model.template.as_ref().unwrap()).unwrap();
    assert_eq!(ranges.len(), 3);
    for (r, content) in ranges.iter().zip(contents) {
        assert_eq!(
            model.tokenizer.decode(&tokens[r.clone()]),
            format!("{content}<|im_end|>")
        );
    }
    assert!(ranges.windows(2).all(|w| w[0].end < w[1].start));
}
