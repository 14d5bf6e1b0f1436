//! SentencePiece tokenization from GGUF metadata (`tokenizer.ggml.model = "llama"`: Gemma,
//! Llama 2, Mistral), following the steps of llama.cpp's SPM tokenizer so that the ids match:
//!
//! 1. special tokens are cut out of the text first: user-defined tokens (Gemma's runs of
//!    spaces, tabs and newlines, HTML tags) always, control tokens (`<start_of_turn>`) only
//!    when asked; the longest token first over the whole text, then shorter ones in what is
//!    left;
//! 2. each remaining piece of text gets a leading space when `tokenizer.ggml.add_space_prefix`
//!    says so and the piece starts the text or follows a special token, and its spaces become
//!    `▁` (U+2581);
//! 3. the piece is cut into characters, and neighbouring symbols are merged while their
//!    concatenation is a vocabulary entry, the pair whose entry has the highest score first
//!    (the leftmost at a tie);
//! 4. a symbol that is no vocabulary entry falls back to its bytes, as `<0xAB>` tokens.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;

use crate::{Error, Result};

/// GGUF token types (`tokenizer.ggml.token_type`).
pub(super) const TOKEN_UNKNOWN: i64 = 2;
pub(super) const TOKEN_CONTROL: i64 = 3;
pub(super) const TOKEN_USER_DEFINED: i64 = 4;

/// A token found in the text by the first pass.
#[derive(Debug, Clone)]
struct Special {
    text: String,
    id: u32,
    /// Cut out even when special tokens are not parsed (user-defined tokens).
    always: bool,
}

/// A piece of the text after the special-token pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

/// A SentencePiece vocabulary with its scores.
#[derive(Clone)]
pub(super) struct SentencePiece {
    ids: HashMap<String, u32>,
    scores: Vec<f32>,
    /// The `<0xAB>` token of each byte.
    byte_tokens: Vec<u32>,
    /// Longest first.
    specials: Vec<Special>,
    add_space_prefix: bool,
}

impl std::fmt::Debug for SentencePiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentencePiece")
            .field("vocab", &self.scores.len())
            .field("specials", &self.specials.len())
            .field("add_space_prefix", &self.add_space_prefix)
            .finish()
    }
}

/// A run of the text during merging: bytes `start..start + len`, linked to its neighbours.
#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// Two neighbouring symbols whose concatenation is a vocabulary entry.
#[derive(Debug, Clone, Copy)]
struct Bigram {
    left: usize,
    right: usize,
    score: f32,
    /// Bytes of the concatenation, to spot a pair that a merge has since changed.
    len: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// The heap's greatest is the highest score, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl SentencePiece {
    /// The vocabulary of a GGUF file: `tokens`, their `scores` and `types`
    /// (`tokenizer.ggml.*`); `path` names the file in errors.
    pub(super) fn new(
        path: &Path,
        tokens: &[String],
        scores: Vec<f32>,
        types: &[i64],
        add_space_prefix: bool,
    ) -> Result<Self> {
        if scores.len() != tokens.len() || types.len() != tokens.len() {
            return Err(Error::bad_input(
                path,
                format!(
                    "GGUF tokenizer metadata disagree: {} tokens, {} scores, {} token types; \
                     the file is damaged, fetch it again",
                    tokens.len(),
                    scores.len(),
                    types.len()
                ),
            ));
        }
        // a text that appears twice maps to its last id, as in llama.cpp's table
        let ids: HashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let byte_tokens = (0..=255u8)
            .map(|b| {
                ids.get(&format!("<0x{b:02X}>"))
                    .or_else(|| ids.get(&char::from(b).to_string()))
                    .copied()
                    .ok_or_else(|| {
                        Error::bad_input(
                            path,
                            format!(
                                "the SentencePiece vocabulary has no byte token <0x{b:02X}>, so \
                                 text outside it cannot be encoded; the tokenizer is not a \
                                 byte-fallback one, put its tokenizer.json beside the GGUF"
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut specials: Vec<Special> = tokens
            .iter()
            .zip(types)
            .enumerate()
            .filter(|(_, (t, &ty))| {
                !t.is_empty() && matches!(ty, TOKEN_UNKNOWN | TOKEN_CONTROL | TOKEN_USER_DEFINED)
            })
            .map(|(i, (t, &ty))| Special {
                text: t.clone(),
                id: i as u32,
                always: ty == TOKEN_USER_DEFINED,
            })
            .collect();
        specials.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.id.cmp(&b.id)));
        Ok(SentencePiece {
            ids,
            scores,
            byte_tokens,
            specials,
            add_space_prefix,
        })
    }

    /// Appends the ids of `text` to `out` (no BOS); `parse_special` turns the text of control
    /// tokens into those tokens.
    pub(super) fn encode(&self, text: &str, parse_special: bool, out: &mut Vec<u32>) {
        let mut prev_special = true;
        for fragment in self.partition(text, parse_special) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Fragment::Text(t) => {
                    let mut piece = String::with_capacity(t.len() + 3);
                    if self.add_space_prefix && prev_special {
                        piece.push(' ');
                    }
                    piece.push_str(t);
                    self.encode_piece(&piece.replace(' ', "\u{2581}"), out);
                    prev_special = false;
                }
            }
        }
    }

    /// The first pass: special tokens cut out of `text`, the longest first.
    fn partition<'a>(&self, text: &'a str, parse_special: bool) -> Vec<Fragment<'a>> {
        if text.is_empty() {
            return Vec::new();
        }
        let mut fragments = vec![Fragment::Text(text)];
        let mut present = [false; 256];
        for &b in text.as_bytes() {
            present[b as usize] = true;
        }
        for special in &self.specials {
            if !(special.always || parse_special) || !present[special.text.as_bytes()[0] as usize] {
                continue;
            }
            let tok = special.text.as_str();
            let found = fragments
                .iter()
                .any(|f| matches!(f, Fragment::Text(t) if t.contains(tok)));
            if !found {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                let Fragment::Text(mut rest) = fragment else {
                    next.push(fragment);
                    continue;
                };
                while let Some(at) = rest.find(tok) {
                    if at > 0 {
                        next.push(Fragment::Text(&rest[..at]));
                    }
                    next.push(Fragment::Token(special.id));
                    rest = &rest[at + tok.len()..];
                }
                if !rest.is_empty() {
                    next.push(Fragment::Text(rest));
                }
            }
            fragments = next;
        }
        fragments
    }

    fn score_of(&self, text: &str) -> Option<f32> {
        self.ids.get(text).map(|&id| self.scores[id as usize])
    }

    /// Steps 3 and 4 on one escaped piece.
    fn encode_piece(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (i, (start, c)) in text.char_indices().enumerate() {
            let len = c.len_utf8();
            symbols.push(Symbol {
                start,
                len,
                prev: i.checked_sub(1),
                next: (start + len < text.len()).then_some(i + 1),
            });
        }
        let mut queue = BinaryHeap::new();
        // which two symbols formed each merged text, for splitting it back
        let mut merged_from: HashMap<&str, (usize, usize)> = HashMap::new();
        let mut try_pair = |symbols: &[Symbol],
                            queue: &mut BinaryHeap<Bigram>,
                            left: Option<usize>,
                            right: Option<usize>| {
            let (Some(left), Some(right)) = (left, right) else {
                return;
            };
            let (l, r) = (symbols[left], symbols[right]);
            let pair = &text[l.start..l.start + l.len + r.len];
            if let Some(score) = self.score_of(pair) {
                queue.push(Bigram {
                    left,
                    right,
                    score,
                    len: pair.len(),
                });
                merged_from.insert(pair, (left, right));
            }
        };
        for i in 1..symbols.len() {
            try_pair(&symbols, &mut queue, Some(i - 1), Some(i));
        }
        while let Some(pair) = queue.pop() {
            let (l, r) = (symbols[pair.left], symbols[pair.right]);
            // a symbol of the pair was merged into another since the pair was queued
            if l.len == 0 || r.len == 0 || l.len + r.len != pair.len {
                continue;
            }
            symbols[pair.left].len += r.len;
            symbols[pair.right].len = 0;
            symbols[pair.left].next = r.next;
            if let Some(n) = r.next {
                symbols[n].prev = Some(pair.left);
            }
            let prev = symbols[pair.left].prev;
            let next = symbols[pair.left].next;
            try_pair(&symbols, &mut queue, prev, Some(pair.left));
            try_pair(&symbols, &mut queue, Some(pair.left), next);
        }
        let mut at = Some(0);
        while let Some(i) = at {
            self.resegment(text, &symbols, &merged_from, i, out);
            at = symbols[i].next;
        }
    }

    /// The ids of one final symbol: its entry, else the two symbols it was merged from,
    /// else its bytes.
    fn resegment(
        &self,
        text: &str,
        symbols: &[Symbol],
        merged_from: &HashMap<&str, (usize, usize)>,
        i: usize,
        out: &mut Vec<u32>,
    ) {
        let s = symbols[i];
        let piece = &text[s.start..s.start + s.len];
        if let Some(&id) = self.ids.get(piece) {
            out.push(id);
            return;
        }
        match merged_from.get(piece) {
            Some(&(l, r)) => {
                self.resegment(text, symbols, merged_from, l, out);
                self.resegment(text, symbols, merged_from, r, out);
            }
            None => out.extend(piece.bytes().map(|b| self.byte_tokens[b as usize])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small vocabulary: bytes, letters, a few merges, a control and a user-defined token.
    fn vocab(add_space_prefix: bool) -> SentencePiece {
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "<ctl>".into()];
        let mut types = vec![TOKEN_CONTROL, TOKEN_CONTROL, TOKEN_CONTROL];
        tokens.push("<b>".into());
        types.push(TOKEN_USER_DEFINED);
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
        }
        let normal = ["▁", "a", "b", "c", "d", "ab", "bc", "▁a", "▁ab", "bcd"];
        // higher scores merge first: "bc" before "ab"
        let score = |t: &str| match t {
            "bc" => -1.0,
            "ab" => -2.0,
            "▁a" => -3.0,
            "bcd" => -4.0,
            "▁ab" => -5.0,
            _ => -10.0,
        };
        let mut scores = vec![0.0; tokens.len()];
        for t in normal {
            tokens.push(t.into());
            types.push(1);
            scores.push(score(t));
        }
        SentencePiece::new(
            Path::new("t.gguf"),
            &tokens,
            scores,
            &types,
            add_space_prefix,
        )
        .unwrap()
    }

    fn ids_of(spm: &SentencePiece, text: &str, special: bool) -> Vec<String> {
        let mut out = Vec::new();
        spm.encode(text, special, &mut out);
        let names: HashMap<u32, &String> = spm.ids.iter().map(|(t, &i)| (i, t)).collect();
        out.iter().map(|i| names[i].clone()).collect()
    }

    #[test]
    fn merges_by_score() {
        let spm = vocab(false);
        // "bc" (-1) merges before "ab" (-2), which then no longer has its "b"
        assert_eq!(ids_of(&spm, "abc", false), ["a", "bc"]);
        assert_eq!(ids_of(&spm, "ab", false), ["ab"]);
        // merged symbols merge again: bc + d
        assert_eq!(ids_of(&spm, "abcd", false), ["a", "bcd"]);
        // a space is ▁; "▁a" (-3) then "▁ab" (-5)
        assert_eq!(ids_of(&spm, " ab", false), ["▁ab"]);
    }

    #[test]
    fn space_prefix_and_byte_fallback() {
        let spm = vocab(true);
        assert_eq!(ids_of(&spm, "ab", false), ["▁ab"]);
        // é is not in the vocabulary: its two UTF-8 bytes
        assert_eq!(ids_of(&spm, "é", false), ["▁", "<0xC3>", "<0xA9>"]);
    }

    #[test]
    fn special_tokens() {
        let spm = vocab(false);
        // user-defined always, control only when parsed
        assert_eq!(ids_of(&spm, "a<b>c", false), ["a", "<b>", "c"]);
        assert_eq!(
            ids_of(&spm, "a<ctl>", false),
            ["a", "<0x3C>", "c", "<0x74>", "<0x6C>", "<0x3E>"]
        );
        assert_eq!(ids_of(&spm, "a<ctl>b", true), ["a", "<ctl>", "b"]);
        assert!(ids_of(&spm, "", true).is_empty());
        // with a space prefix, text after a special token gets one again
        let spm = vocab(true);
        assert_eq!(ids_of(&spm, "a<b>a", false), ["▁a", "<b>", "▁a"]);
    }
}
