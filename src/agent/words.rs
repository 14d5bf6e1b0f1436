//! The words checks: what the model writes (a thought, an answer's text, an explanation) read
//! against the catalogue and the evidence, as a person would. A text passes when it
//!
//! - names no emotion other than the answer's ([`Emotion::parse`]'s spellings; a smile or a
//!   laugh is happiness);
//! - names no AU, AU name or region outside the tables (`AU99`, "Lipscorner Raiser",
//!   `r_lip_wing`);
//! - cites only AUs and frames that the observations before it showed;
//! - has no non-words: every word is English (the `english-words` list of the model store,
//!   with plain inflections: `lowers`, `raised`, `tightening`, `strongly`) or the catalogue's
//!   own vocabulary (AU names, muscles, regions).
//!
//! The verifier runs them on the answer's text ([`super::verifier::verify`]); `eval agent` and
//! `explain` count them over thoughts and texts.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::tools::FINAL_ANSWER;
use super::trace::{Step, Trace};
use crate::error::{Error, Result};
use crate::face::regions::{region, REGIONS};
use crate::facs::au::{info, AUS};
use crate::facs::emotion::Emotion;
use crate::models::ModelStore;

/// The model store's name of the English word list.
pub const WORD_LIST: &str = "english-words";

/// Words of the project's own vocabulary that a general word list lacks.
const PROJECT_WORDS: &[&str] = &[
    "au",
    "aus",
    "facs",
    "me",
    "onset",
    "apex",
    "offset",
    "micro",
    "macro",
    "blendshape",
    "mesh",
    "iod",
    "ok",
];

/// The words a text may use.
#[derive(Debug)]
pub struct Vocabulary {
    english: HashSet<String>,
    catalogue: HashSet<String>,
}

impl Vocabulary {
    /// The word list at `path` (one lower-case word a line) and the catalogue's vocabulary.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::bad_input(
                path,
                format!("cannot read the word list ({e}); run tools/setup to fetch it"),
            )
        })?;
        Ok(Self::from_words(text.lines()))
    }

    /// A vocabulary from a list of English words (and the catalogue's, always).
    pub fn from_words<'a>(english: impl IntoIterator<Item = &'a str>) -> Self {
        let english = english
            .into_iter()
            .map(|w| w.trim().to_ascii_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        let mut catalogue: HashSet<String> = HashSet::new();
        let mut add = |text: &str| {
            for w in text.split(|c: char| !c.is_ascii_alphabetic()) {
                if !w.is_empty() {
                    catalogue.insert(w.to_ascii_lowercase());
                }
            }
        };
        for a in AUS {
            add(a.name);
            add(a.muscle);
        }
        for r in REGIONS {
            add(r.name);
        }
        for e in Emotion::ALL {
            add(e.name());
        }
        PROJECT_WORDS.iter().for_each(|w| add(w));
        Vocabulary { english, catalogue }
    }

    /// The vocabulary of the model store's word list, loaded once per process (a failure is
    /// not kept: the next call tries again).
    pub fn shared() -> Result<Arc<Vocabulary>> {
        static SHARED: OnceLock<Arc<Vocabulary>> = OnceLock::new();
        if let Some(v) = SHARED.get() {
            return Ok(Arc::clone(v));
        }
        let path = ModelStore::from_env()?.require(WORD_LIST)?;
        let v = Arc::new(Vocabulary::from_file(&path)?);
        Ok(Arc::clone(SHARED.get_or_init(|| v)))
    }

    /// Whether `word` (letters only, any case) is a word: listed, in the catalogue, or a
    /// plain inflection of a listed word.
    pub fn knows(&self, word: &str) -> bool {
        let w = word.to_ascii_lowercase();
        // a contraction is a word when what it contracts is: `doesn't` (does not), `can't`,
        // `face's`, `they're`, `we'll`
        if let Some((stem, ending)) = w.split_once('\'') {
            let known = |s: &str| !s.is_empty() && !s.contains('\'') && self.knows(s);
            return match ending {
                "t" => stem
                    .strip_suffix('n')
                    .is_some_and(|s| known(s) || known(stem)),
                "s" | "re" | "ve" | "ll" | "d" | "m" => known(stem),
                _ => false,
            };
        }
        let listed = |s: &str| self.english.contains(s) || self.catalogue.contains(s);
        listed(&w) || Emotion::parse(&w).is_ok() || base_forms(&w).iter().any(|b| listed(b))
    }
}

/// The forms `word` may be an inflection of: `-s`, `-es`, `-ies`, `-ed`, `-ied`, `-ing`,
/// `-ly`, `-ily`, `-er`, `-est`, with a final `e` restored or a doubled consonant undone.
fn base_forms(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stem = |s: &str, ending: &str| {
        if let Some(b) = s.strip_suffix(ending) {
            if b.len() >= 2 {
                out.push(b.to_string());
                out.push(format!("{b}e"));
                let c = b.as_bytes();
                if c.len() >= 3 && c[c.len() - 1] == c[c.len() - 2] {
                    out.push(b[..b.len() - 1].to_string());
                }
            }
        }
    };
    for ending in ["s", "es", "ed", "ing", "ly", "er", "est", "d", "r"] {
        stem(word, ending);
    }
    for (ending, y) in [("ies", "y"), ("ied", "y"), ("ily", "y"), ("ier", "y")] {
        if let Some(b) = word.strip_suffix(ending) {
            out.push(format!("{b}{y}"));
        }
    }
    out
}

/// What a text may cite: the answer's emotion, and the AUs and frames shown before it.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The answer's emotion; `None` skips the emotion check.
    pub emotion: Option<Emotion>,
    /// AU numbers an observation (or the question) showed or named.
    pub aus: Vec<u8>,
    /// Frame numbers an observation (or the question) gave.
    pub frames: Vec<i64>,
}

impl Evidence {
    /// What the observations of `steps` (and the question) showed; a final answer's
    /// observation (the verifier's reasons) shows nothing.
    pub fn from_steps<'a>(
        question: &str,
        steps: impl IntoIterator<Item = &'a Step>,
        emotion: Option<Emotion>,
    ) -> Self {
        let mut e = Evidence {
            emotion,
            ..Default::default()
        };
        e.add_text(question);
        for s in steps.into_iter().filter(|s| s.tool.name != FINAL_ANSWER) {
            e.add_text(&s.observation.text);
            for a in s.observation.data["aus"].as_array().into_iter().flatten() {
                if let Some(n) = a["au"].as_str().and_then(au_number) {
                    e.aus.push(n);
                }
            }
        }
        e
    }

    /// Adds the AUs a text names and every whole number in it (the frames it may give).
    pub fn add_text(&mut self, text: &str) {
        for (n, _) in au_citations(text) {
            if !self.aus.contains(&n) {
                self.aus.push(n);
            }
        }
        for n in integers(text) {
            if !self.frames.contains(&n) {
                self.frames.push(n);
            }
        }
    }
}

/// One thing a text got wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// Names an emotion that is not the answer's.
    OtherEmotion { word: String },
    /// Names an AU, AU name or region that the tables do not have.
    OutsideCatalogue { what: String },
    /// Cites an AU or a frame no observation showed.
    Unsupported { what: String },
    /// A word that is in no word list.
    NonWord { word: String },
}

impl Problem {
    /// One sentence for a person.
    pub fn describe(&self) -> String {
        match self {
            Problem::OtherEmotion { word } => format!("names another emotion (\"{word}\")"),
            Problem::OutsideCatalogue { what } => format!("{what} is not in the catalogue"),
            Problem::Unsupported { what } => format!("{what} was not shown by any observation"),
            Problem::NonWord { word } => format!("\"{word}\" is not a word"),
        }
    }
}

/// The emotion a word names: a label's spelling ([`Emotion::parse`]), or a smile or a laugh,
/// which read as happiness.
fn emotion_named(word: &str) -> Option<Emotion> {
    let w = word.to_ascii_lowercase();
    match w.as_str() {
        "smile" | "smiles" | "smiling" | "smiled" | "laugh" | "laughs" | "laughing" => {
            Some(Emotion::Happiness)
        }
        _ => Emotion::parse(&w).ok(),
    }
}

/// Everything wrong with `text`, in reading order within each kind.
pub fn check(text: &str, evidence: &Evidence, vocab: &Vocabulary) -> Vec<Problem> {
    let mut out = Vec::new();
    // emotions
    if let Some(answer) = evidence.emotion {
        for (w, _) in words(text) {
            if emotion_named(w).is_some_and(|e| e != answer) {
                out.push(Problem::OtherEmotion {
                    word: w.to_string(),
                });
            }
        }
    }
    // AU codes and frames
    for (n, code) in au_citations(text) {
        if info(n).is_none() {
            out.push(Problem::OutsideCatalogue { what: code });
        } else if !evidence.aus.contains(&n) {
            out.push(Problem::Unsupported { what: code });
        }
    }
    for f in frames_cited(text) {
        if !evidence.frames.contains(&f) {
            out.push(Problem::Unsupported {
                what: format!("frame {f}"),
            });
        }
    }
    // AU names and region identifiers
    out.extend(
        au_names(text)
            .into_iter()
            .filter(|n| !catalogue_name(n))
            .map(|what| Problem::OutsideCatalogue {
                what: format!("\"{what}\""),
            }),
    );
    for id in identifiers(text) {
        if region(id).is_none() {
            out.push(Problem::OutsideCatalogue {
                what: format!("region {id}"),
            });
        }
    }
    // non-words
    for (w, _) in words(text) {
        if !vocab.knows(w) {
            out.push(Problem::NonWord {
                word: w.to_string(),
            });
        }
    }
    out
}

/// The words checks of every thought of a trace and of its answer's text: the thought at
/// step k against the observations before it, the text against all of them.
pub fn check_trace(
    question: &str,
    steps: &[Step],
    answer_emotion: Option<Emotion>,
    answer_text: Option<&str>,
    vocab: &Vocabulary,
) -> TraceWords {
    let mut out = TraceWords::default();
    for (k, s) in steps.iter().enumerate() {
        if s.thought.trim().is_empty() || s.tool.name.is_empty() {
            continue;
        }
        let ev = Evidence::from_steps(question, &steps[..k], answer_emotion);
        out.thoughts.push(check(&s.thought, &ev, vocab));
    }
    if let Some(text) = answer_text {
        let ev = Evidence::from_steps(question, steps, answer_emotion);
        out.text = Some(check(text, &ev, vocab));
    }
    let mut seen: Vec<String> = Vec::new();
    for s in steps.iter().filter(|s| !s.tool.name.is_empty()) {
        let t = s.thought.trim().to_lowercase();
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    out.distinct_thoughts = seen.len();
    out
}

/// The words checks of a trace as its model first wrote it: the thoughts up to its first
/// final answer and that answer's text, before any revision the verifier asked for.
pub fn check_first_answer(trace: &Trace, vocab: &Vocabulary) -> TraceWords {
    let first = trace
        .steps
        .iter()
        .position(|s| s.tool.name == FINAL_ANSWER)
        .map_or(trace.steps.len(), |k| k + 1);
    let steps = &trace.steps[..first];
    let args = steps
        .last()
        .filter(|s| s.tool.name == FINAL_ANSWER)
        .map(|s| &s.tool.args);
    let emotion = args
        .and_then(|a| a["emotion"].as_str())
        .and_then(|e| Emotion::parse(e).ok());
    let text = args.and_then(|a| a["text"].as_str());
    check_trace(&trace.question, steps, emotion, text, vocab)
}

/// The words checks of one trace.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TraceWords {
    /// Each thought's problems, in step order.
    pub thoughts: Vec<Vec<Problem>>,
    /// The answer text's problems.
    pub text: Option<Vec<Problem>>,
    /// Different thoughts (case and surrounding spaces aside).
    pub distinct_thoughts: usize,
}

/// Counts of problems over many texts: how many texts had each kind.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct WordsTally {
    pub texts: usize,
    pub other_emotion: usize,
    pub outside_catalogue: usize,
    pub unsupported: usize,
    pub non_words: usize,
    /// Texts with any problem.
    pub failed: usize,
}

impl WordsTally {
    pub fn add(&mut self, problems: &[Problem]) {
        let has = |f: fn(&Problem) -> bool| usize::from(problems.iter().any(f));
        self.texts += 1;
        self.other_emotion += has(|p| matches!(p, Problem::OtherEmotion { .. }));
        self.outside_catalogue += has(|p| matches!(p, Problem::OutsideCatalogue { .. }));
        self.unsupported += has(|p| matches!(p, Problem::Unsupported { .. }));
        self.non_words += has(|p| matches!(p, Problem::NonWord { .. }));
        self.failed += usize::from(!problems.is_empty());
    }

    pub fn merge(&mut self, other: &WordsTally) {
        self.texts += other.texts;
        self.other_emotion += other.other_emotion;
        self.outside_catalogue += other.outside_catalogue;
        self.unsupported += other.unsupported;
        self.non_words += other.non_words;
        self.failed += other.failed;
    }
}

/// The words of a text (letter runs) with their byte offsets; runs touching a digit
/// (`AU12`, `R12`, `2s`) or an underscore (region names) are not words.
fn words(text: &str) -> Vec<(&str, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
            // a contraction's apostrophe stays inside the word (`doesn't`, `face's`)
            if i + 1 < b.len() && b[i] == b'\'' && b[i + 1].is_ascii_alphabetic() {
                i += 1;
            }
        }
        let touches = |k: Option<&u8>| k.is_some_and(|c| c.is_ascii_digit() || *c == b'_');
        if !touches(start.checked_sub(1).and_then(|k| b.get(k))) && !touches(b.get(i)) {
            out.push((&text[start..i], start));
        }
    }
    out
}

/// The AU codes a text cites (`AU12`, `AU 12`, `au12`; one-sided `R12`/`L12` too) as numbers
/// with the code as written.
fn au_citations(text: &str) -> Vec<(u8, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let word_start = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if !word_start {
            i += 1;
            continue;
        }
        let mut j = i;
        if matches!(b[j], b'R' | b'L')
            && b.get(j + 1).is_some_and(|c| c.eq_ignore_ascii_case(&b'a'))
        {
            j += 1;
        }
        let prefixed = b.len() >= j + 2 && b[j..j + 2].eq_ignore_ascii_case(b"AU");
        if !prefixed {
            i += 1;
            continue;
        }
        j += 2;
        if b.get(j) == Some(&b' ') {
            j += 1;
        }
        let digits = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        let end = j + digits;
        if digits == 0 || digits > 3 || b.get(end).is_some_and(u8::is_ascii_digit) {
            i += 1;
            continue;
        }
        if let Ok(n) = text[j..end].parse::<u16>() {
            out.push((n.min(255) as u8, text[i..end].to_string()));
        }
        i = end;
    }
    out
}

/// Every whole number a text holds (not the parts of `0.42`).
fn integers(text: &str) -> Vec<i64> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let decimal =
            |k: Option<&u8>, l: Option<&u8>| k == Some(&b'.') && l.is_some_and(u8::is_ascii_digit);
        let after_point = start >= 2 && decimal(b.get(start - 1), b.get(start - 2));
        let before_point = decimal(b.get(i), b.get(i + 1));
        if !after_point && !before_point {
            if let Ok(n) = text[start..i].parse() {
                out.push(n);
            }
        }
    }
    out
}

/// The frames a text cites: the numbers after `frame` or `frames`, and after the `to`,
/// `and`, `through`, `until` or dash that joins a range (`frames 13-44`, `frame 10 to 14`).
fn frames_cited(text: &str) -> Vec<i64> {
    let lower = text.to_ascii_lowercase();
    let tokens: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '(' | ')'))
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = Vec::new();
    let number = |t: &str| -> Option<i64> { t.trim_end_matches(['.', '!', '?']).parse().ok() };
    let connector = |t: &str| matches!(t, "to" | "and" | "through" | "until" | "-" | "\u{2013}");
    // a number or a range `13-44`; whether it ends the sentence
    let item = |t: &str| -> Option<(Vec<i64>, bool)> {
        let end = t.ends_with(['.', '!', '?']);
        if let Some(n) = number(t) {
            return Some((vec![n], end));
        }
        let (a, b) = t.split_once(['-', '\u{2013}'])?;
        Some((vec![number(a)?, number(b)?], end))
    };
    let mut k = 0;
    while k < tokens.len() {
        if !matches!(tokens[k], "frame" | "frames") {
            k += 1;
            continue;
        }
        k += 1;
        while let Some((numbers, end)) = tokens.get(k).and_then(|t| item(t)) {
            out.extend(numbers);
            k += 1;
            // `to 14` continues the range, `to the end` does not
            if end || !tokens.get(k).is_some_and(|t| connector(t)) {
                break;
            }
            if tokens.get(k + 1).and_then(|t| item(t)).is_none() {
                break;
            }
            k += 1;
        }
    }
    out
}

/// The last words of the catalogue's AU names (`Raiser`, `Lowerer`, `Drop`, ...).
fn name_heads() -> impl Iterator<Item = &'static str> {
    AUS.iter().filter_map(|a| a.name.split(' ').next_back())
}

/// Phrases written like an AU name: a capitalised word that ends a catalogue name
/// (`Raiser`), with the capitalised words before it.
fn au_names(text: &str) -> Vec<String> {
    let ws = words(text);
    let mut out = Vec::new();
    for (k, &(w, start)) in ws.iter().enumerate() {
        let capital = |s: &str| s.starts_with(|c: char| c.is_ascii_uppercase());
        if !capital(w) || !name_heads().any(|h| h == w) {
            continue;
        }
        let mut first = k;
        while first > 0 {
            let (prev, ps) = ws[first - 1];
            // only words joined by spaces belong to the name
            let gap = &text[ps + prev.len()..ws[first].1];
            if !capital(prev) || gap != " " {
                break;
            }
            first -= 1;
        }
        out.push(text[ws[first].1..start + w.len()].to_string());
    }
    out
}

/// Whether a phrase written like an AU name is one: it ends with a catalogue name ("The
/// Brow Lowerer") or is the end of one ("Brow Raiser", "Drop").
fn catalogue_name(phrase: &str) -> bool {
    let p = phrase.to_ascii_lowercase();
    AUS.iter().any(|a| {
        let n = a.name.to_ascii_lowercase();
        p == n || p.ends_with(&format!(" {n}")) || n.ends_with(&format!(" {p}"))
    })
}

/// Snake-case identifiers (`r_mouth_corner`): what a region name looks like.
fn identifiers(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| t.contains('_') && t.chars().any(|c| c.is_ascii_alphabetic()))
        .map(|t| t.trim_matches('_'))
        .filter(|t| !t.is_empty())
        .collect()
}

/// An AU code's number (`AU12`, `R12`, `L14`).
fn au_number(code: &str) -> Option<u8> {
    code.trim_start_matches(['R', 'L'])
        .trim_start_matches("AU")
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocabulary {
        Vocabulary::from_words(
            "the brow brows lower from to frame and a with smile raise lip corner pull down \
             in german literature refers specifically which was used by is of strong slight \
             expression does can face move"
                .split(' '),
        )
    }

    fn evidence(aus: &[u8], frames: &[i64]) -> Evidence {
        Evidence {
            emotion: Some(Emotion::Sadness),
            aus: aus.to_vec(),
            frames: frames.to_vec(),
        }
    }

    #[test]
    fn a_sound_text_passes() {
        let text = "Lip Corner Depressor (AU15) pulls the lip corners down from frame 10 to 14, \
                    with the brows lowered (AU4): sadness.";
        assert_eq!(check(text, &evidence(&[4, 15], &[10, 14]), &vocab()), []);
        // the base model's thought on a sadness clip
        assert_eq!(
            check("The expression is a smile.", &evidence(&[], &[]), &vocab()),
            [Problem::OtherEmotion {
                word: "smile".into()
            }]
        );
    }

    #[test]
    fn each_kind_of_problem_is_found() {
        let ev = evidence(&[15], &[13, 44]);
        let p = check(
            "Lip Correction with Lipscorner Raiser (AU15) from frame 38 to 47: happy",
            &ev,
            &vocab(),
        );
        assert_eq!(
            p,
            [
                Problem::OtherEmotion {
                    word: "happy".into()
                },
                Problem::Unsupported {
                    what: "frame 38".into()
                },
                Problem::Unsupported {
                    what: "frame 47".into()
                },
                Problem::OutsideCatalogue {
                    what: "\"Lipscorner Raiser\"".into()
                },
                Problem::NonWord {
                    word: "Correction".into()
                },
                Problem::NonWord {
                    word: "Lipscorner".into()
                },
            ]
        );
        let p = check("AU99 and AU4 in r_lip_wing", &ev, &vocab());
        assert_eq!(
            p,
            [
                Problem::OutsideCatalogue {
                    what: "AU99".into()
                },
                Problem::Unsupported { what: "AU4".into() },
                Problem::OutsideCatalogue {
                    what: "region r_lip_wing".into()
                },
            ]
        );
        // a region of the table is fine
        assert_eq!(check("in r_mouth_corner", &ev, &vocab()), []);
    }

    #[test]
    fn inflections_and_catalogue_words_are_words() {
        let v = vocab();
        for w in [
            "lowers",
            "lowered",
            "lowering",
            "raised",
            "raising",
            "pulls",
            "strongly",
            "slightly",
            "Zygomaticus",
            "Depressor",
            "pulled",
            "smiling",
            "corners",
            "doesn't",
            "can't",
            "face's",
        ] {
            assert!(v.knows(w), "{w}");
        }
        // a contraction is one word to the checks, and a word only when what it contracts is
        assert_eq!(check("The face doesn't move.", &evidence(&[], &[]), &v), []);
        for w in [
            "Sadismus",
            "Upcorpion",
            "Lipscorner",
            "brwo",
            "brwon't",
            "face'x",
            "'s",
        ] {
            assert!(!v.knows(w), "{w}");
        }
    }

    #[test]
    fn names_written_like_aus_must_be_catalogue_names() {
        assert_eq!(
            au_names("The Brow Lowerer and Inner Brow Raiser; Lips Part, Happy Raiser."),
            [
                "The Brow Lowerer",
                "Inner Brow Raiser",
                "Lips Part",
                "Happy Raiser"
            ]
        );
        assert!(catalogue_name("The Brow Lowerer"));
        assert!(catalogue_name("Brow Raiser"));
        assert!(catalogue_name("Drop"));
        assert!(!catalogue_name("Happy Raiser"));
        // lower case is prose, not a name
        assert!(au_names("a raiser of brows").is_empty());
    }

    #[test]
    fn frames_and_numbers() {
        assert_eq!(
            frames_cited("frames 13-44, frame 10 to 14 and frame 7. 40 frames"),
            [13, 44, 10, 14, 7]
        );
        assert_eq!(integers("onset 10 apex 14, AU4 0.62 and 2"), [10, 14, 4, 2]);
        let mut ev = Evidence::default();
        ev.add_text("#1 Micro onset 10 apex 14 offset 20; AU4 Brow Lowerer 0.62");
        assert_eq!(ev.aus, [4]);
        assert_eq!(ev.frames, [1, 10, 14, 20, 4]);
        assert_eq!(
            au_citations("AU4, au 12, RAU6, L14, AU123"),
            [
                (4, "AU4".into()),
                (12, "au 12".into()),
                (6, "RAU6".into()),
                (123, "AU123".into())
            ]
        );
    }

    #[test]
    fn tallies_count_texts_not_problems() {
        let mut t = WordsTally::default();
        t.add(&[
            Problem::NonWord { word: "a".into() },
            Problem::NonWord { word: "b".into() },
        ]);
        t.add(&[]);
        assert_eq!(
            t,
            WordsTally {
                texts: 2,
                non_words: 1,
                failed: 1,
                ..Default::default()
            }
        );
    }
}
