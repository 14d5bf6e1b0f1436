//! Score a group of reasoning rollouts with the UC-GRPO rewards through the library, as a
//! training loop would between generation and the policy update: each rollout's reward terms,
//! total and group advantage, with the emotion-aware calibration state carried across batches.
//!
//!     cargo run --release --example score_rollouts
//!
//! The rollouts are written inline; a trainer passes its own completions (R1-style
//! `<think>...</think><answer>{...}</answer>` text, tool calls, or agent traces).

use actfer::agent::words::Vocabulary;
use actfer::reward::calibration::CalibrationState;
use actfer::reward::config::RewardConfig;
use actfer::reward::io::{label_from_value, rollout_from_value};
use actfer::reward::{score_batch, Item};
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let (_, gold) = label_from_value(&json!({
        "sample": "s1", "emotion": "happiness", "aus": ["AU6", "AU12"]
    }))
    .map_err(anyhow::Error::msg)?;
    let completions = [
        // zoomed, right emotion and AUs
        (
            r#"<think>the cheeks rise</think><answer>{"emotion": "happiness", "aus": ["AU6", "AU12"]}</answer>"#,
            true,
        ),
        // did not zoom, right emotion, one AU
        (
            r#"<think>a smile</think><answer>{"emotion": "happiness", "aus": ["AU12"]}</answer>"#,
            false,
        ),
        // did not zoom, wrong
        (
            r#"<think>brows</think><answer>{"emotion": "anger", "aus": ["AU4"]}</answer>"#,
            false,
        ),
        // no answer at all: the format term fails
        ("I am not sure.", false),
    ];
    let mut items = Vec::new();
    for (k, (text, zoomed)) in completions.iter().enumerate() {
        let rollout = rollout_from_value(
            &json!({"id": format!("r{k}"), "group": "q1", "sample": "s1",
                    "completion": text, "zoomed": zoomed}),
            k + 1,
        )
        .map_err(anyhow::Error::msg)?;
        items.push(Item { rollout, gold });
    }
    let cfg = RewardConfig::default();
    let mut state = CalibrationState::default();
    // the words term's English word list, from the model store
    let vocab = Vocabulary::shared()?;
    let (scores, groups) = score_batch(items, &cfg, &mut state, Some(&vocab));
    for s in &scores {
        let t = &s.terms;
        println!(
            "{}: format {} region {:.2} au {:.2} emotion {} words {:.2} -> total {:.3}, advantage {:+.3}",
            s.id, t.format, t.region, t.au, t.emotion, t.words, s.total, s.advantage
        );
    }
    let g = &groups[0];
    println!(
        "group {}: U(q) {:?}, Uhat {:.3}; Ubar(happiness) now {:.3}",
        g.group,
        g.utility,
        g.uhat,
        state.ubar(g.emotion)
    );
    Ok(())
}
