//! The agent's tools: thin calls into the library on one frame of the input, each with a
//! JSON schema built from the library's own tables (regions, AU catalogue, emotion labels).
//!
//! A tool never touches a path the model names: crops are written under the trace directory
//! with names the toolbox makes, and regions are looked up in the region table.

use std::path::PathBuf;

use serde_json::{json, Value};

use super::phrasing::{self, Cited, Pattern, When};
use super::trace::{Observation, ToolCall};
use crate::error::Result;
use crate::evidence::{AppearanceModels, FaceAppearance};
use crate::face::regions::{Level, REGIONS};
use crate::face::zoom::{zoom_region, DEFAULT_ZOOM_WIDTH};
use crate::facs::au::AUS;
use crate::facs::emotion::{Emotion, ACCOMPANYING};
use crate::facs::inference::Inference;
use crate::media::RgbImage;

pub use super::clip_tools::ClipMotion;

/// The tool that ends a run.
pub const FINAL_ANSWER: &str = "final_answer";

/// The tools the model may call, in the order the prompt lists them.
pub const TOOLS: &[(&str, &str)] = &[
    (
        "detect_face",
        "find the faces in the frame: box, head pose, how many",
    ),
    (
        "align_face",
        "the subject's face rotated upright (eyes level) and scaled into a square crop, as \
         the appearance and motion tools see it",
    ),
    (
        "zoom",
        "enlarge one facial region of the subject and read the AUs that show there",
    ),
    (
        "au_evidence",
        "the AUs present with intensity, side and cue: source appearance (the frame) or motion \
         (clips: each spotted expression, onset to apex)",
    ),
    (
        "spot_expressions",
        "clips only: find the expressions in time (onset, apex, offset; micro or macro)",
    ),
    (
        "optical_flow",
        "clips only, after spotting: the facial motion from an onset to an apex frame (head \
         motion removed), the regions that moved and the AUs it shows, with a colour map",
    ),
    (
        "classify_expression",
        "the expression classifier's emotion distribution and the emotions the AUs match",
    ),
    (
        FINAL_ANSWER,
        "answer: the emotion and the AUs that the observations support",
    ),
];

/// Region names the `zoom` tool takes: the fine and coarse regions of the region table.
pub fn zoom_regions() -> Vec<&'static str> {
    REGIONS
        .iter()
        .filter(|r| r.level != Level::Roi)
        .map(|r| r.name)
        .collect()
}

/// What the motion tools may be asked on a clip: the spotted intervals' onsets and apexes
/// (optical_flow is offered once there are some) and the flow methods.
#[derive(Debug, Clone, Default)]
pub struct ClipChoices {
    pub spots: Vec<(usize, usize)>,
    pub methods: Vec<String>,
}

/// What a final answer may say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerChoices {
    /// The AUs the observations so far showed present (`AU12`), so a claim always has a step
    /// to cite.
    pub aus: Vec<String>,
    /// The emotions it may name, each only where `aus` can fit it; empty: every emotion
    /// that `aus` can fit.
    pub emotions: Vec<Emotion>,
    /// The numbers the question and the observations so far gave (`11`, `0.42`, the `26` of
    /// `AU26`): a thought or an answer text writes no other, so every frame it cites was
    /// shown. `None`: any number (the reference schema).
    pub numbers: Option<Vec<String>>,
    /// What the text of an answer is written from: the intensities shown and the main
    /// spotted expression. With it, each branch's text is one of the texts
    /// [`phrasing::answer_text`] writes for its cited AUs; `None`: any text that cites them
    /// by name (the reference schema).
    pub text: Option<TextFacts>,
    /// Steps whose thought is one of a fixed few (tool, thoughts), where the evidence leaves
    /// nothing to reason about (a clip where nothing was spotted): the teacher's own words.
    pub thoughts: Vec<(String, Vec<String>)>,
    /// The final answer's AU lists, each with the thoughts that claim it (list, thoughts):
    /// each list is offered with its own thoughts, so the thought before an answer names the
    /// AUs the answer claims. Empty: the answer's thought is free (or in `thoughts`).
    pub claims: Vec<(Vec<String>, Vec<String>)>,
}

/// The facts of an answer's text besides its AUs ([`AnswerChoices::text`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextFacts {
    /// The intensity shown for each of [`AnswerChoices::aus`], as observations write it.
    pub intensities: Vec<f32>,
    /// The main spotted expression, on a clip where one was spotted.
    pub spot: Option<When>,
}

/// The numbers a text gives, as written (`11`, `0.42`): what a later thought may repeat.
pub fn numbers_in(text: &str) -> impl Iterator<Item = &str> {
    static NUMBER: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    NUMBER
        .get_or_init(|| regex::Regex::new(r"[0-9]+(?:\.[0-9]+)?").expect("a valid pattern"))
        .find_iter(text)
        .map(|m| m.as_str())
}

/// A pattern for one line of free text whose numbers are only `numbers` (each whole: after
/// one, no digit follows), made of `plain` (a character class without digits) and `extra`
/// (alternatives that hold their own digits, such as `Jaw Drop \(AU26\)`).
/// With `numbers` `None`, digits are free.
fn with_numbers(plain: &str, extra: &[String], numbers: Option<&[String]>) -> String {
    let mut atoms: Vec<String> = vec![plain.to_string()];
    atoms.extend(extra.iter().cloned());
    let Some(numbers) = numbers else {
        atoms.push("[0-9]".into());
        return format!("(?:{})*", atoms.join("|"));
    };
    let mut escaped: Vec<String> = numbers.iter().map(|n| regex::escape(n)).collect();
    escaped.sort();
    escaped.dedup();
    if escaped.is_empty() {
        return format!("(?:{})*", atoms.join("|"));
    }
    let atom = atoms.join("|");
    let number = escaped.join("|");
    format!("(?:{atom}|(?:{number})(?:{atom}))*(?:{number})?")
}

/// The pattern of a step's thought: one line, numbers only those shown
/// ([`AnswerChoices::numbers`]).
/// With `numbers` given, an AU is written only as a code of `aus` (`AU4`, or `R4`/`L4` for one
/// side), or as that code after its catalogue name (`Brow Lowerer (AU4)`; brackets hold nothing else), and a number
/// never follows a letter, so no code is made up of a word and a number.
fn thought_pattern(numbers: Option<&[String]>, aus: &[String]) -> String {
    let Some(numbers) = numbers else {
        return format!("^{}$", with_numbers("[^0-9\\n]", &[], None));
    };
    let mut word = vec!["[A-Za-z]".to_string()];
    for code in aus {
        let Some(name) = au_number(code)
            .and_then(crate::facs::au::info)
            .map(|a| a.name)
        else {
            continue;
        };
        // as observations write it: `AU7`, or `R7`/`L7` when one side moved
        let number = code.trim_start_matches("AU");
        let code = format!("(?:AU|R|L){}", regex::escape(number));
        word.push(format!("{} \\({code}\\)", regex::escape(name)));
        word.push(code);
    }
    let word = format!("(?:{})", word.join("|"));
    let mut escaped: Vec<String> = numbers.iter().map(|n| regex::escape(n)).collect();
    escaped.sort();
    escaped.dedup();
    let number = if escaped.is_empty() {
        String::new()
    } else {
        format!("(?:{})?", escaped.join("|"))
    };
    // words and numbers, each number after a separator (or first), each word run ended by one
    let separator = "[^0-9A-Za-z()\\n]";
    format!("^(?:{number}{word}*{separator})*{number}{word}*$")
}

/// The emotions that some of `aus` can fit ([`Emotion::compatible_with`]): those with a
/// prototype AU among them (a part of the prototype fits), neutral never.
pub fn fitting_emotions(aus: &[String]) -> Vec<Emotion> {
    let numbers: Vec<u8> = aus.iter().filter_map(|c| au_number(c)).collect();
    Emotion::ALL
        .into_iter()
        .filter(|e| e.prototype().iter().any(|n| numbers.contains(n)))
        .collect()
}

/// The AU number of a code (`AU12` -> 12).
fn au_number(code: &str) -> Option<u8> {
    crate::facs::au::AuCode::parse(code).ok().map(|c| c.number)
}

/// The JSON Schema of one step: `{"tool", "thought", "args"}`, one variant per tool in
/// `tools`, each with its own arguments. The tool comes first, so the thought says why that
/// tool (the loop may leave only one, e.g. optical_flow after a weak motion reading). The final answer keeps to `answer`: its AUs among
/// the shown ones, its emotion among the allowed ones, each emotion with an AU list that fits
/// it by the compatibility rule ([`answer_args`]).
/// `clip`: on a clip, what the motion tools may read (au_evidence's motion source, and
/// optical_flow between spotted frames); `None` for an image. `used`: the calls made so far;
/// the tools are deterministic, so a call made before is not offered again (a zoom region, an
/// au_evidence source, a tool without arguments), and when nothing is left the final answer
/// is.
pub fn step_schema(
    tools: &[&str],
    answer: &AnswerChoices,
    clip: Option<&ClipChoices>,
    used: &[ToolCall],
) -> Value {
    let motion = clip.is_some();
    let was_used = |tool: &str, key: &str, value: &str| {
        used.iter()
            .any(|c| c.name == tool && (key.is_empty() || c.args[key] == value))
    };
    // on a clip whose motion was read, the frame's appearance no longer counts for the answer
    // (`run::answer_steps`), so the tools that read it are not offered
    let motion_read =
        was_used("au_evidence", "source", "motion") || was_used("optical_flow", "", "");
    let regions: Vec<&str> = zoom_regions()
        .into_iter()
        .filter(|r| !was_used("zoom", "region", r) && !motion_read)
        .collect();
    let sources: Vec<&str> = ["appearance", "motion"][..if motion { 2 } else { 1 }]
        .iter()
        .copied()
        .filter(|s| !was_used("au_evidence", "source", s))
        .filter(|s| !(motion_read && *s == "appearance"))
        .collect();
    let open = |tool: &str| match tool {
        "zoom" => !regions.is_empty(),
        "au_evidence" => !sources.is_empty(),
        "spot_expressions" => motion && !was_used(tool, "", ""),
        "optical_flow" => clip.is_some_and(|c| !c.spots.is_empty()),
        FINAL_ANSWER => true,
        _ => !was_used(tool, "", ""),
    };
    let mut tools: Vec<&str> = tools.iter().copied().filter(|t| open(t)).collect();
    if tools.is_empty() {
        tools.push(FINAL_ANSWER);
    }
    let args = |tool: &str| match tool {
        "zoom" => json!({
            "type": "object",
            "properties": {"region": {"type": "string", "enum": regions}},
            "required": ["region"],
            "additionalProperties": false
        }),
        "optical_flow" => {
            let c = clip.cloned().unwrap_or_default();
            let mut onsets: Vec<usize> = c.spots.iter().map(|s| s.0).collect();
            let mut apexes: Vec<usize> = c.spots.iter().map(|s| s.1).collect();
            onsets.sort_unstable();
            onsets.dedup();
            apexes.sort_unstable();
            apexes.dedup();
            json!({
                "type": "object",
                "properties": {
                    "onset": {"type": "integer", "enum": onsets},
                    "apex": {"type": "integer", "enum": apexes},
                    "method": {"type": "string", "enum": c.methods}
                },
                "required": ["onset", "apex", "method"],
                "additionalProperties": false
            })
        }
        "au_evidence" => {
            json!({
                "type": "object",
                "properties": {"source": {"type": "string", "enum": sources}},
                "required": ["source"],
                "additionalProperties": false
            })
        }
        FINAL_ANSWER => answer_args(answer, None),
        _ => json!({"type": "object", "properties": {}, "additionalProperties": false}),
    };
    let thought = json!({
        "type": "string",
        "maxLength": 160,
        "pattern": thought_pattern(answer.numbers.as_deref(), &answer.aus),
    });
    let one_of = |fixed: &[String]| {
        let one: Vec<String> = fixed.iter().map(|t| regex::escape(t)).collect();
        json!({"type": "string", "pattern": format!("^(?:{})$", one.join("|"))})
    };
    let variant = |name: &str, thought: Value, args: Value| {
        json!({
            "type": "object",
            "properties": {"tool": {"const": name}, "thought": thought, "args": args},
            "required": ["tool", "thought", "args"],
            "additionalProperties": false
        })
    };
    let mut variants: Vec<Value> = Vec::new();
    for (name, _) in TOOLS.iter().filter(|(name, _)| tools.contains(name)) {
        if *name == FINAL_ANSWER && !answer.claims.is_empty() {
            // one variant per AU list, its thought naming that list
            for (list, fixed) in &answer.claims {
                variants.push(variant(
                    name,
                    one_of(fixed),
                    answer_args(answer, Some(list)),
                ));
            }
            continue;
        }
        let thought = match answer.thoughts.iter().find(|(t, _)| t == name) {
            Some((_, fixed)) => one_of(fixed),
            None => thought.clone(),
        };
        variants.push(variant(name, thought, args(name)));
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "one agent step: a thought and a tool call",
        "anyOf": variants
    })
}

/// One emotion a final answer may name and the AU lists it accepts ([`answer_branches`]):
/// every shown AU of its prototype first (`head`, in any order), then any of `rest`, at most
/// `max_items` AUs in all.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerBranch {
    pub emotion: Emotion,
    pub head: Vec<String>,
    pub rest: Vec<String>,
    pub max_items: usize,
}

impl AnswerBranch {
    /// Whether this branch accepts `aus` as an answer's AU list.
    pub fn accepts(&self, aus: &[String]) -> bool {
        aus.len() >= self.head.len()
            && aus.len() <= self.max_items
            && self.head.iter().all(|h| aus[..self.head.len()].contains(h))
            && aus[self.head.len()..]
                .iter()
                .all(|a| self.rest.contains(a) && !self.head.contains(a))
            && (1..aus.len()).all(|k| !aus[..k].contains(&aus[k]))
    }

    /// The lists an answer of this branch claims in the order shown: the head, then each
    /// subset of the other AUs of `rest` in their order, the fewest first; at most `most`.
    pub fn lists(&self, most: usize) -> Vec<Vec<String>> {
        let others: Vec<&String> = self
            .rest
            .iter()
            .filter(|c| !self.head.contains(c))
            .collect();
        let room = self.max_items.saturating_sub(self.head.len());
        let mut masks: Vec<u64> = (0..1u64 << others.len().min(20))
            .filter(|m| m.count_ones() as usize <= room)
            .collect();
        masks.sort_by_key(|m| m.count_ones());
        masks
            .into_iter()
            .take(most)
            .map(|m| {
                let mut list = self.head.clone();
                list.extend(
                    (0..others.len())
                        .filter(|k| m & (1 << k) != 0)
                        .map(|k| others[k].clone()),
                );
                list
            })
            .collect()
    }
}

/// What a final answer may claim: for each allowed emotion that some of the shown AUs can fit
/// ([`fitting_emotions`]), AU lists that fit it by the compatibility rule and claim every
/// shown AU of its prototype, first; then, where those are half of the prototype, any other
/// shown AU, and where they are only a part of it, only the AUs that go with any expression
/// ([`ACCOMPANYING`]). So the emotion and the AUs of an answer always agree: "happiness"
/// cites the AU6 and AU12 shown, and "disgust" with AU9 alone cannot add AU12. Empty when no
/// allowed emotion fits (the answer is then neutral with no AUs).
pub fn answer_branches(answer: &AnswerChoices) -> Vec<AnswerBranch> {
    let shown = &answer.aus;
    let among = |set: &[u8]| -> Vec<String> {
        shown
            .iter()
            .filter(|c| au_number(c).is_some_and(|n| set.contains(&n)))
            .cloned()
            .collect()
    };
    let fit = fitting_emotions(shown);
    let allowed: Vec<Emotion> = if answer.emotions.is_empty() {
        fit
    } else {
        answer
            .emotions
            .iter()
            .copied()
            .filter(|e| fit.contains(e))
            .collect()
    };
    allowed
        .into_iter()
        .map(|emotion| {
            let proto = emotion.prototype();
            let head = among(proto);
            let rest: Vec<String> = if 2 * head.len() >= proto.len() {
                shown.clone()
            } else {
                head.iter().cloned().chain(among(ACCOMPANYING)).collect()
            };
            // no larger than the choices: after the last unused AU no comma may follow (a
            // comma there would leave only repeats, which uniqueItems forbids)
            let max_items = rest.len().min(6).max(head.len());
            AnswerBranch {
                emotion,
                head,
                rest,
                max_items,
            }
        })
        .collect()
}

/// The final answer's arguments: one branch per [`answer_branches`] (a neutral answer with no
/// AUs when there is none), each AU list as the branch accepts it, or only `claimed` (the
/// branches that accept it, each with that list alone).
fn answer_args(answer: &AnswerChoices, claimed: Option<&[String]>) -> Value {
    let branch = |emotion: Emotion, aus: Value, cited: &[String]| {
        let cited: Vec<&String> = cited.iter().collect();
        // the exact pattern holds finitely many texts, so it bounds the length itself (a
        // maxLength beside it is more than llguidance can intersect)
        let text = match &answer.text {
            Some(facts) => json!({
                "type": "string",
                "pattern": exact_text_pattern(emotion, &cited, &answer.aus, facts),
            }),
            None => json!({
                "type": "string",
                "maxLength": phrasing::ANSWER_CHARS,
                "pattern": text_pattern(&cited, &cited, answer.numbers.as_deref()),
            }),
        };
        json!({
            "type": "object",
            "properties": {"emotion": {"const": emotion.name()}, "aus": aus, "text": text},
            "required": ["emotion", "aus", "text"],
            "additionalProperties": false
        })
    };
    let mut branches: Vec<Value> = Vec::new();
    for b in answer_branches(answer) {
        // the text cites only the AUs every list of the branch claims (its head): a text and
        // a list that chose separately could disagree ("AU25 cited but not claimed")
        let aus = match claimed {
            Some(list) if b.accepts(list) => json!({"const": list}),
            Some(_) => continue,
            None => json!({
                "type": "array",
                "prefixItems": vec![json!({"type": "string", "enum": b.head}); b.head.len()],
                "items": {"type": "string", "enum": b.rest},
                "minItems": b.head.len(),
                "maxItems": b.max_items,
                "uniqueItems": true
            }),
        };
        branches.push(branch(b.emotion, aus, &b.head));
    }
    if branches.is_empty() && claimed.is_none_or(|l| l.is_empty()) {
        branches.push(branch(
            Emotion::Neutral,
            json!({"type": "array", "maxItems": 0}),
            &[],
        ));
    }
    json!({"anyOf": branches})
}

/// A pattern for an answer text: one line that opens by citing one of `opening` as the prompt
/// teaches (`Brow Lowerer (AU4)...`), and whose brackets hold only codes of `cited`, each
/// right after its own catalogue name (`Lid Tightener (AU7)`). The answer's schema gives both
/// as the AUs it claims whatever else it lists (its emotion's prototype AUs shown), so every
/// citation is true: the text never cites an AU the answer does not claim, no observation
/// showed or its emotion cannot go with, nor gives an AU another's name. Its numbers are only
/// `numbers` ([`AnswerChoices::numbers`]): a frame it gives is one an observation gave.
/// Without an opening (a neutral answer, no AUs) the text has no brackets: it cites no AU.
fn text_pattern(opening: &[&String], cited: &[&String], numbers: Option<&[String]>) -> String {
    let named = |codes: &[&String]| -> Vec<String> {
        codes
            .iter()
            .filter_map(|c| {
                let name = crate::facs::au::info(au_number(c)?)?.name;
                Some(format!(
                    "{} \\({}\\)",
                    regex::escape(name),
                    regex::escape(c)
                ))
            })
            .collect()
    };
    if opening.is_empty() {
        return format!("^{}$", with_numbers("[A-Za-z ,.;:'-]", &[], numbers));
    }
    let rest = with_numbers("[^()\\n0-9]", &named(cited), numbers);
    format!("^(?:{}){rest}$", named(opening).join("|"))
}

/// The pattern of a branch's text given its facts: one of the texts the teacher writes
/// ([`phrasing::answer_text`]) citing `cited` (its emotion's prototype AUs shown, in the
/// order shown) with their intensities, so the name, action, frames, intensity word and
/// emotion of the text are the evidence's.
fn exact_text_pattern(
    emotion: Emotion,
    cited: &[&String],
    shown: &[String],
    facts: &TextFacts,
) -> String {
    let cited: Vec<Cited> = cited
        .iter()
        .filter_map(|c| {
            let k = shown.iter().position(|s| s == *c)?;
            Some(Cited {
                code: c.to_string(),
                number: au_number(c)?,
                intensity: facts.intensities.get(k).copied().unwrap_or(0.0),
            })
        })
        .collect();
    format!(
        "^{}$",
        phrasing::answer_text(&mut Pattern, emotion, &cited, facts.spot)
    )
}

/// Where the reference schema lives (`prompts/tools.schema.json`, relative to the repository).
pub const REFERENCE_SCHEMA_FILE: &str = "prompts/tools.schema.json";

/// The step schema with every tool and every choice open: each region, both AU sources, any
/// onset and apex frame, every flow method, every AU of the catalogue and every emotion. A run
/// constrains each step to a subset of it ([`step_schema`]); this is the file
/// `prompts/tools.schema.json` holds, kept equal to the code by a test.
pub fn reference_schema() -> Value {
    let tools: Vec<&str> = TOOLS.iter().map(|t| t.0).collect();
    // optical_flow is offered once spotting found something, its frames then limited to the
    // spotted ones; one stand-in interval opens it, and its frames become any frame below.
    let clip = ClipChoices {
        spots: vec![(0, 1)],
        methods: crate::flow::method::METHODS
            .iter()
            .map(|m| m.to_string())
            .collect(),
    };
    let answer = AnswerChoices {
        aus: all_aus(),
        emotions: vec![],
        numbers: None,
        text: None,
        thoughts: Vec::new(),
        claims: Vec::new(),
    };
    let mut schema = step_schema(&tools, &answer, Some(&clip), &[]);
    let frame = json!({"type": "integer", "minimum": 0});
    for v in schema["anyOf"].as_array_mut().into_iter().flatten() {
        if v["properties"]["tool"]["const"] == "optical_flow" {
            let args = &mut v["properties"]["args"]["properties"];
            args["onset"] = frame.clone();
            args["apex"] = frame.clone();
        }
    }
    schema["title"] = json!("one agent step: a thought and a tool call (every tool and choice)");
    schema
}

/// Every AU code (`AU12`) of the catalogue.
pub fn all_aus() -> Vec<String> {
    AUS.iter().map(|a| format!("AU{}", a.number)).collect()
}

/// The tools over one frame of the input (and, for a clip, its motion), each analysis
/// computed once.
pub struct Toolbox<'a> {
    pub(super) models: &'a AppearanceModels,
    image: RgbImage,
    pub(super) clip: Option<ClipMotion>,
    /// Where crops go; `None` keeps them in memory only.
    pub(super) artifacts: Option<PathBuf>,
    faces: Option<Vec<FaceAppearance>>,
    /// Seconds spent in the library (perception).
    pub seconds: f64,
}

impl<'a> Toolbox<'a> {
    pub fn new(models: &'a AppearanceModels, image: RgbImage, artifacts: Option<PathBuf>) -> Self {
        Toolbox {
            models,
            image,
            clip: None,
            artifacts,
            faces: None,
            seconds: 0.0,
        }
    }

    /// Adds the motion tools over `clip`.
    pub fn with_clip(mut self, clip: ClipMotion) -> Self {
        self.clip = Some(clip);
        self
    }

    /// Seconds of optical flow so far (part of [`Self::seconds`]).
    pub fn flow_seconds(&self) -> f64 {
        self.clip.as_ref().map_or(0.0, |c| c.flow_seconds())
    }

    /// Where an artifact named in an observation lies; `None` when artifacts stay in memory
    /// or the file is missing.
    pub fn artifact_path(&self, name: &str) -> Option<PathBuf> {
        let path = self.artifacts.as_ref()?.join(name);
        path.is_file().then_some(path)
    }

    /// Whether the motion tools are on.
    pub fn has_clip(&self) -> bool {
        self.clip.is_some()
    }

    /// On a clip, what the motion tools may be asked now.
    pub fn clip_choices(&self) -> Option<ClipChoices> {
        let clip = self.clip.as_ref()?;
        let spots = clip.spotted.as_ref().map_or(vec![], |s| {
            s.spotting.spots.iter().map(|s| (s.onset, s.apex)).collect()
        });
        Some(ClipChoices {
            spots,
            methods: clip.methods(),
        })
    }

    /// The spotted intervals, once spot_expressions (or motion evidence) ran.
    pub fn intervals(&self) -> Vec<[usize; 3]> {
        let spots = self.clip.as_ref().and_then(|c| c.spotted.as_ref());
        spots.map_or(vec![], |s| {
            s.spotting
                .spots
                .iter()
                .map(|s| [s.onset, s.apex, s.offset])
                .collect()
        })
    }

    /// The faces of the frame, largest first (computed on first use).
    pub fn faces(&mut self) -> Result<&[FaceAppearance]> {
        if self.faces.is_none() {
            let start = std::time::Instant::now();
            let faces = self.models.analyse(&self.image)?;
            if let (Some(dir), Some(subject)) = (&self.artifacts, faces.first()) {
                // The frame the tools read, with the subject's box, for the report.
                let marks = crate::face::draw::FaceMarks {
                    bbox: Some(subject.face.bbox),
                    label: Some("subject".into()),
                    landmarks68: &subject.face.landmarks68,
                    ..Default::default()
                };
                let drawn = crate::face::draw::draw_faces(&self.image, &[marks])?;
                std::fs::create_dir_all(dir)
                    .map_err(|e| crate::Error::io(dir.display().to_string(), e))?;
                crate::media::write_image(&dir.join(super::trace::FRAME), &drawn)?;
            }
            self.seconds += start.elapsed().as_secs_f64();
            self.faces = Some(faces);
        }
        Ok(self.faces.as_deref().unwrap_or_default())
    }

    /// Runs tool `name` for step `step`. A refusal (unknown tool, bad argument, no face) is an
    /// observation with `error` set, for the model to read; only a failure of the library
    /// itself is an `Err`.
    pub fn call(&mut self, step: usize, name: &str, args: &Value) -> Result<Observation> {
        let start = std::time::Instant::now();
        let out = self.call_inner(step, name, args);
        self.seconds += start.elapsed().as_secs_f64();
        out
    }

    fn call_inner(&mut self, step: usize, name: &str, args: &Value) -> Result<Observation> {
        if name == "detect_face" {
            return self.detect_face();
        }
        if !TOOLS.iter().any(|(t, _)| *t == name) || name == FINAL_ANSWER {
            return Ok(refusal(format!(
                "there is no tool {name:?}; the tools are {}",
                TOOLS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
            )));
        }
        if self.faces()?.is_empty() {
            return Ok(refusal("no face was found in the frame".into()));
        }
        match name {
            "align_face" => self.align_face(step),
            "zoom" => self.zoom(step, args),
            "au_evidence" if args["source"] == "motion" => self.motion_evidence(),
            "au_evidence" => Ok(self.au_evidence()),
            "spot_expressions" => self.spot(step),
            "optical_flow" => self.optical_flow(step, args),
            _ => Ok(self.classify()),
        }
    }

    /// The subject's box `[x0, y0, x1, y1]`, once the faces were analysed.
    pub fn subject_box(&self) -> Option<[f32; 4]> {
        let b = &self.faces.as_ref()?.first()?.face.bbox;
        Some([b.x0, b.y0, b.x1, b.y1])
    }

    fn subject(&self) -> &FaceAppearance {
        &self.faces.as_ref().expect("analysed before")[0]
    }

    fn detect_face(&mut self) -> Result<Observation> {
        let faces = self.faces()?;
        if faces.is_empty() {
            return Ok(refusal("no face was found in the frame".into()));
        }
        let f = &faces[0].face;
        let b = &f.bbox;
        let text = format!(
            "{} face(s); the subject is the largest: box ({:.0}, {:.0})-({:.0}, {:.0}), head yaw \
             {:.0}, pitch {:.0}, roll {:.0} degrees",
            faces.len(),
            b.x0,
            b.y0,
            b.x1,
            b.y1,
            f.pose.yaw,
            f.pose.pitch,
            f.pose.roll
        );
        let data = json!({
            "faces": faces.len(),
            "box": [b.x0, b.y0, b.x1, b.y1],
            "pose": {"yaw": f.pose.yaw, "pitch": f.pose.pitch, "roll": f.pose.roll},
        });
        Ok(Observation {
            text,
            data,
            ..Default::default()
        })
    }

    fn align_face(&mut self, step: usize) -> Result<Observation> {
        use crate::face::align::{Alignment, DEFAULT_ALIGNED_SIZE};
        let subject = self.subject();
        let al = Alignment::from_landmarks68(&subject.face.landmarks68, DEFAULT_ALIGNED_SIZE)?;
        let m = al.aligned_from_image.m;
        let scale = m[0][0].hypot(m[1][0]);
        let rotation = m[1][0].atan2(m[0][0]).to_degrees();
        let iod = al.aligned_iod() / scale;
        let text = format!(
            "aligned the subject's face: rotated {rotation:.0} degrees so the eyes are level, \
             scaled {scale:.2}x into a {DEFAULT_ALIGNED_SIZE}x{DEFAULT_ALIGNED_SIZE} crop (the \
             eyes {iod:.0} px apart in the frame)"
        );
        let data = json!({
            "rotation_degrees": rotation,
            "scale": scale,
            "size": DEFAULT_ALIGNED_SIZE,
            "eye_distance_px": iod,
        });
        let mut artifacts = Vec::new();
        if let Some(dir) = &self.artifacts {
            let file = format!("step{step}-aligned.png");
            super::clip_tools::save(dir, &file, &al.warp(&self.image)?)?;
            artifacts.push(file);
        }
        Ok(Observation::ok(text, data, artifacts))
    }

    fn zoom(&mut self, step: usize, args: &Value) -> Result<Observation> {
        let regions = zoom_regions();
        let Some(name) = args["region"].as_str().filter(|r| regions.contains(r)) else {
            return Ok(refusal(format!(
                "zoom needs args.region, one of: {}",
                regions.join(", ")
            )));
        };
        let region = crate::face::regions::region(name).expect("listed above");
        let subject = self.subject();
        let crop = zoom_region(
            &self.image,
            &subject.face.landmarks68,
            name,
            DEFAULT_ZOOM_WIDTH,
        )?;
        let here: Vec<&crate::facs::evidence::AuEvidence> = subject
            .present()
            .filter(|a| region.aus.contains(&a.au))
            .collect();
        let mut text = format!("zoomed into the {} ({})", name, region.description);
        if here.is_empty() {
            text.push_str("; no AU of this region is present");
        } else {
            text.push_str("; present here: ");
            text.push_str(&au_list(&here));
        }
        let data = json!({"region": name, "aus": au_data(&here)});
        let mut artifacts = Vec::new();
        if let Some(dir) = &self.artifacts {
            let file = format!("step{step}-zoom-{name}.png");
            std::fs::create_dir_all(dir)
                .map_err(|e| crate::Error::io(dir.display().to_string(), e))?;
            crop.save_png(&dir.join(&file))?;
            artifacts.push(file);
        }
        Ok(Observation::ok(text, data, artifacts))
    }

    fn au_evidence(&self) -> Observation {
        let present: Vec<_> = self.subject().present().collect();
        let text = if present.is_empty() {
            "no AU is present (the face is at rest)".to_string()
        } else {
            format!("present: {}", au_list(&present))
        };
        Observation {
            text,
            data: json!({
                "source": "appearance",
                "aus": au_data(&present),
                "prototypes": prototypes(&self.subject().inference),
            }),
            ..Default::default()
        }
    }

    fn classify(&self) -> Observation {
        let s = self.subject();
        let mut fer: Vec<(String, f32)> = s
            .classifier
            .labels
            .iter()
            .zip(&s.classifier.probabilities)
            .map(|(e, p)| (e.name().to_string(), *p))
            .collect();
        fer.sort_by(|a, b| b.1.total_cmp(&a.1));
        let proto = prototypes(&s.inference);
        let top = |v: &[(String, f32)]| {
            v.iter()
                .take(3)
                .map(|(e, p)| format!("{e} {p:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Observation {
            text: format!("classifier: {}; the AUs match: {}", top(&fer), top(&proto)),
            data: json!({"classifier": fer, "prototypes": proto}),
            ..Default::default()
        }
    }
}

pub(super) fn refusal(text: String) -> Observation {
    Observation {
        text,
        data: Value::Null,
        artifacts: vec![],
        error: true,
    }
}

pub(super) fn au_list(aus: &[&crate::facs::evidence::AuEvidence]) -> String {
    aus.iter()
        .map(|a| format!("{} {} {:.2}", a.code(), a.name, a.intensity))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The prototype inference as observation data: `(emotion, probability)`, most probable
/// first. The final answer's emotions are ranked by it (see `run::answer_choices`).
pub(super) fn prototypes(inference: &Inference) -> Vec<(String, f32)> {
    inference
        .emotions
        .iter()
        .map(|e| (e.emotion.name().to_string(), e.probability))
        .collect()
}

/// AUs as observation data: the fields the answer's evidence is checked against.
pub(super) fn au_data(aus: &[&crate::facs::evidence::AuEvidence]) -> Value {
    Value::Array(
        aus.iter()
            .map(|a| {
                json!({
                    "au": format!("AU{}", a.au),
                    "code": a.code(),
                    "name": a.name,
                    "intensity": a.intensity,
                    "side": a.side,
                    "source": a.source,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod reference_tests {
    use super::*;

    /// An answer's text cites the AUs its list may hold and nothing else; a neutral one cites
    /// none.
    #[test]
    fn an_answer_text_cites_only_the_aus_its_branch_allows() {
        let code = |s: &str| s.to_string();
        let (au1, au4, au15) = (code("AU1"), code("AU4"), code("AU15"));
        let re = |p: String| regex::Regex::new(&p).unwrap();
        let sad = re(text_pattern(&[&au1, &au15], &[&au1, &au4, &au15], None));
        let good = "Inner Brow Raiser (AU1) raises the inner brows and Brow Lowerer (AU4) \
                    lowers them from frame 3 to 9. The movement is slight and reads as sadness.";
        assert!(sad.is_match(good));
        // an AU the branch does not allow, an opening without a citation, a second line
        assert!(!sad.is_match("Inner Brow Raiser (AU1) and Lip Pressor (AU24) moved."));
        assert!(!sad.is_match("Brow Lowerer (AU4) lowers the brows."));
        assert!(!sad.is_match("The brows moved (AU1)."));
        // an AU under another's name
        assert!(!sad.is_match("Inner Brow Raiser (AU1) with Lip Corner Depressor (AU4)."));
        assert!(sad.is_match("Inner Brow Raiser (AU1) with Lip Corner Depressor (AU15)."));
        assert!(!sad.is_match("Inner Brow Raiser (AU1) moved.\nThen more."));
        let shown: Vec<String> = ["0", "9", "11", "0.42"].map(String::from).to_vec();
        let neutral = re(text_pattern(&[], &[], Some(&shown)));
        assert!(neutral.is_match("No action unit moved clearly, so the face reads as neutral."));
        assert!(!neutral.is_match("Nothing moved but Lip Corner Puller (AU12)."));
        assert!(neutral.is_match("Something moved from frame 0 to 11, too little to read."));
        assert!(!neutral.is_match("Nothing moved from frame 0 to 39."));
        assert!(!neutral.is_match("Nothing moved from frame 911."));
        assert!(!neutral.is_match("Nothing moved from frame ¹ to ²."));
        assert!(neutral.is_match("The face doesn't move; it reads as neutral."));
        // numbers in a text with AUs: only those shown, and the codes of its citations
        let counted = re(text_pattern(&[&au1], &[&au1], Some(&shown)));
        assert!(counted.is_match("Inner Brow Raiser (AU1) rose from frame 9 to 11, at 0.42."));
        assert!(!counted.is_match("Inner Brow Raiser (AU1) rose from frame 9 to 12."));
        assert!(!counted.is_match("Inner Brow Raiser (AU1) rose at 0.43."));
        assert!(!counted.is_match("Inner Brow Raiser (AU1) rose; AU4 too."));
        // a thought likewise
        let thought = re(thought_pattern(Some(&shown), &[au1.clone(), code("AU7")]));
        assert!(thought.is_match("AU1 is weak at 0.42; look at frames 0 to 11."));
        assert!(thought.is_match("Lid Tightener (R7) is weak at 0.42; look closer."));
        assert!(!thought.is_match("A blink from 0 to 39."));
        // an AU not shown, a code under another's name, brackets around anything else
        assert!(!thought.is_match("AU9 is weak at 0.42."));
        assert!(!thought.is_match("Lip Suck (R7) is weak at 0.42."));
        assert!(!thought.is_match("Lid Tightener (AU1) moved."));
        assert!(!thought.is_match("The brows (both) moved."));
        assert!(thought.is_match("Inner Brow Raiser (AU1) and R7 moved from 9 to 11."));
        assert!(!thought.is_match("R8 moved."));
        assert!(re(thought_pattern(None, &[])).is_match("A blink from 0 to 39."));
        // the schema's branches carry it
        let answer = AnswerChoices {
            aus: vec![au1.clone(), au4.clone(), au15.clone(), code("AU24")],
            emotions: vec![Emotion::Sadness],
            numbers: None,
            text: None,
            thoughts: Vec::new(),
            claims: Vec::new(),
        };
        let args = answer_args(&answer, None);
        let branch = re(args["anyOf"][0]["properties"]["text"]["pattern"]
            .as_str()
            .unwrap()
            .to_string());
        assert!(branch.is_match(good));
        // the list may hold AU24 after the prototype's AUs; the text cites only those
        assert_eq!(
            args["anyOf"][0]["properties"]["aus"]["items"]["enum"][3],
            "AU24"
        );
        assert!(!branch.is_match("Inner Brow Raiser (AU1) and Lip Pressor (AU24) moved."));
    }

    /// `prompts/tools.schema.json` is the code's schema. After changing a tool, rewrite it with
    /// `ACTFER_WRITE_SCHEMA=1 cargo test --release --lib reference_schema`.
    #[test]
    fn the_reference_schema_file_is_the_codes_schema() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = root.join(REFERENCE_SCHEMA_FILE);
        let want = reference_schema();
        if std::env::var_os("ACTFER_WRITE_SCHEMA").is_some() {
            let text = serde_json::to_string_pretty(&want).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let got: Value = serde_json::from_str(&text).unwrap();
        assert!(
            got == want,
            "{} differs from agent::tools::reference_schema(); rewrite it with \
             ACTFER_WRITE_SCHEMA=1 cargo test --release --lib reference_schema",
            path.display()
        );
        // Every tool is there, each choice open.
        let variants = want["anyOf"].as_array().unwrap();
        assert_eq!(variants.len(), TOOLS.len());
        let args = |tool: &str| {
            variants
                .iter()
                .find(|v| v["properties"]["tool"]["const"] == tool)
                .unwrap()["properties"]["args"]
                .clone()
        };
        let regions = args("zoom")["properties"]["region"]["enum"].clone();
        assert_eq!(regions.as_array().unwrap().len(), zoom_regions().len());
        assert_eq!(
            args("au_evidence")["properties"]["source"]["enum"],
            json!(["appearance", "motion"])
        );
        assert_eq!(args("optical_flow")["properties"]["onset"]["minimum"], 0);
        // with every AU shown, every emotion but neutral fits some of them
        let answers = args(FINAL_ANSWER)["anyOf"].as_array().unwrap().clone();
        let emotions: Vec<&str> = answers
            .iter()
            .map(|b| b["properties"]["emotion"]["const"].as_str().unwrap())
            .collect();
        assert_eq!(emotions.len(), Emotion::ALL.len() - 1);
        assert!(!emotions.contains(&"neutral"));
        // each emotion's whole prototype first, then any AU
        for b in &answers {
            let aus = &b["properties"]["aus"];
            let e = Emotion::parse(b["properties"]["emotion"]["const"].as_str().unwrap());
            assert_eq!(aus["minItems"], e.unwrap().prototype().len());
            assert_eq!(aus["items"]["enum"].as_array().unwrap().len(), AUS.len());
        }
    }
}
