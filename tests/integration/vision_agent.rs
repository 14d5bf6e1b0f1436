//! The agent with a multimodal policy, on the tiny random-weight Qwen3-VL of [`super::vision`]
//! with a byte-level vocabulary (every byte one token), so constrained decoding can spell any
//! JSON: the conversation carries over turns in the KV cache, replies always parse, and the
//! frame and each observation's images reach the model.

use std::path::Path;
use std::sync::Arc;

use actfer::agent::trace::{InputInfo, FRAME};
use actfer::agent::{run, system_prompt, Limits, Policy, Toolbox, Turn, VisionPolicy};
use actfer::llm::constrain::validate;
use actfer::llm::vision::{VisionModel, VisionSession};
use actfer::llm::SamplingParams;
use actfer::media::{read_image, write_image};
use serde_json::{json, Value};

use super::vision::{filled, max_abs_diff, tiny_config, write_model};
use crate::au::models;
use crate::common::testdata;

/// Ids 0-255 are the bytes in GPT-2's byte-level alphabet, then Qwen's chat markers and the
/// vision markers.
const BYTES: u32 = 256;
const IM_START: u32 = 256;
const IM_END: u32 = 257;
const END_OF_TEXT: u32 = 258;

/// The tiny model with room for the byte vocabulary and a long conversation.
fn byte_config() -> Value {
    let mut config = tiny_config();
    config["text_config"]["vocab_size"] = json!(264);
    config["text_config"]["max_position_embeddings"] = json!(16384);
    config["vision_start_token_id"] = json!(259);
    config["vision_end_token_id"] = json!(260);
    config["image_token_id"] = json!(261);
    config["video_token_id"] = json!(262);
    config
}

/// GPT-2's map from bytes to printable chars (printable Latin-1 stands for itself).
fn byte_char(b: u32) -> char {
    let printable = |b: u32| matches!(b, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff);
    if printable(b) {
        return char::from_u32(b).unwrap();
    }
    let before = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + before).unwrap()
}

/// A byte-level BPE `tokenizer.json` without merges: each byte is one token.
fn write_byte_tokenizer(dir: &Path) {
    let mut vocab: serde_json::Map<String, Value> = (0..BYTES)
        .map(|b| (byte_char(b).to_string(), json!(b)))
        .collect();
    let specials = [
        (IM_START, "<|im_start|>"),
        (IM_END, "<|im_end|>"),
        (END_OF_TEXT, "<|endoftext|>"),
    ];
    for (id, content) in specials {
        vocab.insert(content.into(), json!(id));
    }
    let added: Vec<Value> = specials
        .iter()
        .map(|(id, content)| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
                          "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
                    "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": []}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
}

fn byte_model(dir: &Path) -> VisionModel {
    write_model(dir, &byte_config());
    write_byte_tokenizer(dir);
    VisionModel::load_dir(dir).unwrap()
}

#[test]
fn a_vision_session_carries_the_conversation_across_turns() {
    let dir = tempfile::tempdir().unwrap();
    let model = Arc::new(byte_model(dir.path()));
    let tokenizer = model.tokenizer.as_ref().unwrap();
    assert_eq!(tokenizer.encode("{\"a\"", false, false).unwrap().len(), 4);
    assert_eq!(tokenizer.decode(&[0x7b, 0x20, 0x7d]), "{ }");

    // turn by turn: text, an image, text, logits; then more text, logits
    let mut turns = VisionSession::new(Arc::clone(&model)).unwrap();
    turns.append_text("<|im_start|>user\nlook").unwrap();
    assert_eq!(turns.append_image(&filled(40)).unwrap(), 16);
    turns.append_text(" here<|im_end|>\n").unwrap();
    let first = turns.logits().unwrap().to_vec();
    turns.append_text("<|im_start|>assistant\n{").unwrap();
    let second = turns.logits().unwrap().to_vec();
    assert_eq!(turns.images(), (1, 16));

    // all at once in a fresh session: the same logits
    let mut once = VisionSession::new(Arc::clone(&model)).unwrap();
    once.append_text("<|im_start|>user\nlook").unwrap();
    once.append_image(&filled(40)).unwrap();
    once.append_text(" here<|im_end|>\n<|im_start|>assistant\n{")
        .unwrap();
    assert_eq!(once.tokens(), turns.tokens());
    let diff = max_abs_diff(once.logits().unwrap(), &second);
    assert!(diff < 1e-5, "the cached turns differ by {diff}");
    assert!(max_abs_diff(&first, &second) > 1e-3);

    // another image in the first turn changes what follows
    let mut other = VisionSession::new(Arc::clone(&model)).unwrap();
    other.append_text("<|im_start|>user\nlook").unwrap();
    other.append_image(&filled(220)).unwrap();
    other
        .append_text(" here<|im_end|>\n<|im_start|>assistant\n{")
        .unwrap();
    assert!(max_abs_diff(other.logits().unwrap(), &second) > 1e-3);
}

#[test]
fn a_vision_policy_replies_under_the_schema_and_reads_the_images() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("crop.png");
    write_image(&image, &filled(90)).unwrap();
    let mut policy = VisionPolicy::new(
        byte_model(dir.path()),
        "Reply in JSON.".into(),
        SamplingParams::greedy(),
    )
    .unwrap();
    assert_eq!(policy.max_images(), 2);
    let schema = json!({"type": "object",
        "properties": {"region": {"enum": ["brow", "mouth"]}, "strength": {"type": "integer"}},
        "required": ["region", "strength"], "additionalProperties": false});

    let images = [image.clone(), image.clone(), image];
    let turn = Turn {
        text: "Which region moved?",
        images: &images,
        deadline: None,
    };
    let reply = policy.reply(&turn, &schema, 40).unwrap();
    let value: Value = serde_json::from_str(&reply.text).unwrap();
    validate(&value, &schema).unwrap();
    assert_eq!(reply.tokens, reply.text.len(), "one token per byte");
    // two of the three images (max_images), 16 placeholders each
    assert_eq!(policy.images_seen(), (2, 32));

    // the next turn goes on in the same conversation; a restart forgets it
    let reply = policy.reply(&Turn::text("And now?"), &schema, 40).unwrap();
    validate(&serde_json::from_str(&reply.text).unwrap(), &schema).unwrap();
    assert_eq!(policy.images_seen(), (2, 32));
    policy.restart();
    assert_eq!(policy.images_seen(), (0, 0));
}

#[test]
fn the_agent_loop_hands_the_frame_and_observation_images_to_a_vision_policy() {
    let dir = tempfile::tempdir().unwrap();
    let model = byte_model(dir.path());
    let mut policy = VisionPolicy::new(model, system_prompt(), SamplingParams::greedy()).unwrap();
    policy.max_images = 1;
    let trace_dir = dir.path().join("trace");
    let image = read_image(&testdata("single_face.jpg")).unwrap();
    let mut toolbox = Toolbox::new(models(), image, Some(trace_dir.clone()));
    assert!(!toolbox.faces().unwrap().is_empty());
    let input = InputInfo {
        path: "single_face.jpg".into(),
        kind: "image".into(),
        fps: None,
        frames: 1,
        frame: 0,
        face_box: None,
    };
    // one token per byte: room for a whole thought and explanation
    let limits = Limits {
        max_steps: 4,
        step_tokens: 800,
        max_tokens: 4000,
        ..Default::default()
    };
    let trace = run(
        "What does this face express?",
        input,
        &mut toolbox,
        &mut policy,
        &limits,
    )
    .unwrap();

    // random weights choose the tools; the schema keeps every reply a valid step
    for s in &trace.steps {
        assert!(
            !s.observation.text.contains("not a valid step"),
            "step {}: {}",
            s.id,
            s.observation.text
        );
    }
    assert!(trace.answer.is_some(), "the last step is held to an answer");
    // the question comes with the frame; each later message with the previous observation's
    // first image
    assert_eq!(trace.steps[0].images, [FRAME]);
    for pair in trace.steps.windows(2) {
        let expected: Vec<String> = pair[0]
            .observation
            .artifacts
            .iter()
            .filter(|a| trace_dir.join(a).is_file())
            .take(1)
            .cloned()
            .collect();
        assert_eq!(pair[1].images, expected, "step {}", pair[1].id);
    }
    // with these weights (seed 7) the first step aligns the face, and its crop goes along
    assert!(
        trace.steps[1..].iter().any(|s| !s.images.is_empty()),
        "no observation image was attached"
    );
    let attached: usize = trace.steps.iter().map(|s| s.images.len()).sum();
    assert_eq!(policy.images_seen().0, attached);
    assert!(policy.images_seen().1 > 0);
}
