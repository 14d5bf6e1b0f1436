//! A conversation with a model: tokens go in, the KV cache keeps them, and each new step
//! prefills only the tokens added since the last one.
//!
//! [`Session`] works on tokens and text; [`Chat`] on messages, rendering the chat template
//! and appending only the part of the rendering that is new since the last turn, so an agent
//! step pays for its new tokens, not for the whole conversation again.

use std::time::Instant;

use serde::Serialize;

use super::constrain::strings::OpenString;
use super::constrain::JsonConstraint;
use super::prompt_cache::PromptCache;
use super::sampling::{PenaltyScope, Sampler, SamplingParams};
use super::template::Message;
use super::tokenizer::{TextStream, Tokenizer};
use super::TextModel;
use crate::{Error, Result};

/// Tokens prefilled in one forward pass at most (bounds the attention matrix).
pub const PREFILL_CHUNK: usize = 256;

/// What one generation is allowed and how it samples.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub penalty_scope: PenaltyScope,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampling: SamplingParams::default(),
            penalty_scope: PenaltyScope::Recent,
        }
    }
}

/// Why a generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-generation token (not part of `tokens`).
    EndOfGeneration,
    /// `max_tokens` were produced.
    MaxTokens,
    /// The callback asked to stop.
    Stopped,
    /// The constrained value is complete (nothing may follow it).
    Complete,
}

/// The result of one generation.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub text: String,
    pub stop: StopReason,
    /// Tokens prefilled before the first new token (new since the previous step).
    pub prompt_tokens: usize,
    pub prefill_seconds: f64,
    /// From the first sampled token to the end, masks included.
    pub decode_seconds: f64,
    /// Time spent computing constraint masks (0 without a constraint), and how many.
    pub mask_seconds: f64,
    pub masks: usize,
    /// Tokens the constraint forced (the only one it allowed), taken without running the
    /// model for them: they run in one batch with the next token that needs it.
    pub forced: usize,
}

impl Generation {
    pub fn prefill_tokens_per_second(&self) -> f64 {
        self.prompt_tokens as f64 / self.prefill_seconds.max(1e-9)
    }
    /// Decode speed: every generated token after the first costs one forward pass.
    pub fn decode_tokens_per_second(&self) -> f64 {
        self.tokens.len().saturating_sub(1) as f64 / self.decode_seconds.max(1e-9)
    }
    /// Milliseconds per constraint mask (0 without a constraint).
    pub fn mask_ms_per_token(&self) -> f64 {
        1e3 * self.mask_seconds / self.masks.max(1) as f64
    }
    /// Milliseconds per decoded token without the masks: the forward pass and the sampling.
    pub fn unmasked_decode_ms_per_token(&self) -> f64 {
        let steps = self.tokens.len().saturating_sub(1).max(1);
        1e3 * (self.decode_seconds - self.mask_seconds).max(0.0) / steps as f64
    }
}

/// A model with its KV cache and the tokens in it.
#[derive(Debug)]
pub struct Session {
    model: TextModel,
    /// Tokens whose keys and values are in the cache, in order.
    cached: Vec<u32>,
    /// Tokens appended but not yet run.
    pending: Vec<u32>,
    /// Logits after the last cached token.
    last_logits: Option<Vec<f32>>,
    /// Tokens run through the model since the session began (for accounting and tests).
    prefilled_total: usize,
}

impl Session {
    pub fn new(model: TextModel) -> Self {
        Session {
            model,
            cached: Vec::new(),
            pending: Vec::new(),
            last_logits: None,
            prefilled_total: 0,
        }
    }

    pub fn model(&self) -> &TextModel {
        &self.model
    }

    /// Every token of the conversation so far, run or not.
    pub fn tokens(&self) -> Vec<u32> {
        let mut all = self.cached.clone();
        all.extend(&self.pending);
        all
    }

    /// Tokens run through the model since the session began.
    pub fn prefilled_total(&self) -> usize {
        self.prefilled_total
    }

    /// Starts over: the cache is dropped.
    pub fn reset(&mut self) {
        self.model.lm.clear();
        self.cached.clear();
        self.pending.clear();
        self.last_logits = None;
    }

    /// Makes `text` the whole conversation (BOS first when the model wants one), keeping the
    /// cached positions it shares with the conversation so far: a new conversation under the
    /// same system prompt prefills only what follows the prompt. At least the last token runs
    /// again, for the logits after it.
    pub fn replace_text(&mut self, text: &str) -> Result<()> {
        let ids = self.model.tokenizer.encode(text, true, true)?;
        self.replace_tokens(&ids);
        Ok(())
    }

    /// [`replace_text`](Self::replace_text) on tokens.
    fn replace_tokens(&mut self, ids: &[u32]) {
        let shared = self
            .cached
            .iter()
            .zip(ids)
            .take_while(|(a, b)| a == b)
            .count()
            .min(ids.len().saturating_sub(1));
        self.pending.clear();
        self.last_logits = None;
        if shared > 0 && self.model.lm.truncate(shared) {
            self.cached.truncate(shared);
        } else {
            self.model.lm.clear();
            self.cached.clear();
        }
        self.pending.extend_from_slice(&ids[self.cached.len()..]);
    }

    /// Makes `text` the whole conversation and runs it, its keys and values loaded from
    /// `cache` when a file there holds them, else computed and written there (a failure to
    /// write is reported on stderr and costs nothing else). `true` on a load.
    pub fn prefill_cached(&mut self, text: &str, cache: &PromptCache) -> Result<bool> {
        let ids = self.model.tokenizer.encode(text, true, true)?;
        if let Some(kv) = cache.load(&self.model.path, &ids) {
            if self.model.lm.import_kv(&kv, ids.len()) {
                self.cached = ids;
                self.pending.clear();
                self.last_logits = None;
                return Ok(true);
            }
        }
        self.replace_tokens(&ids);
        self.logits()?;
        if let Some(kv) = self.model.lm.export_kv() {
            if let Err(e) = cache.store(&self.model.path, &self.cached, &kv) {
                eprintln!("warning: {e}; the prompt will be run again next time");
            }
        }
        Ok(false)
    }

    pub fn append_tokens(&mut self, tokens: &[u32]) {
        self.pending.extend_from_slice(tokens);
    }

    /// Appends text, special tokens (`<|im_start|>`) parsed; BOS first when the model wants
    /// one and the session is empty.
    pub fn append_text(&mut self, text: &str) -> Result<()> {
        let first = self.cached.is_empty() && self.pending.is_empty();
        let ids = self.model.tokenizer.encode(text, first, true)?;
        self.pending.extend(ids);
        Ok(())
    }

    /// Runs the pending tokens and returns the logits after the last token of the
    /// conversation, `[vocab]`.
    pub fn logits(&mut self) -> Result<&[f32]> {
        if !self.pending.is_empty() {
            // refused before any of it runs: a prompt past the context would otherwise be
            // prefilled chunk by chunk (minutes for a long one) before the model says so
            let total = self.cached.len() + self.pending.len();
            let context = self.model.lm.context_length();
            if total > context {
                self.pending.clear();
                return Err(Error::Limit {
                    what: "context".into(),
                    reason: format!(
                        "{total} tokens exceed the model's context of {context}; shorten the \
                         prompt or start a new conversation"
                    ),
                });
            }
            let pending = std::mem::take(&mut self.pending);
            for chunk in pending.chunks(PREFILL_CHUNK) {
                let logits = self.model.lm.forward(chunk, self.cached.len())?;
                self.cached.extend_from_slice(chunk);
                self.prefilled_total += chunk.len();
                self.last_logits = Some(logits);
            }
        }
        self.last_logits
            .as_deref()
            .ok_or_else(|| Error::Internal("no tokens in the session yet".into()))
    }

    /// Generates up to `opts.max_tokens` tokens after the conversation so far, calling
    /// `on_text` with each piece of text as it completes (return `false` to stop). The new
    /// tokens stay in the session; an end-of-generation token does not.
    pub fn generate(
        &mut self,
        opts: &GenerateOptions,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        self.generate_inner(opts, None, on_text)
    }

    /// [`generate`](Self::generate) under `constraint`: each token is drawn from the logits it
    /// allows, and the generation stops when its value is complete
    /// ([`StopReason::Complete`]).
    pub fn generate_constrained(
        &mut self,
        opts: &GenerateOptions,
        constraint: &mut JsonConstraint,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        self.generate_inner(opts, Some(constraint), on_text)
    }

    fn generate_inner(
        &mut self,
        opts: &GenerateOptions,
        constraint: Option<&mut JsonConstraint>,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        decode(self, opts, constraint, on_text)
    }
}

impl Decoder for Session {
    fn tokenizer(&self) -> &Tokenizer {
        &self.model.tokenizer
    }
    fn pending(&self) -> usize {
        self.pending.len()
    }
    fn history(&self) -> Vec<u32> {
        self.tokens()
    }
    fn push(&mut self, id: u32) {
        self.pending.push(id);
    }
    fn logits(&mut self) -> Result<Vec<f32>> {
        Session::logits(self).map(<[f32]>::to_vec)
    }
}

/// A model's side of a generation: where the chosen tokens go and the logits come from
/// ([`Session`], or a multimodal session in [`super::vision`]).
pub(crate) trait Decoder {
    fn tokenizer(&self) -> &Tokenizer;
    /// Tokens appended but not yet run (the prompt of the next generation).
    fn pending(&self) -> usize;
    /// Every token of the conversation, run or not (the repetition penalty reads it).
    fn history(&self) -> Vec<u32>;
    /// Appends a token (run by the next [`Decoder::logits`]).
    fn push(&mut self, id: u32);
    /// Runs the pending tokens; the logits after the last token, `[vocab]`.
    fn logits(&mut self) -> Result<Vec<f32>>;
}

/// Generates up to `opts.max_tokens` tokens after what `model` holds, under `constraint` when
/// given, calling `on_text` with each piece of text as it completes (return `false` to stop).
/// The new tokens stay in the model's conversation; an end-of-generation token does not.
pub(crate) fn decode(
    model: &mut dyn Decoder,
    opts: &GenerateOptions,
    mut constraint: Option<&mut JsonConstraint>,
    on_text: &mut dyn FnMut(&str) -> bool,
) -> Result<Generation> {
    let mut sampler = Sampler::new(opts.sampling.clone())?;
    let prompt_tokens = model.pending();
    let start = Instant::now();
    let mut logits = model.logits()?;
    let prefill_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut stream = TextStream::new();
    let mut tokens = Vec::new();
    let mut text = String::new();
    let mut history = model.history();
    let mut open_string = OpenString::default();
    // the logits of the next position are computed only where a choice is left: a token the
    // schema forces is taken without them, and the tokens taken so are run with the next
    // one that needs the model, in one batch
    let mut fresh = true;
    let mut forced_count = 0;
    let stop = loop {
        if tokens.len() >= opts.max_tokens {
            break StopReason::MaxTokens;
        }
        let forced = match constraint.as_deref_mut() {
            Some(c) => c.forced()?,
            None => None,
        };
        let next = match forced {
            Some(t) => {
                forced_count += 1;
                t
            }
            None => {
                if !fresh {
                    logits = model.logits()?;
                }
                if let Some(c) = constraint.as_deref_mut() {
                    c.mask(&mut logits)?;
                }
                let penalised = match opts.penalty_scope {
                    PenaltyScope::Recent => &history[..],
                    PenaltyScope::JsonString => open_string.tokens(),
                };
                sampler.sample(&mut logits, penalised)?
            }
        };
        fresh = false;
        if model.tokenizer().end_of_generation().contains(&next) {
            break StopReason::EndOfGeneration;
        }
        if let Some(c) = constraint.as_deref_mut() {
            c.accept(next)?;
        }
        tokens.push(next);
        history.push(next);
        let piece = stream.push(model.tokenizer(), next);
        tracing::trace!(forced = forced.is_some(), piece = piece.as_str(), "decoded");
        open_string.push(next, &piece);
        text.push_str(&piece);
        let go_on = piece.is_empty() || on_text(&piece);
        model.push(next);
        if !go_on {
            break StopReason::Stopped;
        }
        if constraint
            .as_deref()
            .is_some_and(JsonConstraint::is_complete)
        {
            break StopReason::Complete;
        }
    };
    let (mask_seconds, masks) = constraint.map_or((0.0, 0), |c| c.mask_stats());
    let rest = stream.finish();
    if !rest.is_empty() {
        on_text(&rest);
        text.push_str(&rest);
    }
    Ok(Generation {
        tokens,
        text,
        stop,
        prompt_tokens,
        prefill_seconds,
        decode_seconds: start.elapsed().as_secs_f64(),
        mask_seconds,
        masks,
        forced: forced_count,
    })
}

/// A conversation of messages over a [`Session`].
#[derive(Debug)]
pub struct Chat {
    session: Session,
    messages: Vec<Message>,
    /// The text the session's tokens stand for.
    rendered: String,
}

impl Chat {
    /// A chat; the model must carry a chat template.
    pub fn new(model: TextModel) -> Result<Self> {
        if model.template.is_none() {
            return Err(Error::bad_input(
                &model.path,
                "the model has no chat template (tokenizer.chat_template); use plain generation",
            ));
        }
        Ok(Chat {
            session: Session::new(model),
            messages: Vec::new(),
            rendered: String::new(),
        })
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Keeps the first `keep` messages (a system prompt) and drops the rest, to start a new
    /// conversation; the next answer reuses the cached tokens of the kept messages
    /// ([`Session::replace_text`]).
    pub fn restart(&mut self, keep: usize) {
        self.messages.truncate(keep);
        self.rendered.clear();
    }

    /// Runs the messages so far (a system prompt) through the model, their keys and values
    /// loaded from `cache` when it holds them ([`Session::prefill_cached`]); the next answer
    /// goes on from there. `true` on a load.
    pub fn prefill_cached(&mut self, cache: &PromptCache) -> Result<bool> {
        let text = self.render(false)?;
        self.rendered.clear();
        self.session.prefill_cached(&text, cache)
    }

    /// The messages as the template writes them, with the assistant's opening when
    /// `generation_prompt`.
    fn render(&self, generation_prompt: bool) -> Result<String> {
        let template = self
            .session
            .model
            .template
            .as_ref()
            .expect("checked in Chat::new");
        template.render(&self.messages, generation_prompt)
    }

    /// Adds a message without answering it (a system prompt, a tool's observation).
    pub fn push(&mut self, message: Message) {
        self.messages.push(message);
    }

    /// Adds `message` and generates the assistant's answer, which joins the conversation.
    pub fn send(
        &mut self,
        message: Message,
        opts: &GenerateOptions,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        self.send_inner(message, opts, None, on_text)
    }

    /// [`send`](Self::send) with the answer generated under `constraint` (a JSON value that
    /// always parses: a tool call, a final answer).
    pub fn send_constrained(
        &mut self,
        message: Message,
        opts: &GenerateOptions,
        constraint: &mut JsonConstraint,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        self.send_inner(message, opts, Some(constraint), on_text)
    }

    fn send_inner(
        &mut self,
        message: Message,
        opts: &GenerateOptions,
        constraint: Option<&mut JsonConstraint>,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        self.messages.push(message);
        let full = self.render(true)?;
        match full.strip_prefix(self.rendered.as_str()) {
            Some(new) if !self.rendered.is_empty() => self.session.append_text(new)?,
            _ => self.session.replace_text(&full)?,
        }
        let generation = self.session.generate_inner(opts, constraint, on_text)?;
        self.rendered = full + &generation.text;
        self.messages
            .push(Message::assistant(generation.text.clone()));
        Ok(generation)
    }
}
