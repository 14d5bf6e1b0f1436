//! Who chooses the next step: the language model under the step schema, or (in tests) a
//! script.

use std::sync::Arc;

use serde_json::Value;

use crate::error::Result;
use crate::llm::constrain::{ConstraintVocab, JsonConstraint};
use crate::llm::{Chat, GenerateOptions, Message, SamplingParams, TextModel};

/// The model's reply to one message.
#[derive(Debug, Clone)]
pub struct Reply {
    /// JSON text meant to match the step schema.
    pub text: String,
    pub tokens: usize,
}

/// Chooses the steps of a run.
pub trait Policy {
    /// The reply to `message` (the question first, then each observation), under `schema`,
    /// in at most `max_tokens` tokens.
    fn reply(&mut self, message: &str, schema: &Value, max_tokens: usize) -> Result<Reply>;
    /// What the trace records as the model.
    fn name(&self) -> String;
    /// Forgets the previous run's conversation; [`crate::agent::run`] calls it first.
    fn restart(&mut self) {}
}

/// A language model in a chat whose replies are generated under the step schema, so they
/// always parse; the KV cache carries over, so each step pays only for its new tokens.
pub struct LlmPolicy {
    chat: Chat,
    vocab: Arc<ConstraintVocab>,
    sampling: SamplingParams,
    name: String,
}

impl LlmPolicy {
    pub fn new(model: TextModel, system: String, sampling: SamplingParams) -> Result<Self> {
        let name = model
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let vocab = Arc::new(ConstraintVocab::new(&model.tokenizer)?);
        let mut chat = Chat::new(model)?;
        chat.push(Message::system(system));
        Ok(LlmPolicy {
            chat,
            vocab,
            sampling,
            name,
        })
    }
}

impl Policy for LlmPolicy {
    fn reply(&mut self, message: &str, schema: &Value, max_tokens: usize) -> Result<Reply> {
        let mut constraint = JsonConstraint::new(&self.vocab, schema)?;
        let opts = GenerateOptions {
            max_tokens,
            sampling: self.sampling.clone(),
        };
        let g = self.chat.send_constrained(
            Message::user(message),
            &opts,
            &mut constraint,
            &mut |_| true,
        )?;
        Ok(Reply {
            text: g.text,
            tokens: g.tokens.len(),
        })
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn restart(&mut self) {
        // the system prompt stays
        self.chat.restart(1);
    }
}
