//! The teacher: a [`Policy`] that takes the steps a careful analyst takes, for the reasoner's
//! training trajectories (`actfer train policy data`). It runs through the real loop
//! ([`super::run`]) with the real tools, so every step it writes is one the step schema
//! accepts and every observation is the tools' own; it knows the gold labels only to choose,
//! among the answers the schema allows, the gold emotion and the gold AUs the observations
//! showed.
//!
//! Its thoughts say what the last observation showed and why the next step; its answer text
//! cites each claimed AU by catalogue name with what it does to the face, the frames, a plain
//! intensity word and how sure the reading is. Each sentence type has several phrasings,
//! chosen by a seeded generator, so the model learns the content, not one string.
//!
//! Steps on a clip: spot_expressions; au_evidence from motion (a clip is answered from its
//! motion, never from one frame's appearance); optical_flow on the main expression when the
//! evidence is ambiguous (a shown AU under [`WEAK`], or several emotions fit); final_answer. On an image: au_evidence from
//! appearance; zoom into the region of the weakest AU when one is weak; final_answer.

use regex::Regex;

/// The thought before reading the motion of a clip where nothing was spotted.
pub const NOTHING_SPOTTED: [&str; 2] = [
    "Nothing was spotted; check the motion evidence anyway.",
    "No expression was found in time; read the motion evidence to be sure.",
];

/// How the thought before reading the motion opens when one expression was spotted.
pub const ONE: [&str; 3] = ["One", "A single", "There is one"];

/// How the thought before reading the motion ends.
pub const READ_MOTION: [&str; 4] = [
    "read what moved.",
    "which AUs moved?",
    "now read its motion as AUs.",
    "check the motion from onset to apex.",
];

/// The thought before reading the motion of `n` spotted expressions, the main one given
/// (`one`: an [`ONE`] opening, `tail`: a [`READ_MOTION`] ending).
pub fn motion_thought(
    n: usize,
    one: &str,
    micro: bool,
    onset: usize,
    apex: usize,
    offset: usize,
    tail: &str,
) -> String {
    let kind = if micro { "micro" } else { "macro" };
    let lead = if n == 1 {
        format!("{one} {kind}-expression from frame {onset} to {offset}, apex {apex}")
    } else {
        format!("{n} expressions; the longest runs from frame {onset} to {offset}")
    };
    format!("{lead}; {tail}")
}

/// Why a spotted expression whose motion showed no AU gets a closer look.
pub const UNREAD: [&str; 2] = [
    "no AU was clear enough to claim",
    "the motion showed no clear AU",
];

/// The closer look, in the thought before optical_flow: "{why}; {this} from frame A to B.".
pub const CLOSER_LOOK: [&str; 3] = [
    "measure the motion again with the finer flow model",
    "look closer with the finer flow model",
    "check the facial flow with the finer model",
];

/// After the AU codes an answer claims, in its thought: one AU, several.
pub const CLAIM_ONE: [&str; 3] = [
    "is the AU the evidence showed; answer with it.",
    "moved clearly enough to claim; time to answer.",
    "is what moved; write the answer.",
];
pub const CLAIM_MANY: [&str; 3] = [
    "are the AUs the evidence showed; answer with them.",
    "moved clearly enough to claim; time to answer.",
    "are what moved; write the answer.",
];

/// The thought before optical_flow: why (`{Name} ({code}) is weak at {x}`, or an
/// [`UNREAD`] reason), the closer look, the frames.
pub fn closer_look_thought(why: &str, look: &str, onset: usize, apex: usize) -> String {
    format!("{}; {look} from frame {onset} to {apex}.", capitalise(why))
}

/// The thought before an answer that claims `codes` (at least one).
pub fn claim_thought(codes: &[&str], verb: &str) -> String {
    format!("{} {verb}", join(codes))
}

/// The thought before an answer that claims no AU.
pub const NOTHING_SHOWN: [&str; 2] = [
    "No AU was shown, so the face reads as neutral.",
    "Nothing moved clearly; the answer is neutral.",
];
use serde_json::{json, Value};

use super::policy::{Policy, Reply, Turn};
use super::tools::FINAL_ANSWER;
use crate::error::Result;
use crate::face::regions::regions_for_au;
use crate::facs::emotion::Emotion;
use crate::facs::evidence::AuEvidence;
use crate::llm::Message;
use crate::motion::spotting::{Spot, SpotKind};
use crate::synth::rng::Rng;

use super::phrasing::{self, name_of, Cited, Pattern, Pick, When};

pub use super::phrasing::WEAK;

/// What the teacher knows of the sample: the labels, never shown to the model.
#[derive(Debug, Clone)]
pub struct Gold {
    pub emotion: Emotion,
    pub aus: Vec<u8>,
}

/// An AU an observation showed: code as written (`AU4`, `R12`), number and intensity.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    code: String,
    number: u8,
    intensity: f32,
}

/// One spotted expression as the spotting observation gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spotted {
    micro: bool,
    onset: usize,
    apex: usize,
    offset: usize,
}

/// One branch of the final answer's schema: an emotion and the AU lists it accepts.
#[derive(Debug, Clone)]
struct Branch {
    emotion: Emotion,
    /// AUs the list must open with (every one, in any order).
    head: Vec<String>,
    /// AUs that may follow.
    rest: Vec<String>,
    max_items: usize,
}

/// The teacher policy; [`Teacher::conversation`] is the chat it had, to train on.
pub struct Teacher {
    gold: Gold,
    rng: Rng,
    conversation: Vec<Message>,
    system: String,
    /// The tools it called, in order.
    called: Vec<String>,
    /// The au_evidence sources it asked for.
    evidence_calls: Vec<String>,
    spots: Vec<Spotted>,
    shown: Vec<Shown>,
    /// The AU evidence each interval's motion showed: `(onset, apex)` and the sum of the
    /// intensities as written, in hundredths (see [`main_spot`](Teacher::main_spot)).
    evidence: Vec<((usize, usize), u32)>,
    parse: Parsers,
}

struct Parsers {
    au: Regex,
    spot: Regex,
    /// An interval's AUs in a motion observation, or an optical_flow observation's.
    interval: Regex,
    flow: Regex,
}

impl Teacher {
    pub fn new(gold: Gold, seed: u64, system: String) -> Self {
        Teacher {
            gold,
            rng: Rng::new(seed),
            conversation: vec![Message::system(system.clone())],
            system,
            called: vec![],
            evidence_calls: vec![],
            spots: vec![],
            shown: vec![],
            evidence: vec![],
            parse: Parsers {
                au: Regex::new(r"\b((?:AU|R|L)(\d{1,2})) [A-Z][A-Za-z ]+? (\d\.\d\d)").unwrap(),
                spot: Regex::new(r"#\d+ (Micro|Macro) onset (\d+) apex (\d+) offset (\d+)")
                    .unwrap(),
                interval: Regex::new(r"\(onset (\d+) -> apex (\d+)\): ([^;\n]*)").unwrap(),
                flow: Regex::new(r"facial flow (\d+) -> (\d+) [^\n]*?; present: ([^;\n]*)")
                    .unwrap(),
            },
        }
    }

    /// The conversation so far: the system prompt, then each message and reply.
    pub fn conversation(&self) -> &[Message] {
        &self.conversation
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        let chosen: &&str = self.rng.pick(options);
        chosen
    }

    /// Reads an observation: spotted expressions and the AUs it showed.
    fn read(&mut self, text: &str) {
        for c in self.parse.spot.captures_iter(text) {
            let n = |k: usize| c[k].parse().unwrap_or(0);
            let spot = Spotted {
                micro: &c[1] == "Micro",
                onset: n(2),
                apex: n(3),
                offset: n(4),
            };
            if !self.spots.contains(&spot) {
                self.spots.push(spot);
            }
        }
        let intervals = self.parse.interval.captures_iter(text);
        for c in intervals.chain(self.parse.flow.captures_iter(text)) {
            let key = (c[1].parse().unwrap_or(0), c[2].parse().unwrap_or(0));
            let sum: u32 = self
                .parse
                .au
                .captures_iter(&c[3])
                .map(|a| (a[3].parse::<f32>().unwrap_or(0.0) * 100.0).round() as u32)
                .sum();
            match self.evidence.iter_mut().find(|(k, _)| *k == key) {
                Some((_, total)) => *total += sum,
                None => self.evidence.push((key, sum)),
            }
        }
        for c in self.parse.au.captures_iter(text) {
            let code = c[1].to_string();
            let number: u8 = c[2].parse().unwrap_or(0);
            let intensity: f32 = c[3].parse().unwrap_or(0.0);
            match self.shown.iter_mut().find(|s| s.number == number) {
                Some(s) => s.intensity = s.intensity.max(intensity),
                None => self.shown.push(Shown {
                    code,
                    number,
                    intensity,
                }),
            }
        }
    }

    /// The main expression: the spotted one whose motion showed the most AU evidence (the
    /// sum of the intensities read for its onset -> apex), the longest of equals, the last
    /// of those; before any motion was read, the longest. The loop finds the same one for
    /// the answer's text (`run::answer_choices`).
    fn main_spot(&self) -> Option<Spotted> {
        let weight = |s: &Spotted| {
            let key = (s.onset, s.apex);
            self.evidence
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(0, |(_, w)| *w)
        };
        self.spots
            .iter()
            .copied()
            .max_by_key(|s| (weight(s), s.offset - s.onset))
    }

    fn step(&mut self, schema: &Value) -> Value {
        let tools = tools_offered(schema);
        let offered = |t: &str| tools.iter().any(|x| x == t);
        let done = |s: &Teacher, t: &str| s.called.iter().any(|x| x == t);
        let clip = offered("spot_expressions") || done(self, "spot_expressions");
        if offered("spot_expressions") && !done(self, "spot_expressions") {
            let thought = self
                .pick(&[
                    "When does the face move? Find the expressions in time first.",
                    "First find when the expression happens.",
                    "Spot the expressions in the clip before reading them.",
                    "Find the onset, apex and offset of the movement first.",
                ])
                .to_string();
            return step(thought, "spot_expressions", json!({}));
        }
        // on a clip the motion first; the frame's appearance only when the motion showed
        // nothing (the loop then lets the answer draw on it)
        let source_offered = |src: &str| {
            schema["anyOf"].as_array().into_iter().flatten().any(|v| {
                v["properties"]["tool"]["const"] == "au_evidence"
                    && v["properties"]["args"]["properties"]["source"]["enum"]
                        .as_array()
                        .is_some_and(|e| e.iter().any(|x| x == src))
            })
        };
        // a clip is answered from its motion (`run::answer_steps`): its frame's appearance is
        // never read; a spotted expression whose motion showed little gets a closer look at
        // its motion instead (below)
        let motion_read = self.evidence_calls.iter().any(|s| s == "motion");
        let appearance_read = self.evidence_calls.iter().any(|s| s == "appearance");
        let wants = if clip && !motion_read {
            Some("motion")
        } else if self.shown.is_empty() && !appearance_read && !clip {
            Some("appearance")
        } else {
            None
        };
        if let Some(source) = wants.filter(|s| source_offered(s)) {
            let thought = match (source, self.main_spot()) {
                ("motion", Some(s)) => {
                    let n = self.spots.len();
                    // (picked only where written, so the seeded choices stay as they were)
                    let one = if n == 1 { self.pick(&ONE) } else { "" };
                    let tail = self.pick(&READ_MOTION);
                    motion_thought(n, one, s.micro, s.onset, s.apex, s.offset, tail)
                }
                ("motion", None) => self.pick(&NOTHING_SPOTTED).to_string(),
                _ => self
                    .pick(&[
                        "Which AUs show on the face?",
                        "Read the AUs present in the image first.",
                        "Start with the AU evidence of the face.",
                    ])
                    .to_string(),
            };
            self.evidence_calls.push(source.to_string());
            return step(thought, "au_evidence", json!({"source": source}));
        }
        let branches = answer_branches(schema);
        // a closer look where the evidence is ambiguous: a weak AU, emotions that compete,
        // or (on a clip) an expression spotted whose motion showed no AU; judged from the
        // observations alone, as the model must
        let weakest = self
            .shown
            .iter()
            .filter(|s| s.intensity < WEAK)
            .min_by(|a, b| a.intensity.total_cmp(&b.intensity))
            .cloned();
        let competing = branches.len() > 1;
        let unread = clip && self.shown.is_empty() && !self.spots.is_empty();
        let looked_closer = done(self, "optical_flow") || done(self, "zoom");
        if !looked_closer && (weakest.is_some() || competing || unread) {
            if let (true, Some(s)) = (offered("optical_flow"), self.main_spot()) {
                let why = match &weakest {
                    _ if unread => self.pick(&UNREAD).to_string(),
                    Some(w) => format!(
                        "{} ({}) is weak at {:.2}",
                        name_of(w.number),
                        w.code,
                        w.intensity
                    ),
                    None => self
                        .pick(&[
                            "the AUs fit more than one reading",
                            "the reading is not yet clear",
                        ])
                        .to_string(),
                };
                // the closer look is the finer flow model, trained on small facial motion
                let method = flow_method(schema, crate::flow::meflownet::MODEL_NAME);
                let look = self.pick(&CLOSER_LOOK);
                let thought = closer_look_thought(&why, look, s.onset, s.apex);
                return step(
                    thought,
                    "optical_flow",
                    json!({"onset": s.onset, "apex": s.apex, "method": method}),
                );
            }
            if let (true, Some(w)) = (offered("zoom"), &weakest) {
                if let Some(region) = zoom_region(schema, w.number) {
                    let thought = format!(
                        "{} ({}) is weak at {:.2}; {} the {}.",
                        name_of(w.number),
                        w.code,
                        w.intensity,
                        self.pick(&["zoom into", "look closer at", "check"]),
                        region
                            .replace('_', " ")
                            .trim_start_matches("r ")
                            .trim_start_matches("l ")
                    );
                    let _ = &region;
                    return step(thought, "zoom", json!({"region": region}));
                }
            }
        }
        self.answer(&branches)
    }

    /// The final answer: the gold emotion where the schema allows it (else the schema's
    /// first), the gold AUs the list may hold after the ones it must open with.
    fn answer(&mut self, branches: &[Branch]) -> Value {
        let chosen = branches
            .iter()
            .find(|b| b.emotion == self.gold.emotion)
            .or_else(|| branches.first())
            .cloned()
            .unwrap_or(Branch {
                emotion: Emotion::Neutral,
                head: vec![],
                rest: vec![],
                max_items: 0,
            });
        let mut aus = chosen.head.clone();
        for code in &chosen.rest {
            let gold = au_of(code).is_some_and(|n| self.gold.aus.contains(&n));
            if gold && !aus.contains(code) && aus.len() < chosen.max_items {
                aus.push(code.clone());
            }
        }
        let emotion = chosen.emotion;
        // the claimed AUs as the answer writes them, with the intensity shown
        let claimed: Vec<Shown> = aus
            .iter()
            .filter_map(|c| {
                let n = au_of(c)?;
                let s = self.shown.iter().find(|s| s.number == n)?;
                Some(Shown {
                    code: c.clone(),
                    ..s.clone()
                })
            })
            .collect();
        // the text cites only the AUs every list of the branch claims (the schema's rule)
        let cited: Vec<Shown> = claimed
            .iter()
            .filter(|s| chosen.head.contains(&s.code))
            .cloned()
            .collect();
        let text = self.answer_text(emotion, &cited);
        let thought = if claimed.is_empty() {
            self.pick(&NOTHING_SHOWN).to_string()
        } else {
            // the thought comes before the answer's emotion in the step, so it names none
            // (the schema fixes the emotion after it; a named one could disagree)
            let codes: Vec<&str> = claimed.iter().map(|s| s.code.as_str()).collect();
            let verb = if codes.len() == 1 {
                self.pick(&CLAIM_ONE)
            } else {
                self.pick(&CLAIM_MANY)
            };
            claim_thought(&codes, verb)
        };
        step(
            thought,
            FINAL_ANSWER,
            json!({"emotion": emotion.name(), "aus": aus, "text": text}),
        )
    }

    fn answer_text(&mut self, emotion: Emotion, claimed: &[Shown]) -> String {
        let cited: Vec<Cited> = claimed
            .iter()
            .map(|s| Cited {
                code: s.code.clone(),
                number: s.number,
                intensity: s.intensity,
            })
            .collect();
        let spot = self.main_spot().map(|s| When {
            micro: s.micro,
            onset: s.onset,
            apex: s.apex,
            offset: s.offset,
        });
        phrasing::answer_text(&mut Pick(&mut self.rng), emotion, &cited, spot)
    }
}

impl Policy for Teacher {
    fn reply(&mut self, turn: &Turn<'_>, schema: &Value, _max_tokens: usize) -> Result<Reply> {
        self.read(turn.text);
        let step = self.step(schema);
        if let Some(t) = step["tool"].as_str() {
            self.called.push(t.to_string());
        }
        let text = serde_json::to_string(&step)
            .map_err(|e| crate::Error::Internal(format!("teacher step to JSON: {e}")))?;
        self.conversation.push(Message::user(turn.text));
        self.conversation.push(Message::assistant(text.clone()));
        Ok(Reply {
            tokens: text.len() / 4,
            text,
        })
    }

    fn name(&self) -> String {
        "teacher".into()
    }

    fn restart(&mut self) {
        self.conversation = vec![Message::system(self.system.clone())];
        self.called.clear();
        self.evidence_calls.clear();
        self.spots.clear();
        self.shown.clear();
    }
}

/// The teacher's explanation of one spotted expression (see [`phrasing::explanation`]), from
/// the same evidence the explainer reads ([`super::explain::evidence_text`]): the reasoner's
/// training target for explanations.
pub fn explanation(
    spot: &Spot,
    present: &[&AuEvidence],
    emotion: Emotion,
    rng: &mut Rng,
) -> String {
    phrasing::explanation(&mut Pick(rng), when(spot), &cited(present), emotion)
}

/// The pattern `actfer explain` decodes under: exactly the explanations [`explanation`] can
/// write for this evidence, so the model chooses the phrasing and never a fact.
pub fn explanation_pattern(spot: &Spot, present: &[&AuEvidence], emotion: Emotion) -> String {
    phrasing::explanation(&mut Pattern, when(spot), &cited(present), emotion)
}

fn when(spot: &Spot) -> When {
    When {
        micro: spot.kind == SpotKind::Micro,
        onset: spot.onset,
        apex: spot.apex,
        offset: spot.offset,
    }
}

fn cited(present: &[&AuEvidence]) -> Vec<Cited> {
    present
        .iter()
        .map(|a| Cited {
            code: a.code(),
            number: a.au,
            intensity: a.intensity,
        })
        .collect()
}

fn step(thought: String, tool: &str, args: Value) -> Value {
    json!({"tool": tool, "thought": thought, "args": args})
}

/// The tools a step schema offers.
fn tools_offered(schema: &Value) -> Vec<String> {
    schema["anyOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["properties"]["tool"]["const"].as_str())
        .map(str::to_string)
        .collect()
}

/// The final answer's branches in a step schema (none when it is not offered). A schema
/// that offers the answer once per AU list (its thought naming the list,
/// [`crate::agent::tools::AnswerChoices::claims`]) gives each emotion as its lists; they are
/// joined back into one branch: the shortest list is the head, the others add the rest in
/// their order.
fn answer_branches(schema: &Value) -> Vec<Branch> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let mut branches: Vec<Branch> = Vec::new();
    let answers = schema["anyOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["properties"]["tool"]["const"] == FINAL_ANSWER);
    for answer in answers {
        for b in answer["properties"]["args"]["anyOf"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let p = &b["properties"];
            let Some(emotion) = p["emotion"]["const"]
                .as_str()
                .and_then(|e| Emotion::parse(e).ok())
            else {
                continue;
            };
            let aus = &p["aus"];
            if aus["const"].is_array() {
                let list = strings(&aus["const"]);
                match branches.iter_mut().find(|b| b.emotion == emotion) {
                    Some(b) => {
                        if list.len() < b.head.len() {
                            b.head = list.clone();
                        }
                        for code in &list {
                            if !b.rest.contains(code) {
                                b.rest.push(code.clone());
                            }
                        }
                        b.max_items = b.max_items.max(list.len());
                    }
                    None => branches.push(Branch {
                        emotion,
                        head: list.clone(),
                        max_items: list.len(),
                        rest: list,
                    }),
                }
                continue;
            }
            let head: Vec<String> = aus["prefixItems"]
                .as_array()
                .and_then(|h| h.first())
                .map(|h| strings(&h["enum"]))
                .unwrap_or_default();
            branches.push(Branch {
                emotion,
                head,
                rest: strings(&aus["items"]["enum"]),
                max_items: aus["maxItems"].as_u64().unwrap_or(0) as usize,
            });
        }
    }
    branches
}

/// `wanted` where optical_flow offers it, else the first method it offers (the clip's own).
fn flow_method(schema: &Value, wanted: &str) -> String {
    let offered: Vec<&str> = schema["anyOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["properties"]["tool"]["const"] == "optical_flow")
        .flat_map(|v| {
            v["properties"]["args"]["properties"]["method"]["enum"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
        })
        .collect();
    offered
        .iter()
        .find(|m| **m == wanted)
        .or(offered.first())
        .map_or_else(|| wanted.to_string(), |m| m.to_string())
}

/// A region the zoom tool offers where AU `number` shows (a fine one, the subject's right
/// first).
fn zoom_region(schema: &Value, number: u8) -> Option<String> {
    let zoom = schema["anyOf"]
        .as_array()?
        .iter()
        .find(|v| v["properties"]["tool"]["const"] == "zoom")?;
    let offered: Vec<&str> = zoom["properties"]["args"]["properties"]["region"]["enum"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    regions_for_au(number)
        .map(|r| r.name)
        .find(|r| offered.contains(r))
        .map(str::to_string)
}

fn au_of(code: &str) -> Option<u8> {
    code.trim_start_matches(['R', 'L'])
        .trim_start_matches("AU")
        .parse()
        .ok()
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// `AU1`, `AU1 and AU4`, `AU1, AU2 and AU4`.
fn join(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::tools::{step_schema, AnswerChoices, TOOLS};

    fn teacher() -> Teacher {
        Teacher::new(
            Gold {
                emotion: Emotion::Sadness,
                aus: vec![1, 4, 15],
            },
            7,
            "system".into(),
        )
    }

    #[test]
    fn reads_spots_and_aus_from_observations() {
        let mut t = teacher();
        t.read("1 expression(s), 0 blink(s) in 40 frames; #1 Micro onset 10 apex 14 offset 20 (0.47 s), strongest on AU4");
        t.read(
            "motion: #1 (onset 10 -> apex 14): AU4 Brow Lowerer 0.62, R12 Lip Corner Puller 0.20",
        );
        assert_eq!(
            t.spots,
            [Spotted {
                micro: true,
                onset: 10,
                apex: 14,
                offset: 20
            }]
        );
        let codes: Vec<(&str, f32)> = t
            .shown
            .iter()
            .map(|s| (s.code.as_str(), s.intensity))
            .collect();
        assert_eq!(codes, [("AU4", 0.62), ("R12", 0.20)]);
    }

    /// A weak AU, or an expression whose motion showed none, calls for a closer look with
    /// the finer flow model, decided from the observations (the gold AUs play no part).
    #[test]
    fn weak_motion_gets_a_closer_look_with_meflownet() {
        use crate::agent::tools::ClipChoices;
        use crate::agent::trace::ToolCall;
        let spotted = "1 expression(s), 0 blink(s) in 40 frames; #1 Micro onset 10 apex 14 offset 20 (0.47 s), strongest on AU4";
        let used = [
            ToolCall {
                name: "spot_expressions".into(),
                args: json!({}),
            },
            ToolCall {
                name: "au_evidence".into(),
                args: json!({"source": "motion"}),
            },
        ];
        let clip = ClipChoices {
            spots: vec![(10, 14)],
            methods: vec!["dis".into(), "meflownet".into()],
        };
        let tools: Vec<&str> = TOOLS.iter().map(|t| t.0).collect();
        for (motion, shown) in [
            ("motion: #1 (onset 10 -> apex 14): no AU present", vec![]),
            (
                "motion: #1 (onset 10 -> apex 14): AU12 Lip Corner Puller 0.62, AU24 Lip Pressor 0.20",
                vec!["AU12".to_string(), "AU24".to_string()],
            ),
        ] {
            let mut t = teacher();
            t.called = vec!["spot_expressions".into(), "au_evidence".into()];
            t.evidence_calls = vec!["motion".into()];
            t.read(spotted);
            t.read(motion);
            let answer = AnswerChoices {
                aus: shown,
                emotions: vec![],
                numbers: None,
                text: None,
            thoughts: Vec::new(),
            claims: Vec::new(),
            };
            let schema = step_schema(&tools, &answer, Some(&clip), &used);
            let step = t.step(&schema);
            assert_eq!(step["tool"], "optical_flow", "{step}");
            assert_eq!(
                step["args"],
                json!({"onset": 10, "apex": 14, "method": "meflownet"})
            );
            crate::llm::constrain::validate(&step, &schema).unwrap();
        }
    }

    #[test]
    fn the_answer_takes_the_gold_emotion_and_aus_the_schema_allows() {
        let mut t = teacher();
        t.read("#1 Micro onset 10 apex 14 offset 20; motion: AU1 Inner Brow Raiser 0.50, AU4 Brow Lowerer 0.62, AU15 Lip Corner Depressor 0.41, AU25 Lips Part 0.30");
        let answer = AnswerChoices {
            aus: ["AU1", "AU4", "AU15", "AU25"].map(String::from).to_vec(),
            emotions: vec![],
            numbers: None,
            text: None,
            thoughts: Vec::new(),
            claims: Vec::new(),
        };
        let tools: Vec<&str> = TOOLS
            .iter()
            .map(|t| t.0)
            .filter(|t| *t == FINAL_ANSWER)
            .collect();
        let schema = step_schema(&tools, &answer, None, &[]);
        let step = t.step(&schema);
        assert_eq!(step["tool"], FINAL_ANSWER);
        assert_eq!(step["args"]["emotion"], "sadness");
        // the prototype's AUs, and no AU25 (not gold)
        let aus: Vec<&str> = step["args"]["aus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(aus, ["AU1", "AU4", "AU15"]);
        let text = step["args"]["text"].as_str().unwrap();
        assert!(
            text.starts_with("Inner Brow Raiser (AU1) raises the inner brows"),
            "{text}"
        );
        assert!(text.len() <= 240, "{text}");
        assert!(text.contains("from frame 10 to 20"), "{text}");
        assert!(text.contains("sadness"), "{text}");
        // the step validates against the schema
        crate::llm::constrain::validate(&step, &schema).unwrap();
    }

    /// Every explanation the teacher writes matches the pattern `actfer explain` decodes
    /// under, and the pattern holds no other fact: another frame, AU name, emotion or
    /// intensity word is refused.
    #[test]
    fn explanations_match_their_pattern_and_nothing_else_does() {
        use crate::face::regions::Side;
        use crate::facs::evidence::Cue;
        let au = |n: u8, x: f32| {
            let cue = Cue {
                source: "motion".into(),
                side: Side::Both,
                value: x,
                intensity: x,
            };
            AuEvidence::from_cues(n, vec![cue])
        };
        let spot = |kind| Spot {
            onset: 8,
            apex: 12,
            offset: 19,
            kind,
            peak: 1.0,
            score: 5.0,
            curve: "AU1".into(),
        };
        let cases = [
            vec![],
            vec![au(26, 0.19), au(20, 0.16)],
            vec![au(5, 0.72), au(23, 0.68), au(7, 0.25)],
            vec![au(1, 0.9), au(4, 1.0), au(15, 0.9)],
        ];
        for kind in [SpotKind::Micro, SpotKind::Macro] {
            for present in &cases {
                let refs: Vec<&AuEvidence> = present.iter().collect();
                let s = spot(kind);
                let re = Regex::new(&format!(
                    "^(?:{})$",
                    explanation_pattern(&s, &refs, Emotion::Fear)
                ))
                .unwrap();
                for seed in 0..40 {
                    let text = explanation(&s, &refs, Emotion::Fear, &mut Rng::new(seed));
                    assert!(re.is_match(&text), "{text}");
                }
            }
        }
        let present = [au(5, 0.72), au(23, 0.68), au(7, 0.25)];
        let refs: Vec<&AuEvidence> = present.iter().collect();
        let s = spot(SpotKind::Micro);
        let text = explanation(&s, &refs, Emotion::Anger, &mut Rng::new(3));
        let re = Regex::new(&format!(
            "^(?:{})$",
            explanation_pattern(&s, &refs, Emotion::Anger)
        ))
        .unwrap();
        assert!(re.is_match(&text), "{text}");
        for (from, to) in [
            ("frame 8", "frame 7"),
            ("(AU23)", "(AU24)"),
            ("anger", "fear"),
            ("slight to marked", "slight to strong"),
            ("tightens the lids", "raises the lids"),
        ] {
            assert!(text.contains(from), "{text}");
            assert!(!re.is_match(&text.replace(from, to)), "{from} -> {to}");
        }
    }
}
