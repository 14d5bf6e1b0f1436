//! Who chooses the next step: a language model under the step schema (text only, or a
//! multimodal model that also sees the crops and flow maps), or (in tests) a script.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::error::Result;
use crate::llm::constrain::{ConstraintVocab, JsonConstraint};
use crate::llm::prompt_cache::PromptCache;
use crate::llm::vision::{VisionModel, VisionSession};
use crate::llm::{Chat, GenerateOptions, Message, PenaltyScope, SamplingParams, TextModel};
use crate::media::read_image;

/// One message to the model: the question or an observation, and the images that come with
/// it (the frame, a tool's PNG artifacts) for a policy that reads images
/// ([`Policy::max_images`]).
#[derive(Debug, Clone, Copy)]
pub struct Turn<'a> {
    pub text: &'a str,
    pub images: &'a [PathBuf],
    /// When the run's time is up: a reply still being written then stops where it is.
    pub deadline: Option<Instant>,
}

impl<'a> Turn<'a> {
    pub fn text(text: &'a str) -> Self {
        Turn {
            text,
            images: &[],
            deadline: None,
        }
    }

    /// Whether there is time left to write (`on_text` of a generation: `false` stops it).
    fn in_time(&self) -> bool {
        self.deadline.is_none_or(|d| Instant::now() < d)
    }
}

/// The model's reply to one message.
#[derive(Debug, Clone)]
pub struct Reply {
    /// JSON text meant to match the step schema.
    pub text: String,
    pub tokens: usize,
}

/// Chooses the steps of a run.
pub trait Policy {
    /// The reply to `turn` (the question first, then each observation), under `schema`, in
    /// at most `max_tokens` tokens.
    fn reply(&mut self, turn: &Turn<'_>, schema: &Value, max_tokens: usize) -> Result<Reply>;
    /// What the trace records as the model.
    fn name(&self) -> String;
    /// Forgets the previous run's conversation; [`crate::agent::run`] calls it first.
    fn restart(&mut self) {}
    /// Images one [`Turn`] may carry to the model; 0 (text models) attaches none.
    fn max_images(&self) -> usize {
        0
    }
}

/// The agent's default sampling: greedy, with a repetition penalty that the policies apply
/// only to the string being written, so a small model does not write one phrase over and over
/// in a thought or an answer's text.
pub fn default_sampling() -> SamplingParams {
    SamplingParams {
        repeat_penalty: 1.3,
        ..SamplingParams::greedy()
    }
}

/// The sampling for a model: greedy without a repetition penalty for the trained reasoner
/// ([`crate::llm::REASONER_MODEL`]), which writes its trained phrasings (the penalty pushed it
/// off them: "The movement is strong at 0.92; see if there's anything else in sight."), and
/// [`default_sampling`] for any other model.
pub fn sampling_for(model: &str) -> SamplingParams {
    if model == crate::llm::REASONER_MODEL {
        SamplingParams::greedy()
    } else {
        default_sampling()
    }
}

/// How a policy generates one reply: within `max_tokens`, the penalty on the JSON string being
/// written only (keys, quotes and a list of AU codes are repetition by design).
fn reply_options(max_tokens: usize, sampling: &SamplingParams) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        sampling: sampling.clone(),
        penalty_scope: PenaltyScope::JsonString,
    }
}

/// A language model in a chat whose replies are generated under the step schema, so they
/// always parse; the KV cache carries over, so each step pays only for its new tokens.
pub struct LlmPolicy {
    chat: Chat,
    vocab: Arc<ConstraintVocab>,
    sampling: SamplingParams,
    name: String,
    /// Where the system prompt's keys and values are kept, until the first reply looks there.
    prompt_cache: Option<PromptCache>,
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
            prompt_cache: None,
        })
    }

    /// Loads the system prompt's keys and values from `cache` at the first reply (or computes
    /// and writes them there), so a new process does not run the prompt again.
    pub fn with_prompt_cache(mut self, cache: PromptCache) -> Self {
        self.prompt_cache = Some(cache);
        self
    }

    /// The conversation of the current run as the model read and wrote it: the system prompt,
    /// then each message and the reply to it (what the policy update trains on).
    pub fn messages(&self) -> &[Message] {
        self.chat.messages()
    }

    /// Seeds the next replies' sampling. Every reply draws from the same seed, so a caller
    /// that wants different draws (rollouts of one question) sets one before each reply.
    pub fn set_seed(&mut self, seed: u64) {
        self.sampling.seed = seed;
    }
}

impl Policy for LlmPolicy {
    fn reply(&mut self, turn: &Turn<'_>, schema: &Value, max_tokens: usize) -> Result<Reply> {
        if let Some(cache) = self.prompt_cache.take() {
            self.chat.prefill_cached(&cache)?;
        }
        let mut constraint = JsonConstraint::new(&self.vocab, schema)?;
        let opts = reply_options(max_tokens, &self.sampling);
        let g = self.chat.send_constrained(
            Message::user(turn.text),
            &opts,
            &mut constraint,
            &mut |_| turn.in_time(),
        )?;
        tracing::debug!(
            "step: {} prompt tokens in {:.3} s, {} tokens ({} forced) in {:.3} s ({} masks, \
             {:.3} s)",
            g.prompt_tokens,
            g.prefill_seconds,
            g.tokens.len(),
            g.forced,
            g.decode_seconds,
            g.masks,
            g.mask_seconds
        );
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

/// A multimodal model (Qwen3-VL) that reads each observation with its images: the zoomed
/// crops, the aligned face, the flow maps and the spotting chart. Replies are generated under
/// the step schema as with [`LlmPolicy`]; the conversation, images included, stays in the KV
/// cache for the whole run.
pub struct VisionPolicy {
    model: Arc<VisionModel>,
    session: Option<VisionSession>,
    vocab: Arc<ConstraintVocab>,
    system: String,
    sampling: SamplingParams,
    name: String,
    /// Images attached to one message at most (the first ones); the rest are left out.
    pub max_images: usize,
}

impl VisionPolicy {
    /// Needs the model's `tokenizer.json` (constrained decoding reads its token bytes).
    pub fn new(model: VisionModel, system: String, sampling: SamplingParams) -> Result<Self> {
        let vocab = Arc::new(ConstraintVocab::new(model.require_tokenizer()?)?);
        let name = model
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(VisionPolicy {
            model: Arc::new(model),
            session: None,
            vocab,
            system,
            sampling,
            name,
            max_images: 2,
        })
    }

    /// The name the trace records (by default the model folder's name).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The images and their placeholder tokens the model has read in this run.
    pub fn images_seen(&self) -> (usize, usize) {
        self.session.as_ref().map_or((0, 0), VisionSession::images)
    }
}

impl Policy for VisionPolicy {
    fn reply(&mut self, turn: &Turn<'_>, schema: &Value, max_tokens: usize) -> Result<Reply> {
        let max_images = self.max_images;
        let session = match &mut self.session {
            Some(s) => s,
            empty => {
                let mut s = VisionSession::new(Arc::clone(&self.model))?;
                s.append_text(&format!("<|im_start|>system\n{}<|im_end|>\n", self.system))?;
                empty.insert(s)
            }
        };
        session.append_text("<|im_start|>user\n")?;
        for path in turn.images.iter().take(max_images) {
            session.append_image(&read_image(path)?)?;
        }
        session.append_text(&format!("{}<|im_end|>\n<|im_start|>assistant\n", turn.text))?;
        let mut constraint = JsonConstraint::new(&self.vocab, schema)?;
        let opts = reply_options(max_tokens, &self.sampling);
        let g = session.generate_constrained(&opts, &mut constraint, &mut |_| turn.in_time())?;
        session.append_text("<|im_end|>\n")?;
        Ok(Reply {
            text: g.text,
            tokens: g.tokens.len(),
        })
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn restart(&mut self) {
        self.session = None;
    }

    fn max_images(&self) -> usize {
        self.max_images
    }
}
