//! A conversation with a Qwen3-VL model that mixes text and images: the KV cache keeps every
//! token, so each turn runs only what it adds, images included.
//!
//! Text runs one token at a time and each image's placeholders as one block (see the module
//! docs of [`super`]): candle-transformers 0.11.1's `qwen3_vl` masks nothing in a pass of more
//! than one token.

use std::sync::Arc;

use candle_core::{DType, IndexOp, Tensor};
use candle_transformers::models::qwen3_vl::Qwen3VLModel;

use super::VisionModel;
use crate::error::{Error, Result};
use crate::llm::constrain::JsonConstraint;
use crate::llm::session::{decode, Decoder};
use crate::llm::tokenizer::Tokenizer;
use crate::llm::{GenerateOptions, Generation};
use crate::media::RgbImage;

/// A Qwen3-VL model with its KV cache and the tokens in it.
pub struct VisionSession {
    model: Arc<VisionModel>,
    lm: Qwen3VLModel,
    /// Tokens run through the model, in order (an image counts as its placeholders).
    cached: Vec<u32>,
    /// Text tokens appended but not yet run.
    pending: Vec<u32>,
    last_logits: Option<Vec<f32>>,
    /// Images run so far, and their placeholder tokens.
    images: usize,
    image_tokens: usize,
}

impl std::fmt::Debug for VisionSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisionSession")
            .field("cached", &self.cached.len())
            .field("pending", &self.pending.len())
            .field("images", &self.images)
            .finish_non_exhaustive()
    }
}

impl VisionSession {
    /// An empty conversation (a fresh KV cache) over `model`'s weights.
    pub fn new(model: Arc<VisionModel>) -> Result<Self> {
        let lm = model.build()?;
        Ok(VisionSession {
            model,
            lm,
            cached: Vec::new(),
            pending: Vec::new(),
            last_logits: None,
            images: 0,
            image_tokens: 0,
        })
    }

    pub fn model(&self) -> &VisionModel {
        &self.model
    }

    /// Every token so far, run or not (an image as its markers and placeholders).
    pub fn tokens(&self) -> Vec<u32> {
        let mut all = self.cached.clone();
        all.extend(&self.pending);
        all
    }

    /// Images in the conversation, and the placeholder tokens they took.
    pub fn images(&self) -> (usize, usize) {
        (self.images, self.image_tokens)
    }

    pub fn append_tokens(&mut self, ids: &[u32]) {
        self.pending.extend_from_slice(ids);
    }

    /// Appends text, special tokens (`<|im_start|>`) parsed. Needs the model's tokenizer.
    pub fn append_text(&mut self, text: &str) -> Result<()> {
        let ids = self.model.require_tokenizer()?.encode(text, false, true)?;
        self.pending.extend(ids);
        Ok(())
    }

    /// Appends an image: the pending text is run, then the vision start marker, the image's
    /// placeholders as one block, and the end marker (left pending). Returns the number of
    /// placeholders.
    pub fn append_image(&mut self, image: &RgbImage) -> Result<usize> {
        let config = &self.model.config;
        let (start, pad, end) = (
            config.vision_start_token_id,
            config.image_token_id,
            config.vision_end_token_id,
        );
        let patches = self.model.processor.patches(image, &self.model.device)?;
        let [t, h, w] = patches.grid_thw.map(|v| v as u32);
        let grid_thw = Tensor::new(&[[t, h, w]], &self.model.device)?;
        self.pending.push(start);
        self.run_pending()?;
        let n = patches.num_tokens;
        let pads = vec![pad; n];
        let input = Tensor::new(pads.as_slice(), &self.model.device)?.unsqueeze(0)?; // [1, n]
        self.lm.forward(
            &input,
            Some(patches.pixel_values),
            None,
            Some(grid_thw),
            None,
            vec![n],
            vec![vec![(0, n)]],
            vec![],
            &[self.cached.len()],
        )?;
        self.cached.extend(pads);
        // the logits after a placeholder are not the conversation's next-token logits
        self.last_logits = None;
        self.pending.push(end);
        self.images += 1;
        self.image_tokens += n;
        Ok(n)
    }

    /// Runs the pending tokens; the logits after the last token of the conversation.
    pub fn logits(&mut self) -> Result<&[f32]> {
        self.run_pending()?;
        self.last_logits
            .as_deref()
            .ok_or_else(|| Error::Internal("no text after the last image yet".into()))
    }

    /// Runs the pending text, one token per forward pass (the module docs say why).
    fn run_pending(&mut self) -> Result<()> {
        for id in std::mem::take(&mut self.pending) {
            let input = Tensor::new(&[id], &self.model.device)?.unsqueeze(0)?; // [1, 1]
            let logits = self.lm.forward(
                &input,
                None,
                None,
                None,
                None,
                vec![1],
                vec![],
                vec![],
                &[self.cached.len()],
            )?; // [1, vocab]
            self.cached.push(id);
            self.last_logits = Some(logits.i(0)?.to_dtype(DType::F32)?.to_vec1()?);
        }
        Ok(())
    }

    /// Generates after the conversation so far under `constraint` (one JSON value), as
    /// [`crate::llm::Session::generate_constrained`] does for text models. Needs the
    /// model's tokenizer.
    pub fn generate_constrained(
        &mut self,
        opts: &GenerateOptions,
        constraint: &mut JsonConstraint,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation> {
        self.model.require_tokenizer()?;
        decode(self, opts, Some(constraint), on_text)
    }
}

impl Decoder for VisionSession {
    fn tokenizer(&self) -> &Tokenizer {
        self.model
            .tokenizer
            .as_ref()
            .expect("generation checks the tokenizer first")
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
        VisionSession::logits(self).map(<[f32]>::to_vec)
    }
}
