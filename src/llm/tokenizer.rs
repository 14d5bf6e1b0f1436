//! Tokenizers from GGUF metadata (byte-level BPE, `tokenizer.ggml.model = "gpt2"`;
//! SentencePiece, `"llama"`, in [`super::spm`]) or from a `tokenizer.json` beside the model.
//!
//! BPE text is cut in two stages, as llama.cpp does: special tokens (`<|im_start|>`, control and
//! user-defined tokens of the vocabulary) are found first when asked for, then each plain
//! segment goes through the pre-tokenizer regexes named by `tokenizer.ggml.pre` and the BPE
//! merges. The regexes per `pre` value follow the pre-tokenizer table of llama.cpp's
//! vocabulary loader (e.g. `smollm`: digits one by one, then the GPT-2 pattern, no prefix
//! space), so token ids match llama.cpp's for the same file.

use std::collections::HashSet;
use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::SplitDelimiterBehavior;

use super::gguf::GgufFile;
use super::spm::{SentencePiece, TOKEN_CONTROL, TOKEN_USER_DEFINED};
use crate::{Error, Result};

/// GPT-2's pattern: contractions, letters, digits, other symbols, spaces.
const REGEX_GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Every digit alone.
const REGEX_DIGIT: &str = r"\p{N}";
/// Llama 3's pattern: case-insensitive contractions, numbers in groups of up to 3.
const REGEX_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's pattern: as Llama 3's with single digits.
const REGEX_QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer regexes for a `tokenizer.ggml.pre` value, applied in order.
fn pre_regexes(pre: &str) -> Option<&'static [&'static str]> {
    Some(match pre {
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            &[REGEX_DIGIT, REGEX_GPT2]
        }
        "gpt2" | "mpt" | "olmo" | "jais" | "default" => &[REGEX_GPT2],
        "llama3" | "llama-bpe" | "smaug-bpe" | "falcon3" | "pixtral" | "lfm2" => &[REGEX_LLAMA3],
        "qwen2" | "stablelm2" | "deepseek-r1-qwen" | "megrez" => &[REGEX_QWEN2],
        _ => return None,
    })
}

const SUPPORTED_PRE: &str = "smollm, starcoder, refact, command-r, codeshell, exaone, minerva, \
    gpt2, mpt, olmo, jais, llama3, llama-bpe, smaug-bpe, falcon3, pixtral, lfm2, qwen2, \
    stablelm2, deepseek-r1-qwen, megrez";

/// Token texts that end a turn when the vocabulary marks them as control tokens.
const END_OF_GENERATION: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
];

/// How a vocabulary entry maps back to bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pieces {
    /// GPT-2 byte-level alphabet: each char stands for one byte.
    ByteLevel,
    /// SentencePiece: `▁` is a space, `<0xAB>` a raw byte.
    SentencePiece,
}

/// What cuts plain text into ids.
#[derive(Clone)]
enum Engine {
    /// A `tokenizers` pipeline: GGUF byte-level BPE or a `tokenizer.json`.
    Hf(Box<tokenizers::Tokenizer>),
    /// GGUF SentencePiece, with its own special-token pass.
    Spm(SentencePiece),
}

/// A tokenizer with its special tokens and end-of-generation set.
#[derive(Clone)]
pub struct Tokenizer {
    engine: Engine,
    tokens: Vec<String>,
    /// Special tokens matched in text when asked, longest first.
    specials: Vec<(String, u32)>,
    special_ids: HashSet<u32>,
    pieces: Pieces,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    eog: Vec<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab", &self.tokens.len())
            .field("specials", &self.specials.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("eog", &self.eog)
            .finish()
    }
}

impl Tokenizer {
    /// The tokenizer of a GGUF model: `tokenizer.json` in the same folder when there is one,
    /// else the GGUF's own byte-level BPE.
    pub fn for_model(file: &GgufFile) -> Result<Self> {
        let beside = file.path.with_file_name("tokenizer.json");
        if beside.is_file() {
            return Self::from_tokenizer_json(&beside, file);
        }
        Self::from_gguf(file)
    }

    /// The tokenizer of `tokenizer.ggml.*` metadata: byte-level BPE (`gpt2`) or SentencePiece
    /// (`llama`).
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let path = &file.path;
        let model = file.string("tokenizer.ggml.model")?.unwrap_or_default();
        match model.as_str() {
            "gpt2" => Self::bpe_from_gguf(file),
            "llama" => Self::spm_from_gguf(file),
            _ => Err(Error::Unsupported {
                path: path.clone(),
                what: format!("tokenizer model {model:?} from GGUF metadata"),
                supported: "gpt2 (byte-level BPE), llama (SentencePiece); for others put the \
                            model's tokenizer.json beside the GGUF"
                    .into(),
            }),
        }
    }

    /// SentencePiece from `tokenizer.ggml.tokens`, `scores` and `token_type`.
    fn spm_from_gguf(file: &GgufFile) -> Result<Self> {
        let (tokens, types) = vocabulary(file)?;
        const SCORES: &str = "tokenizer.ggml.scores";
        let scores = file
            .floats(SCORES)?
            .ok_or_else(|| missing_key(file, SCORES))?;
        // llama.cpp's default for SentencePiece vocabularies
        let add_space_prefix = file
            .boolean("tokenizer.ggml.add_space_prefix")?
            .unwrap_or(true);
        let spm = SentencePiece::new(&file.path, &tokens, scores, &types, add_space_prefix)?;
        let specials = special_tokens(&tokens, &types);
        let ids = special_ids(file, tokens.len(), &specials)?;
        Ok(Self::assemble(
            Engine::Spm(spm),
            tokens,
            specials,
            Pieces::SentencePiece,
            ids,
        ))
    }

    /// A byte-level BPE from `tokenizer.ggml.*` metadata.
    fn bpe_from_gguf(file: &GgufFile) -> Result<Self> {
        let path = &file.path;
        let pre = file
            .string("tokenizer.ggml.pre")?
            .unwrap_or_else(|| "default".into());
        let regexes = pre_regexes(&pre).ok_or_else(|| Error::Unsupported {
            path: path.clone(),
            what: format!("pre-tokenizer {pre:?}"),
            supported: SUPPORTED_PRE.into(),
        })?;
        let (tokens, types) = vocabulary(file)?;
        const MERGES: &str = "tokenizer.ggml.merges";
        let merges = file
            .strings(MERGES)?
            .ok_or_else(|| missing_key(file, MERGES))?;
        let merges = merges
            .iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| Error::bad_input(path, format!("malformed BPE merge {m:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let vocab: tokenizers::models::bpe::Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| Error::bad_input(path, format!("cannot build the BPE: {e}")))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        let mut stages: Vec<PreTokenizerWrapper> = Vec::new();
        for re in regexes {
            let split = Split::new(
                SplitPattern::Regex(re.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| Error::Internal(format!("pre-tokenizer regex: {e}")))?;
            stages.push(split.into());
        }
        stages.push(ByteLevel::new(false, false, false).into());
        inner.with_pre_tokenizer(Some(Sequence::new(stages)));

        let specials = special_tokens(&tokens, &types);
        let ids = special_ids(file, tokens.len(), &specials)?;
        Ok(Self::assemble(
            Engine::Hf(Box::new(inner)),
            tokens,
            specials,
            Pieces::ByteLevel,
            ids,
        ))
    }

    /// A `tokenizer.json`, with the special ids and flags still taken from the GGUF.
    pub fn from_tokenizer_json(json: &Path, file: &GgufFile) -> Result<Self> {
        let parts = JsonParts::read(json)?;
        let id = |key: &str| -> Result<Option<u32>> {
            Ok(file.integer(key)?.filter(|&v| v >= 0).map(|v| v as u32))
        };
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        let eog = end_of_generation([eos, id("tokenizer.ggml.eot_token_id")?], &parts.specials);
        let add_bos = file
            .boolean("tokenizer.ggml.add_bos_token")?
            .unwrap_or(false);
        let ids = SpecialIds {
            bos,
            eos,
            add_bos,
            eog,
        };
        Ok(parts.assemble(ids))
    }

    /// A `tokenizer.json` on its own (a Hugging Face model folder without GGUF metadata): no
    /// BOS, and the end-of-generation set from the special tokens' texts (`<|im_end|>`,
    /// `<|endoftext|>`, ...); the first of them is EOS.
    pub fn from_tokenizer_json_alone(json: &Path) -> Result<Self> {
        let parts = JsonParts::read(json)?;
        let eog = end_of_generation::<0>([], &parts.specials);
        let ids = SpecialIds {
            bos: None,
            eos: eog.first().copied(),
            add_bos: false,
            eog,
        };
        Ok(parts.assemble(ids))
    }

    fn assemble(
        engine: Engine,
        tokens: Vec<String>,
        mut specials: Vec<(String, u32)>,
        pieces: Pieces,
        ids: SpecialIds,
    ) -> Self {
        specials.retain(|(t, _)| !t.is_empty());
        // longest first, so `<|im_start|>` wins over any shorter special it begins with
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let special_ids = specials.iter().map(|(_, id)| *id).collect();
        Tokenizer {
            engine,
            tokens,
            specials,
            special_ids,
            pieces,
            bos: ids.bos,
            eos: ids.eos,
            add_bos: ids.add_bos,
            eog: ids.eog,
        }
    }

    /// Token ids of `text`. `add_special` adds BOS when the model asks for it
    /// (`tokenizer.ggml.add_bos_token`); `parse_special` turns the text of special tokens
    /// (`<|im_start|>`) into those tokens instead of spelling them out.
    /// Whether [`encode`](Self::encode) of any piece of text gives the ids the model was
    /// trained on for it, wherever the piece starts (a byte-level BPE: no space is put in
    /// front), so a constraint may force the tokens of the bytes it forces.
    pub fn encodes_pieces_canonically(&self) -> bool {
        matches!(self.engine, Engine::Hf(_)) && self.pieces == Pieces::ByteLevel
    }

    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if add_special && self.add_bos {
            ids.extend(self.bos);
        }
        if let Engine::Spm(spm) = &self.engine {
            spm.encode(text, parse_special, &mut ids);
            return Ok(ids);
        }
        if !parse_special {
            self.encode_plain(text, &mut ids)?;
            return Ok(ids);
        }
        let mut rest = text;
        while !rest.is_empty() {
            match self.next_special(rest) {
                Some((at, tok, id)) => {
                    self.encode_plain(&rest[..at], &mut ids)?;
                    ids.push(id);
                    rest = &rest[at + tok.len()..];
                }
                None => {
                    self.encode_plain(rest, &mut ids)?;
                    break;
                }
            }
        }
        Ok(ids)
    }

    /// The first special token in `text`: (byte offset, text, id); the longest at a tie.
    fn next_special<'a>(&'a self, text: &str) -> Option<(usize, &'a str, u32)> {
        let mut best: Option<(usize, &str, u32)> = None;
        for (tok, id) in &self.specials {
            if let Some(at) = text.find(tok.as_str()) {
                if best.is_none_or(|(b, _, _)| at < b) {
                    best = Some((at, tok, *id));
                }
            }
        }
        best
    }

    fn encode_plain(&self, text: &str, ids: &mut Vec<u32>) -> Result<()> {
        let Engine::Hf(inner) = &self.engine else {
            return Err(Error::Internal(
                "BPE encoding on a SentencePiece tokenizer".into(),
            ));
        };
        if text.is_empty() {
            return Ok(());
        }
        let enc = inner
            .encode_fast(text, false)
            .map_err(|e| Error::Internal(format!("tokenizer: {e}")))?;
        ids.extend_from_slice(enc.get_ids());
        Ok(())
    }

    /// The bytes a token stands for (special tokens: their text).
    pub fn token_bytes(&self, id: u32) -> Vec<u8> {
        let Some(text) = self.tokens.get(id as usize) else {
            return Vec::new();
        };
        if self.special_ids.contains(&id) {
            return text.as_bytes().to_vec();
        }
        match self.pieces {
            Pieces::ByteLevel => byte_level_bytes(text),
            Pieces::SentencePiece => sentencepiece_bytes(text),
        }
    }

    /// The text of `ids` (invalid UTF-8 replaced).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| self.token_bytes(id)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The token's vocabulary entry, e.g. `Ġthe`.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Tokens that end a generation: EOS, end-of-turn and end-of-message tokens.
    pub fn end_of_generation(&self) -> &[u32] {
        &self.eog
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.contains(&id)
    }
}

/// GPT-2's map from bytes to printable chars: printable Latin-1 bytes stand for themselves,
/// the others take the chars from U+0100 on, in byte order.
fn byte_level_alphabet() -> &'static [char; 256] {
    static TABLE: std::sync::OnceLock<[char; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = ['\0'; 256];
        let mut next = 256u32;
        for (b, slot) in table.iter_mut().enumerate() {
            let printable = matches!(b, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff);
            *slot = if printable {
                char::from(b as u8)
            } else {
                let c = char::from_u32(next).expect("U+0100.. are chars");
                next += 1;
                c
            };
        }
        table
    })
}

fn byte_level_bytes(text: &str) -> Vec<u8> {
    static INVERSE: std::sync::OnceLock<std::collections::HashMap<char, u8>> =
        std::sync::OnceLock::new();
    let inverse = INVERSE.get_or_init(|| {
        byte_level_alphabet()
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect()
    });
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match inverse.get(&c) {
            Some(&b) => out.push(b),
            None => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

fn sentencepiece_bytes(text: &str) -> Vec<u8> {
    if let Some(hex) = text.strip_prefix("<0x").and_then(|t| t.strip_suffix('>')) {
        if let Ok(b) = u8::from_str_radix(hex, 16) {
            return vec![b];
        }
    }
    text.replace('\u{2581}', " ").into_bytes()
}

/// Turns a stream of token ids into text pieces that are always whole UTF-8 characters:
/// a character split across tokens is held back until its last byte arrives.
#[derive(Debug, Default)]
pub struct TextStream {
    pending: Vec<u8>,
}

impl TextStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// The text completed by `id` (possibly empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> String {
        self.pending.extend(tokenizer.token_bytes(id));
        let valid = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // an invalid sequence that no later byte can fix: flush it replaced
            Err(_) => self.pending.len(),
        };
        let text = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
        self.pending.drain(..valid);
        text
    }

    /// Whatever is still held back, replaced where invalid.
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

/// The control and user-defined tokens of a GGUF vocabulary: (text, id).
fn special_tokens(tokens: &[String], types: &[i64]) -> Vec<(String, u32)> {
    tokens
        .iter()
        .zip(types)
        .enumerate()
        .filter(|(_, (_, &ty))| ty == TOKEN_CONTROL || ty == TOKEN_USER_DEFINED)
        .map(|(i, (t, _))| (t.clone(), i as u32))
        .collect()
}

fn missing_key(file: &GgufFile, key: &str) -> Error {
    Error::bad_input(
        &file.path,
        format!("GGUF metadata has no {key}; the tokenizer cannot be built"),
    )
}

/// `tokenizer.ggml.tokens` and their `token_type`s (all normal when the types are absent).
fn vocabulary(file: &GgufFile) -> Result<(Vec<String>, Vec<i64>)> {
    const TOKENS: &str = "tokenizer.ggml.tokens";
    let tokens = file
        .strings(TOKENS)?
        .ok_or_else(|| missing_key(file, TOKENS))?;
    let types = file
        .integers("tokenizer.ggml.token_type")?
        .unwrap_or_else(|| vec![1; tokens.len()]);
    Ok((tokens, types))
}

/// What a `tokenizer.json` gives: the pipeline, the vocabulary and its special tokens.
struct JsonParts {
    inner: tokenizers::Tokenizer,
    tokens: Vec<String>,
    specials: Vec<(String, u32)>,
    pieces: Pieces,
}

impl JsonParts {
    fn read(json: &Path) -> Result<Self> {
        let mut inner = tokenizers::Tokenizer::from_file(json)
            .map_err(|e| Error::bad_input(json, format!("cannot read the tokenizer: {e}")))?;
        let size = inner.get_vocab_size(true);
        let tokens: Vec<String> = (0..size as u32)
            .map(|i| inner.id_to_token(i).unwrap_or_default())
            .collect();
        let specials: Vec<(String, u32)> = inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, t)| (t.content.clone(), *id))
            .collect();
        let pieces = if tokens.iter().any(|t| t.starts_with('Ġ')) {
            Pieces::ByteLevel
        } else {
            Pieces::SentencePiece
        };
        // the json's own post-processor would add BOS a second time
        inner.with_post_processor(None::<tokenizers::PostProcessorWrapper>);
        Ok(JsonParts {
            inner,
            tokens,
            specials,
            pieces,
        })
    }

    fn assemble(self, ids: SpecialIds) -> Tokenizer {
        Tokenizer::assemble(
            Engine::Hf(Box::new(self.inner)),
            self.tokens,
            self.specials,
            self.pieces,
            ids,
        )
    }
}

/// The special ids of a GGUF vocabulary.
struct SpecialIds {
    bos: Option<u32>,
    eos: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    add_bos: bool,
    /// End-of-generation ids (see [`end_of_generation`]).
    eog: Vec<u32>,
}

/// BOS, EOS, whether to add BOS, and the end-of-generation ids, from GGUF metadata.
fn special_ids(file: &GgufFile, vocab: usize, specials: &[(String, u32)]) -> Result<SpecialIds> {
    let id = |key: &str| -> Result<Option<u32>> {
        Ok(file
            .integer(key)?
            .filter(|&v| v >= 0 && (v as usize) < vocab)
            .map(|v| v as u32))
    };
    let bos = id("tokenizer.ggml.bos_token_id")?;
    let eos = id("tokenizer.ggml.eos_token_id")?;
    let eog = end_of_generation(
        [
            eos,
            id("tokenizer.ggml.eot_token_id")?,
            id("tokenizer.ggml.eom_token_id")?,
        ],
        specials,
    );
    let add_bos = file
        .boolean("tokenizer.ggml.add_bos_token")?
        .unwrap_or(false);
    Ok(SpecialIds {
        bos,
        eos,
        add_bos,
        eog,
    })
}

/// The end-of-generation ids: the given metadata ids that are set, then every special token
/// whose text is in [`END_OF_GENERATION`], each once.
fn end_of_generation<const N: usize>(
    ids: [Option<u32>; N],
    specials: &[(String, u32)],
) -> Vec<u32> {
    let mut eog: Vec<u32> = ids.into_iter().flatten().collect();
    for (text, id) in specials {
        if END_OF_GENERATION.contains(&text.as_str()) && !eog.contains(id) {
            eog.push(*id);
        }
    }
    eog
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_alphabet_is_a_bijection() {
        let table = byte_level_alphabet();
        let distinct: HashSet<char> = table.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[b'a' as usize], 'a');
        assert_eq!(byte_level_bytes("ĠhelloĊ"), b" hello\n");
    }

    #[test]
    fn sentencepiece_pieces() {
        assert_eq!(sentencepiece_bytes("\u{2581}the"), b" the");
        assert_eq!(sentencepiece_bytes("<0x0A>"), b"\n");
    }

    #[test]
    fn every_pre_type_regex_compiles() {
        for pre in ["smollm", "gpt2", "llama3", "qwen2"] {
            for re in pre_regexes(pre).unwrap() {
                Split::new(
                    SplitPattern::Regex(re.to_string()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .unwrap();
            }
        }
        assert!(pre_regexes("no-such-pre").is_none());
    }
}
