//! The rollouts of one query: the clip opened once, one toolbox for all of them (the
//! perception runs once), each rollout through the real loop with the current policy, its own
//! sampling stream, and the conversation it had kept for the update.

use std::path::Path;

use serde_json::Value;

use crate::agent::eval::clip_toolbox;
use crate::agent::policy::{LlmPolicy, Policy, Reply, Turn};
use crate::agent::run::{run, Limits};
use crate::agent::tools::FINAL_ANSWER;
use crate::agent::trace::Trace;
use crate::error::{Error, Result};
use crate::evidence::AppearanceModels;
use crate::llm::Message;
use crate::motion::clip::ClipOptions;
use crate::synth::labels::ClipLabel;
use crate::synth::rng::Rng;

/// One rollout: its trace and the conversation the model had, up to its first final answer.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub trace: Trace,
    pub messages: Vec<Message>,
}

/// The policy with a new sampling seed from its own stream before each reply, so the rollouts
/// of one question differ and each can be drawn again.
struct Reseeded<'a> {
    policy: &'a mut LlmPolicy,
    rng: Rng,
}

impl Policy for Reseeded<'_> {
    fn reply(&mut self, turn: &Turn<'_>, schema: &Value, max_tokens: usize) -> Result<Reply> {
        self.policy.set_seed(self.rng.next_u64());
        self.policy.reply(turn, schema, max_tokens)
    }

    fn name(&self) -> String {
        self.policy.name()
    }

    fn restart(&mut self) {
        self.policy.restart();
    }
}

/// What one query's rollouts need besides the policy.
pub struct Setup<'a> {
    /// The SynthME folder.
    pub root: &'a Path,
    pub models: &'a AppearanceModels,
    /// Flow method of the motion tools.
    pub method: &'a str,
    pub limits: &'a Limits,
}

/// Runs `streams.len()` rollouts of `question` on `clip`, rollout `g` drawing from
/// `streams[g]`.
pub fn rollouts(
    setup: &Setup<'_>,
    clip: &ClipLabel,
    question: &str,
    policy: &mut LlmPolicy,
    streams: Vec<Rng>,
) -> Result<Vec<Rollout>> {
    let path = setup.root.join(&clip.files.frames);
    let (mut toolbox, input) = clip_toolbox(
        setup.models,
        &path,
        clip,
        setup.method,
        ClipOptions::default(),
        None,
    )?;
    let mut out = Vec::with_capacity(streams.len());
    for rng in streams {
        let mut reseeded = Reseeded {
            policy: &mut *policy,
            rng,
        };
        let trace = run(
            question,
            input.clone(),
            &mut toolbox,
            &mut reseeded,
            setup.limits,
        )?;
        let messages = first_answer_messages(policy.messages(), &trace)?;
        let t = &trace.timings;
        tracing::debug!(
            clip = clip.id,
            steps = trace.steps.len(),
            tools = ?trace.steps.iter().map(|s| s.tool.name.as_str()).collect::<Vec<_>>(),
            perception_s = t.perception_seconds,
            llm_s = t.llm_seconds,
            total_s = t.total_seconds,
            "rollout"
        );
        out.push(Rollout { trace, messages });
    }
    Ok(out)
}

/// The conversation up to the first final answer: the system prompt, then one message and one
/// reply per step (the loop asks the policy once per step).
pub fn first_answer_messages(messages: &[Message], trace: &Trace) -> Result<Vec<Message>> {
    let steps = trace.steps.len();
    if messages.len() != 1 + 2 * steps {
        return Err(Error::Internal(format!(
            "the policy holds {} messages for {steps} steps; expected the system prompt and two per step",
            messages.len()
        )));
    }
    let through = trace
        .steps
        .iter()
        .position(|s| s.tool.name == FINAL_ANSWER)
        .map_or(steps, |k| k + 1);
    Ok(messages[..1 + 2 * through].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trace whose steps call `tools`, in order.
    fn trace(tools: &[&str]) -> Trace {
        let steps: Vec<Value> = tools
            .iter()
            .enumerate()
            .map(|(k, t)| {
                serde_json::json!({"id": k + 1, "thought": "", "tool": {"name": t, "args": {}},
                    "observation": {"text": "", "data": null, "artifacts": []},
                    "tokens": 1, "seconds": 0.0})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema": "actfer.trace/1", "version": "0", "question": "q",
            "input": {"path": "c", "kind": "frames", "fps": null, "frames": 1, "frame": 0,
                      "face_box": null},
            "model": "m", "steps": steps, "answer": null, "verifier": [], "stop": "answered",
            "timings": {"perception_seconds": 0.0, "llm_seconds": 0.0, "total_seconds": 0.0}
        }))
        .unwrap()
    }

    fn chat(replies: usize) -> Vec<Message> {
        let mut m = vec![Message::system("s")];
        for k in 0..replies {
            m.push(Message::user(format!("message {k}")));
            m.push(Message::assistant(format!("reply {k}")));
        }
        m
    }

    #[test]
    fn the_update_reads_up_to_the_first_final_answer() {
        // a revision after the first answer is left out
        let t = trace(&["spot_expressions", FINAL_ANSWER, FINAL_ANSWER]);
        let m = first_answer_messages(&chat(3), &t).unwrap();
        assert_eq!(m.len(), 5);
        assert_eq!(m[4].content, "reply 1");
        // a run cut short keeps every reply
        let cut = trace(&["spot_expressions", "au_evidence"]);
        assert_eq!(first_answer_messages(&chat(2), &cut).unwrap().len(), 5);
        // a conversation that is not the trace's is refused
        assert!(first_answer_messages(&chat(1), &cut).is_err());
    }
}
