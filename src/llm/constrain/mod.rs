//! Constrained decoding: the model writes one JSON value that a JSON Schema accepts, so tool
//! calls and final answers always parse, even from a 135M model.
//!
//! Before each token, [`JsonConstraint::mask`] sets the logits of tokens the schema forbids at
//! that point to `-inf`; after it, [`JsonConstraint::accept`] advances the constraint. The
//! generation ends when the value is complete ([`JsonConstraint::is_complete`]). Greedy and
//! temperature sampling both draw from the masked logits.
//!
//! The engine is `llguidance` (with its token trie, `toktrie`): a schema becomes a grammar
//! whose lexer is a derivative-based regex engine, and the mask is computed lazily by walking
//! the token trie, so nothing is built per vocabulary ahead of time. It is pure Rust and,
//! without default features, adds four small crates. `outlines-core` 0.2 was the other
//! candidate: it depends on `tokenizers` 0.22 with the `onig` C library (a second tokenizers
//! beside our 0.23) and on `hf-hub` by default, and builds a full vocabulary-by-state index
//! for every schema before the first token.
//!
//! What we add around llguidance ([`schema`]): compact JSON (no free whitespace, which a small
//! model fills forever), default bounds on strings and arrays the schema leaves open so a
//! value ends within a token budget, a bound on the digits of numbers ([`number`]), and
//! `uniqueItems` on arrays of strings (a grammar cannot say it; [`unique`] masks the closing
//! quote of a repeated item).
//!
//! ```no_run
//! use std::sync::Arc;
//! use actfer::llm::constrain::{ConstraintVocab, JsonConstraint};
//! use actfer::llm::{GenerateOptions, Session, TextModel, DEFAULT_MODEL};
//! let model = TextModel::load_spec(DEFAULT_MODEL)?;
//! let vocab = Arc::new(ConstraintVocab::new(&model.tokenizer)?);
//! let schema = serde_json::json!({"type": "object", "properties": {"ok": {"type": "boolean"}},
//!     "required": ["ok"]});
//! let mut constraint = JsonConstraint::new(&vocab, &schema)?;
//! let mut session = Session::new(model);
//! session.append_text("Answer in JSON: is water wet?\n")?;
//! let g = session.generate_constrained(&GenerateOptions::default(), &mut constraint,
//!     &mut |_| true)?;
//! let value: serde_json::Value = serde_json::from_str(&g.text).unwrap();
//! # Ok::<(), actfer::Error>(())
//! ```

pub mod number;
pub mod schema;
pub mod strings;
pub mod unique;
pub mod validate;

use std::sync::Arc;
use std::time::Instant;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{ApproximateTokEnv, SimpleVob, TokEnv, TokRxInfo, TokTrie, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use serde_json::Value;

use super::tokenizer::Tokenizer;
use crate::{Error, Result};

pub use validate::validate;

/// The vocabulary as bytes, built once per tokenizer and shared by every constraint on it.
pub struct ConstraintVocab {
    factory: ParserFactory,
    /// The bytes of each token; special tokens start with 0xFF so no JSON text contains them.
    token_bytes: Vec<Vec<u8>>,
    /// Tokens with a `"` in them: the only ones that can close a string ([`unique`]).
    quote_tokens: Vec<u32>,
}

impl std::fmt::Debug for ConstraintVocab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConstraintVocab")
            .field("vocab", &self.token_bytes.len())
            .finish_non_exhaustive()
    }
}

impl ConstraintVocab {
    /// The token-byte table of `tokenizer` (each id decoded to its bytes) and llguidance's
    /// token trie over it.
    pub fn new(tokenizer: &Tokenizer) -> Result<Self> {
        let n = tokenizer.vocab_size();
        let token_bytes: Vec<Vec<u8>> = (0..n as u32)
            .map(|id| {
                let bytes = tokenizer.token_bytes(id);
                if tokenizer.is_special(id) {
                    let mut marked = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    marked.extend(bytes);
                    marked
                } else {
                    bytes
                }
            })
            .collect();
        let eos = tokenizer
            .eos()
            .or_else(|| tokenizer.end_of_generation().first().copied())
            .ok_or_else(|| {
                Error::Internal("constrained decoding needs an end-of-sequence token".into())
            })?;
        let trie = TokTrie::from(&TokRxInfo::new(n as u32, eos), &token_bytes);
        // llguidance tokenizes the bytes a schema forces (a key, the rest of a name in a
        // pattern) to force their tokens ahead of the model; only a canonical tokenizer may
        // do that, else the trie's greedy one stands in and nothing is forced that way
        let env: TokEnv = if tokenizer.encodes_pieces_canonically() {
            Arc::new(CanonicalEnv {
                trie,
                tokenizer: tokenizer.clone(),
            })
        } else {
            Arc::new(ApproximateTokEnv::new(trie))
        };
        let mut factory = ParserFactory::new_simple(&env).map_err(llg_error)?;
        factory.quiet();
        let quote_tokens = token_bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| b.first() != Some(&TokTrie::SPECIAL_TOKEN_MARKER) && b.contains(&b'"'))
            .map(|(i, _)| i as u32)
            .collect();
        Ok(ConstraintVocab {
            factory,
            token_bytes,
            quote_tokens,
        })
    }

    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.token_bytes
            .get(id as usize)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }
}

/// The model's own tokenizer for llguidance: it cuts forced bytes as the model reads them.
struct CanonicalEnv {
    trie: TokTrie,
    tokenizer: Tokenizer,
}

impl TokenizerEnv for CanonicalEnv {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    fn tokenize_bytes(&self, s: &[u8]) -> Vec<u32> {
        std::str::from_utf8(s)
            .ok()
            .and_then(|text| self.tokenizer.encode(text, false, false).ok())
            .unwrap_or_else(|| self.trie.greedy_tokenize(s))
    }

    fn tokenize_is_canonical(&self) -> bool {
        true
    }
}

fn llg_error(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("llguidance: {e}"))
}

/// Look ahead for repeated items only where this few tokens are allowed (inside an item of an
/// enum or a short pattern); an open string can always go on.
const LOOKAHEAD_MAX: usize = 256;

/// How many tokens of an item to look ahead through.
const LOOKAHEAD_DEPTH: usize = 6;

/// One generation under a JSON Schema: masks the logits, follows the accepted tokens.
pub struct JsonConstraint {
    vocab: Arc<ConstraintVocab>,
    matcher: Matcher,
    unique: unique::UniqueGuard,
    numbers: number::NumberGuard,
    complete: bool,
    /// The mask of the next position, once computed ([`JsonConstraint::forced`]).
    next: Option<SimpleVob>,
    mask_seconds: f64,
    masks: usize,
}

impl std::fmt::Debug for JsonConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonConstraint")
            .field("complete", &self.complete)
            .field("masks", &self.masks)
            .finish_non_exhaustive()
    }
}

impl JsonConstraint {
    /// A constraint for one value of `schema`. A schema llguidance cannot compile (an
    /// unsupported keyword, a contradiction) is an [`Error::Limit`] naming the reason.
    pub fn new(vocab: &Arc<ConstraintVocab>, schema: &Value) -> Result<Self> {
        let grammar = TopLevelGrammar::from_json_schema(schema::for_llguidance(schema));
        Self::build(
            vocab,
            grammar,
            "JSON Schema",
            unique::UniqueGuard::new(schema),
        )
    }

    /// A constraint for plain text that the regular expression `pattern` matches whole
    /// (no JSON around it).
    pub fn for_text(vocab: &Arc<ConstraintVocab>, pattern: &str) -> Result<Self> {
        let grammar = TopLevelGrammar::from_regex(pattern);
        Self::build(
            vocab,
            grammar,
            "text pattern",
            unique::UniqueGuard::new(&Value::Null),
        )
    }

    fn build(
        vocab: &Arc<ConstraintVocab>,
        grammar: TopLevelGrammar,
        what: &str,
        unique: unique::UniqueGuard,
    ) -> Result<Self> {
        let parser = vocab
            .factory
            .create_parser(grammar)
            .map_err(|e| Error::Limit {
                what: what.into(),
                reason: format!("{e}"),
            })?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(llg_error(e));
        }
        Ok(JsonConstraint {
            vocab: Arc::clone(vocab),
            matcher,
            unique,
            numbers: number::NumberGuard::default(),
            complete: false,
            next: None,
            mask_seconds: 0.0,
            masks: 0,
        })
    }

    /// The tokens allowed next.
    pub fn allowed(&mut self) -> Result<SimpleVob> {
        let grammar = self.matcher.compute_mask().map_err(llg_error)?;
        if !self.unique.checking() && !self.numbers.at_limit() {
            return Ok(grammar);
        }
        let mut mask = grammar.clone();
        if self.unique.checking() {
            if grammar.num_set() <= LOOKAHEAD_MAX {
                for t in grammar.to_list() {
                    if self.only_repeats_after(&self.matcher, &self.unique, t, LOOKAHEAD_DEPTH)? {
                        mask.disallow_token(t);
                    }
                }
            } else {
                let (quotes, bytes) = (&self.vocab.quote_tokens, &self.vocab.token_bytes);
                for t in self.unique.repeats(&grammar, quotes, bytes) {
                    mask.disallow_token(t);
                }
            }
        }
        if self.numbers.at_limit() {
            for t in mask.to_list() {
                if self.numbers.overflows(self.vocab.token_bytes(t)) {
                    mask.disallow_token(t);
                }
            }
        }
        if mask.is_zero() {
            tracing::debug!(
                "every allowed token repeats an item or lengthens a number; letting it through"
            );
            return Ok(grammar);
        }
        Ok(mask)
    }

    /// From `matcher` and `unique`, token `t` repeats an item of a `uniqueItems` array, or
    /// starts an item that can only end as a repeat (`"AU1` when `"AU1"`, `"AU12"` and
    /// `"AU15"` are there and the items are an enum): looks ahead through the item's tokens,
    /// `depth` at most.
    fn only_repeats_after(
        &self,
        matcher: &Matcher,
        unique: &unique::UniqueGuard,
        t: u32,
        depth: usize,
    ) -> Result<bool> {
        let mut unique = unique.clone();
        if !unique.feed(self.vocab.token_bytes(t)) {
            return Ok(true);
        }
        if !unique.in_item() || depth == 0 {
            return Ok(false);
        }
        let mut matcher = matcher.clone();
        matcher.consume_token(t).map_err(llg_error)?;
        if matcher.is_stopped() {
            return Ok(false);
        }
        let next = matcher.compute_mask().map_err(llg_error)?;
        if next.num_set() > LOOKAHEAD_MAX {
            return Ok(false);
        }
        for t in next.to_list() {
            if !self.only_repeats_after(&matcher, &unique, t, depth - 1)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Sets the logits of forbidden tokens to `-inf` (and of ids past the vocabulary, when
    /// the model's output is padded).
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<()> {
        let start = Instant::now();
        let mask = match self.next.take() {
            Some(m) => m,
            None => self.allowed()?,
        };
        for (id, logit) in logits.iter_mut().enumerate() {
            if id >= self.vocab.vocab_size() || !mask.is_allowed(id as u32) {
                *logit = f32::NEG_INFINITY;
            }
        }
        self.mask_seconds += start.elapsed().as_secs_f64();
        self.masks += 1;
        Ok(())
    }

    /// The next token when the schema allows only one (a key, a closing quote, the rest of
    /// an enum value): whatever the logits, that token is chosen, so the model need not run
    /// for it. The mask is kept for [`mask`](Self::mask) otherwise.
    pub fn forced(&mut self) -> Result<Option<u32>> {
        let start = Instant::now();
        // the bytes the grammar forces (a key and its quotes), as the tokenizer would split
        // them; then a mask that allows a single token
        if let Some(&t) = self.matcher.compute_ff_tokens().first() {
            self.mask_seconds += start.elapsed().as_secs_f64();
            self.masks += 1;
            return Ok(Some(t));
        }
        let mask = self.allowed()?;
        self.mask_seconds += start.elapsed().as_secs_f64();
        if mask.num_set() == 1 {
            self.masks += 1;
            return Ok(mask.first_bit_set().map(|t| t as u32));
        }
        self.next = Some(mask);
        Ok(None)
    }

    /// Advances past `token`, which must be one [`mask`](Self::mask) allowed.
    pub fn accept(&mut self, token: u32) -> Result<()> {
        self.next = None;
        self.matcher.consume_token(token).map_err(llg_error)?;
        self.unique.feed(self.vocab.token_bytes(token));
        self.numbers.feed(self.vocab.token_bytes(token));
        self.complete = self.matcher.is_stopped();
        Ok(())
    }

    /// The value is complete: nothing may follow it.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Time spent computing masks so far, and how many.
    pub fn mask_stats(&self) -> (f64, usize) {
        (self.mask_seconds, self.masks)
    }
}
