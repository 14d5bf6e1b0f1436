//! The loop: the policy picks a tool, the toolbox runs it, the observation goes back, until
//! a final answer or a budget (steps, generated tokens, seconds) ends the run. The last step
//! allowed is held to a final answer. An answer the verifier rejects goes back to the model
//! with the reasons, a bounded number of times ([`Limits::revisions`]). Every step is kept, so a run cut short still leaves its
//! trace.

use std::time::Instant;

use serde_json::Value;

use super::phrasing::{self, as_written, When, WEAK};
use super::policy::{Policy, Turn};
use super::teacher;
use super::tools::{
    self, fitting_emotions, numbers_in, step_schema, AnswerChoices, TextFacts, Toolbox,
    FINAL_ANSWER, TOOLS,
};
use super::trace::{
    Answer, AnswerAu, EmotionAnswer, InputInfo, Interval, Observation, Step, StopReason, Timings,
    ToolCall, Trace, FRAME, SCHEMA,
};
use super::verifier::verify;
use crate::error::Result;
use crate::facs::emotion::Emotion;
use crate::llm::constrain::validate;
use crate::motion::spotting::{Spot, SpotKind};

/// The system prompt (prompts/agent_system.md) with the tool list and the region names.
pub fn system_prompt() -> String {
    let tools: Vec<String> = TOOLS
        .iter()
        .map(|(name, what)| format!("- {name}: {what}"))
        .collect();
    include_str!("../../prompts/agent_system.md")
        .replace("{tools}", &tools.join("\n"))
        .replace("{regions}", &super::tools::zoom_regions().join(", "))
}

/// The trained reasoner's system prompt (prompts/agent_system_trained.md): short, as it was
/// trained with; the tools and their arguments reach it through the step schema.
pub fn trained_system_prompt() -> String {
    include_str!("../../prompts/agent_system_trained.md")
        .trim()
        .to_string()
}

/// The system prompt for a model: the short one it was trained with for the trained reasoner
/// ([`crate::llm::REASONER_MODEL`]), the full one (tools, regions, examples) for any other.
pub fn system_prompt_for(model: &str) -> String {
    if model == crate::llm::REASONER_MODEL {
        trained_system_prompt()
    } else {
        system_prompt()
    }
}

/// Budgets of one run.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Steps, the final answer included.
    pub max_steps: usize,
    /// Tokens the model may generate over the whole run.
    pub max_tokens: usize,
    /// Tokens of one step.
    pub step_tokens: usize,
    /// Wall-clock seconds; checked before each step.
    pub max_seconds: f64,
    /// Answers the verifier may send back for revision (while steps remain).
    pub revisions: usize,
    /// How many emotions the final answer may choose from: those the tools' prototype
    /// inference ranks highest, among the ones the shown AUs fit. 0: every emotion they fit.
    /// The default, 1, is what the 135M model does best with (README, "Agent against the
    /// tool-only pipeline": on the SynthME validation split, emotion UF1 0.7162 with 1,
    /// 0.4905 with 2, 0.2552 with all).
    pub emotions: usize,
    /// The answer's text is one of the texts [`super::phrasing::answer_text`] writes for
    /// the evidence (the default: every name, action, frame and intensity word is true by
    /// construction), and so are the thoughts where the loop leaves one way on
    /// (`fixed_thoughts`); off, any one-line text that cites the claimed AUs by their
    /// names, which the verifier then checks, and free thoughts.
    pub exact_texts: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 6,
            max_tokens: 1500,
            step_tokens: 256,
            max_seconds: 300.0,
            revisions: 1,
            emotions: 1,
            exact_texts: true,
        }
    }
}

/// The longest question the loop takes, in characters: a question is a sentence or two, and
/// a longer one would cost the model its context (and minutes of prefill) before any step.
pub const MAX_QUESTION_CHARS: usize = 1000;

/// Refuses a question longer than [`MAX_QUESTION_CHARS`] before any work.
pub fn check_question(question: &str) -> Result<()> {
    let n = question.chars().count();
    if n > MAX_QUESTION_CHARS {
        return Err(crate::Error::Limit {
            what: "question".into(),
            reason: format!(
                "the question has {n} characters, over the limit of {MAX_QUESTION_CHARS}; ask it \
                 in a sentence or two"
            ),
        });
    }
    Ok(())
}

/// Runs the loop on `question`. Only a failure of the library or the model is an `Err`; an
/// unusable reply or a refused tool is a step whose observation says so.
pub fn run(
    question: &str,
    input: InputInfo,
    toolbox: &mut Toolbox,
    policy: &mut dyn Policy,
    limits: &Limits,
) -> Result<Trace> {
    check_question(question)?;
    let start = Instant::now();
    policy.restart();
    let mut steps: Vec<Step> = Vec::new();
    let mut answer = None;
    let mut tokens = 0;
    let mut llm_seconds = 0.0;
    let mut revisions = 0;
    // images that come with the next message: the frame with the question, then the last
    // observation's artifacts; as many as the policy reads
    let mut images: Vec<String> = vec![FRAME.to_string()];
    let mut message = format!(
        "Question: {question}\nThe input is {}. Take one step.",
        if toolbox.has_clip() {
            format!("a clip of {} frames", input.frames)
        } else {
            "one image".to_string()
        }
    );
    let stop = loop {
        let id = steps.len() + 1;
        if start.elapsed().as_secs_f64() >= limits.max_seconds {
            break StopReason::TimeLimit;
        }
        if tokens >= limits.max_tokens {
            break StopReason::TokenLimit;
        }
        let last = id >= limits.max_steps;
        // The answer waits for evidence (on a clip, evidence of its motion, and a closer look
        // where that reading was weak) and cites only what was shown; the last step answers.
        // A weak reading of a spotted expression's motion has one way on: optical_flow.
        let closer_look = toolbox.has_clip()
            && steps.iter().any(is_motion_evidence)
            && toolbox.clip_choices().is_some_and(|c| !c.spots.is_empty())
            && weak_motion(&steps);
        let looked = if toolbox.has_clip() {
            steps.iter().any(is_motion_evidence) && !closer_look
        } else {
            steps.iter().any(is_evidence)
        };
        let tools: Vec<&str> = TOOLS
            .iter()
            .map(|t| t.0)
            .filter(|&t| match (last, looked) {
                (true, _) => t == FINAL_ANSWER,
                (false, false) if closer_look => t == "optical_flow",
                (false, false) => t != FINAL_ANSWER,
                (false, true) => true,
            })
            .collect();
        let used: Vec<ToolCall> = steps
            .iter()
            .filter(|s| !s.observation.error)
            .map(|s| s.tool.clone())
            .collect();
        let schema = step_schema(
            &tools,
            &answer_choices(question, &steps, toolbox.has_clip(), limits),
            toolbox.clip_choices().as_ref(),
            &used,
        );
        let t = Instant::now();
        let budget = limits.step_tokens.min(limits.max_tokens - tokens);
        images.retain(|name| toolbox.artifact_path(name).is_some());
        images.truncate(policy.max_images());
        let paths: Vec<_> = images
            .iter()
            .filter_map(|name| toolbox.artifact_path(name))
            .collect();
        let turn = Turn {
            text: &message,
            images: &paths,
            deadline: std::time::Duration::try_from_secs_f64(limits.max_seconds)
                .ok()
                .and_then(|d| start.checked_add(d)),
        };
        let reply = policy.reply(&turn, &schema, budget)?;
        let seconds = t.elapsed().as_secs_f64();
        llm_seconds += seconds;
        tokens += reply.tokens;
        let parsed = serde_json::from_str::<Value>(&reply.text)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| validate(&v, &schema).map(|_| v));
        let mut step = Step {
            id,
            thought: String::new(),
            tool: ToolCall {
                name: String::new(),
                args: Value::Null,
            },
            observation: Observation::default(),
            tokens: reply.tokens,
            seconds,
            images: std::mem::take(&mut images),
        };
        match parsed {
            Err(why) => {
                step.thought = reply.text;
                step.observation = Observation {
                    text: format!(
                        "the reply is not a valid step ({why}); reply with one JSON step"
                    ),
                    error: true,
                    ..Default::default()
                };
            }
            Ok(v) => {
                step.thought = v["thought"].as_str().unwrap_or_default().to_string();
                step.tool = ToolCall {
                    name: v["tool"].as_str().unwrap_or_default().to_string(),
                    args: v["args"].clone(),
                };
                if step.tool.name == FINAL_ANSWER {
                    let a = build_answer(&step.tool.args, id, &steps);
                    let checks = verify(&a, &steps);
                    let failed: Vec<String> = checks
                        .iter()
                        .filter(|c| !c.passed)
                        .map(|c| format!("{}: {}", c.name, c.detail))
                        .collect();
                    if failed.is_empty() || last || revisions >= limits.revisions {
                        step.observation.text = "the answer".into();
                        steps.push(step);
                        answer = Some(a);
                        break if last {
                            StopReason::StepLimit
                        } else {
                            StopReason::Answered
                        };
                    }
                    // The verifier says what is wrong and the model answers again.
                    revisions += 1;
                    step.observation = Observation {
                        text: format!(
                            "the verifier rejected this answer ({}); revise the final answer",
                            failed.join("; ")
                        ),
                        data: serde_json::json!({"rejected": checks}),
                        error: true,
                        ..Default::default()
                    };
                } else {
                    step.observation = toolbox.call(id, &step.tool.name, &step.tool.args)?;
                }
            }
        }
        message = format!(
            "Observation {id}: {}\nTake the next step.",
            step.observation.text
        );
        images = step.observation.artifacts.clone();
        let cut = step.observation.error && tokens >= limits.max_tokens;
        steps.push(step);
        if cut {
            break StopReason::TokenLimit;
        }
        if last {
            break StopReason::StepLimit;
        }
    };
    let verifier = answer
        .as_ref()
        .map(|a| verify(a, &steps))
        .unwrap_or_default();
    let input = InputInfo {
        face_box: toolbox.subject_box(),
        ..input
    };
    if let Some(a) = answer.as_mut() {
        a.intervals = toolbox
            .intervals()
            .into_iter()
            .map(|[onset, apex, offset]| Interval {
                onset,
                apex,
                offset,
            })
            .collect();
    }
    Ok(Trace {
        schema: SCHEMA.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        question: question.into(),
        input,
        model: policy.name(),
        steps,
        answer,
        verifier,
        stop,
        timings: Timings {
            perception_seconds: toolbox.seconds,
            flow_seconds: toolbox.flow_seconds(),
            llm_seconds,
            total_seconds: start.elapsed().as_secs_f64(),
        },
    })
}

/// Whether a step gathered evidence (a tool other than detect_face and the answer, that ran).
pub fn is_evidence(s: &Step) -> bool {
    !s.observation.error && !matches!(s.tool.name.as_str(), "detect_face" | FINAL_ANSWER | "")
}

/// Whether the clip's motion read so far is weak and no closer look (optical_flow) was
/// taken: an AU it showed is under [`WEAK`], or it showed none.
fn weak_motion(steps: &[Step]) -> bool {
    let ran = |name: &str| {
        steps
            .iter()
            .any(|s| s.tool.name == name && !s.observation.error)
    };
    if ran("optical_flow") {
        return false;
    }
    let shown: Vec<f64> = steps
        .iter()
        .filter(|s| is_motion_evidence(s))
        .flat_map(|s| s.observation.data["aus"].as_array().into_iter().flatten())
        .filter_map(|a| a["intensity"].as_f64())
        .collect();
    shown.is_empty() || shown.iter().any(|&x| as_written(x as f32) < WEAK)
}

/// Whether a step read a clip's motion (au_evidence from motion, or optical_flow), that ran.
pub fn is_motion_evidence(s: &Step) -> bool {
    !s.observation.error
        && (s.tool.name == "optical_flow"
            || (s.tool.name == "au_evidence" && s.tool.args["source"] == "motion"))
}

/// The steps whose AUs the answer may claim. On a clip, once its motion was read, only the
/// motion steps: the question is about what the clip does, and one frame's appearance (a
/// resting face, or the person's usual look) is not that; a clip whose motion showed nothing
/// is answered from that.
fn answer_steps(steps: &[Step], clip: bool) -> Vec<&Step> {
    let moved = |s: &&Step| is_motion_evidence(s);
    let motion_read = steps.iter().any(is_motion_evidence);
    steps
        .iter()
        .filter(|s| !(clip && motion_read) || moved(s))
        .collect()
}

/// The AUs those steps ([`answer_steps`]) showed present, in order of first appearance.
fn shown(steps: &[Step], clip: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in answer_steps(steps, clip) {
        for a in s.observation.data["aus"].as_array().into_iter().flatten() {
            if let Some(code) = a["au"].as_str() {
                if !out.iter().any(|c| c == code) {
                    out.push(code.to_string());
                }
            }
        }
    }
    out
}

/// How much AU evidence the motion of `spot` showed in the answer's steps: the sum of the
/// intensities (as written, in hundredths) of the AUs read on its onset -> apex. The main
/// expression of an answer's text has the most (the teacher's `main_spot`).
fn evidence_of(steps: &[Step], clip: bool, spot: &Spot) -> u32 {
    let interval = format!(" {} -> {}", spot.onset, spot.apex);
    answer_steps(steps, clip)
        .iter()
        .flat_map(|s| s.observation.data["aus"].as_array().into_iter().flatten())
        .filter(|a| a["source"].as_str().is_some_and(|x| x.ends_with(&interval)))
        .filter_map(|a| a["intensity"].as_f64())
        .map(|x| (as_written(x as f32) * 100.0).round() as u32)
        .sum()
}

/// What the final answer may say after `steps`: the AUs shown and, with `best` > 0, the
/// `best` emotions that the latest prototype inference among those steps (an observation's
/// `prototypes`, from all the AU evidence of that tool, weak AUs included) ranks highest,
/// of those the AUs fit. Without such an inference, every emotion they fit.
/// The numbers a thought or text may write are those of `question` and of the observations.
fn answer_choices(question: &str, steps: &[Step], clip: bool, limits: &Limits) -> AnswerChoices {
    let best = limits.emotions;
    let aus = shown(steps, clip);
    let ranked: Vec<Emotion> = answer_steps(steps, clip)
        .iter()
        .rev()
        .find_map(|s| s.observation.data["prototypes"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| Emotion::parse(p[0].as_str()?).ok())
        .collect();
    let emotions = if best == 0 {
        vec![]
    } else {
        let fit = fitting_emotions(&aus);
        ranked
            .into_iter()
            .filter(|e| fit.contains(e))
            .take(best)
            .collect()
    };
    let mut numbers: Vec<String> = numbers_in(question).map(String::from).collect();
    for s in steps.iter().filter(|s| s.tool.name != FINAL_ANSWER) {
        numbers.extend(numbers_in(&s.observation.text).map(String::from));
    }
    numbers.sort();
    numbers.dedup();
    // each AU's largest intensity shown, as written; the main spotted expression (the
    // longest, the last of equals)
    let intensities = aus
        .iter()
        .map(|code| {
            answer_steps(steps, clip)
                .iter()
                .flat_map(|s| s.observation.data["aus"].as_array().into_iter().flatten())
                .filter(|a| a["au"] == code.as_str())
                .filter_map(|a| a["intensity"].as_f64())
                .fold(0.0f32, |m, x| m.max(as_written(x as f32)))
        })
        .collect();
    let spot = steps
        .iter()
        .filter(|s| s.tool.name == "spot_expressions" && !s.observation.error)
        .flat_map(|s| s.observation.data["spots"].as_array().into_iter().flatten())
        .filter_map(|v| serde_json::from_value::<Spot>(v.clone()).ok())
        .max_by_key(|s| (evidence_of(steps, clip, s), s.offset - s.onset))
        .map(|s| When {
            micro: s.kind == SpotKind::Micro,
            onset: s.onset,
            apex: s.apex,
            offset: s.offset,
        });
    let mut choices = AnswerChoices {
        thoughts: if limits.exact_texts {
            fixed_thoughts(steps, clip)
        } else {
            Vec::new()
        },
        claims: Vec::new(),
        aus,
        emotions,
        numbers: Some(numbers),
        text: limits
            .exact_texts
            .then_some(TextFacts { intensities, spot }),
    };
    if limits.exact_texts {
        choices.claims = claims(&choices);
    }
    choices
}

/// The final answer's AU lists ([`tools::answer_branches`], each in the order shown, at most
/// [`CLAIM_LISTS`] per emotion), each with the teacher's thoughts that claim it; with no AU
/// shown, the neutral answer's. Empty where AUs were shown but fit no emotion: the answer is
/// neutral with no AUs and its thought free.
fn claims(answer: &AnswerChoices) -> Vec<(Vec<String>, Vec<String>)> {
    if answer.aus.is_empty() {
        let own = teacher::NOTHING_SHOWN
            .iter()
            .map(|t| t.to_string())
            .collect();
        return vec![(Vec::new(), own)];
    }
    let mut claims: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for branch in tools::answer_branches(answer) {
        for list in branch.lists(CLAIM_LISTS) {
            if claims.iter().any(|(l, _)| *l == list) {
                continue;
            }
            let codes: Vec<&str> = list.iter().map(String::as_str).collect();
            let verbs = if codes.len() == 1 {
                &teacher::CLAIM_ONE
            } else {
                &teacher::CLAIM_MANY
            };
            let thoughts = verbs
                .iter()
                .map(|v| teacher::claim_thought(&codes, v))
                .collect();
            claims.push((list, thoughts));
        }
    }
    claims
}

/// Steps whose thought is the teacher's own words, with the evidence's facts: on a clip where
/// spotting found nothing, the motion step's; before a closer look the loop requires, why
/// (the weakest AU, or none) and the frames. The answer's are per AU list ([`claims`]).
fn fixed_thoughts(steps: &[Step], clip: bool) -> Vec<(String, Vec<String>)> {
    let own = |t: &[&str]| t.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let spots: Vec<Spot> = steps
        .iter()
        .filter(|s| s.tool.name == "spot_expressions" && !s.observation.error)
        .flat_map(|s| s.observation.data["spots"].as_array().into_iter().flatten())
        .filter_map(|v| serde_json::from_value::<Spot>(v.clone()).ok())
        .collect();
    let spotted = steps
        .iter()
        .any(|s| s.tool.name == "spot_expressions" && !s.observation.error);
    let mut fixed = Vec::new();
    let motion_read = steps.iter().any(is_motion_evidence);
    if clip && spotted && spots.is_empty() {
        fixed.push(("au_evidence".to_string(), own(&teacher::NOTHING_SPOTTED)));
    } else if clip && !spots.is_empty() && !motion_read {
        // before the motion is read: the spotted expression, or of several the longest (the
        // teacher's main one before any AU evidence), as the thought calls it
        let longest = spots.iter().map(|s| s.offset - s.onset).max().unwrap_or(0);
        let mut thoughts = Vec::new();
        for s in spots.iter().filter(|s| s.offset - s.onset == longest) {
            let micro = s.kind == SpotKind::Micro;
            let ones: &[&str] = if spots.len() == 1 {
                &teacher::ONE
            } else {
                &[""]
            };
            for one in ones {
                for tail in teacher::READ_MOTION {
                    thoughts.push(teacher::motion_thought(
                        spots.len(),
                        one,
                        micro,
                        s.onset,
                        s.apex,
                        s.offset,
                        tail,
                    ));
                }
            }
        }
        fixed.push(("au_evidence".to_string(), thoughts));
    }
    if clip && !spots.is_empty() && motion_read && weak_motion(steps) {
        // the weakest AU the motion showed (each at its strongest reading), as first written
        let mut shown: Vec<(String, u8, f32)> = Vec::new();
        for s in steps.iter().filter(|s| is_motion_evidence(s)) {
            for a in s.observation.data["aus"].as_array().into_iter().flatten() {
                let (Some(number), Some(x)) = (
                    a["au"]
                        .as_str()
                        .and_then(|c| c.strip_prefix("AU"))
                        .and_then(|n| n.parse::<u8>().ok()),
                    a["intensity"].as_f64(),
                ) else {
                    continue;
                };
                let code = match a["side"].as_str() {
                    Some("left") => format!("L{number}"),
                    Some("right") => format!("R{number}"),
                    _ => format!("AU{number}"),
                };
                match shown.iter_mut().find(|s| s.1 == number) {
                    Some(s) => s.2 = s.2.max(x as f32),
                    None => shown.push((code, number, x as f32)),
                }
            }
        }
        let weakest = shown
            .iter()
            .filter(|s| as_written(s.2) < WEAK)
            .min_by(|a, b| a.2.total_cmp(&b.2));
        let whys: Vec<String> = match weakest {
            Some((code, number, x)) => vec![format!(
                "{} ({code}) is weak at {x:.2}",
                phrasing::name_of(*number)
            )],
            None if shown.is_empty() => own(&teacher::UNREAD),
            None => Vec::new(),
        };
        let mut thoughts = Vec::new();
        for why in &whys {
            for look in teacher::CLOSER_LOOK {
                for s in &spots {
                    thoughts.push(teacher::closer_look_thought(why, look, s.onset, s.apex));
                }
            }
        }
        if !thoughts.is_empty() {
            fixed.push(("optical_flow".to_string(), thoughts));
        }
    }
    fixed
}

/// The most AU lists an answer of one emotion is offered with (the fewest AUs first).
const CLAIM_LISTS: usize = 64;

/// The answer of a final step, each AU joined to the steps that showed it present, the
/// emotion to the latest distribution a tool gave.
fn build_answer(args: &Value, id: usize, steps: &[Step]) -> Answer {
    let label = args["emotion"].as_str().unwrap_or_default().to_string();
    let distribution: Vec<(String, f32)> = steps
        .iter()
        .rev()
        .find_map(|s| serde_json::from_value(s.observation.data["classifier"].clone()).ok())
        .unwrap_or_default();
    let confidence = distribution
        .iter()
        .find(|(e, _)| *e == label)
        .map(|(_, p)| *p);
    let aus = args["aus"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|code| {
            let mut au = AnswerAu {
                au: code.to_string(),
                name: crate::facs::au::AuCode::parse(code)
                    .ok()
                    .and_then(|c| crate::facs::au::info(c.number))
                    .map_or("", |i| i.name)
                    .to_string(),
                intensity: 0.0,
                side: "both".into(),
                evidence: vec![],
            };
            for s in steps {
                let shown = s.observation.data["aus"].as_array().into_iter().flatten();
                for a in shown.filter(|a| a["au"] == code) {
                    let intensity = a["intensity"].as_f64().unwrap_or(0.0) as f32;
                    if !au.evidence.contains(&s.id) {
                        au.evidence.push(s.id);
                    }
                    if intensity > au.intensity {
                        au.intensity = intensity;
                        au.side = a["side"].as_str().unwrap_or("both").to_string();
                    }
                }
            }
            au
        })
        .collect();
    Answer {
        emotion: EmotionAnswer {
            label,
            confidence,
            distribution,
        },
        aus,
        intervals: vec![],
        text: args["text"].as_str().unwrap_or_default().to_string(),
        step: id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(tool: &str, source: &str, aus: &[&str]) -> Step {
        let aus: Vec<Value> = aus.iter().map(|a| serde_json::json!({"au": a})).collect();
        Step {
            id: 1,
            thought: String::new(),
            tool: ToolCall {
                name: tool.into(),
                args: serde_json::json!({"source": source}),
            },
            observation: Observation {
                data: serde_json::json!({"aus": aus}),
                ..Default::default()
            },
            tokens: 0,
            seconds: 0.0,
            images: vec![],
        }
    }

    #[test]
    fn on_a_clip_the_answer_draws_on_the_motion_once_it_was_read() {
        let looks = step("au_evidence", "appearance", &["AU12", "AU6"]);
        let moves = step("au_evidence", "motion", &["AU4", "AU12"]);
        let still = step("au_evidence", "motion", &[]);
        let steps = [looks.clone(), moves];
        assert_eq!(shown(&steps, true), ["AU4", "AU12"]);
        // an image keeps every AU shown; a clip whose motion showed nothing shows nothing
        assert_eq!(shown(&steps, false), ["AU12", "AU6", "AU4"]);
        assert!(shown(&[looks.clone(), still], true).is_empty());
        // before the motion is read, the frame's AUs stand
        assert_eq!(shown(&[looks], true), ["AU12", "AU6"]);
    }

    /// A weak motion reading (an AU under 0.3 as written, or none) waits for a closer look;
    /// a strong one, or one after optical_flow, does not.
    #[test]
    fn a_weak_motion_reading_waits_for_a_closer_look() {
        let with = |x: f64| {
            let mut s = step("au_evidence", "motion", &["AU4"]);
            s.observation.data["aus"][0]["intensity"] = serde_json::json!(x);
            s
        };
        assert!(weak_motion(&[with(0.2)]));
        assert!(weak_motion(&[with(0.2996 - 0.01)]));
        assert!(!weak_motion(&[with(0.2996)]));
        assert!(!weak_motion(&[with(0.8)]));
        assert!(weak_motion(&[step("au_evidence", "motion", &[])]));
        // appearance does not count as motion
        assert!(weak_motion(&[
            step("au_evidence", "appearance", &[]),
            step("au_evidence", "motion", &[])
        ]));
        let flow = step("optical_flow", "", &[]);
        assert!(!weak_motion(&[with(0.2), flow.clone()]));
        let mut refused = flow;
        refused.observation.error = true;
        assert!(weak_motion(&[with(0.2), refused]));
    }

    /// The teacher's own thoughts where the loop leaves one way on: a weak reading's closer
    /// look names the weakest AU and the spotted frames; an answer names exactly the AUs of
    /// its list; a clip where nothing was spotted.
    #[test]
    fn fixed_thoughts_carry_the_evidence() {
        let mut spot = step("spot_expressions", "", &[]);
        spot.observation.data = serde_json::json!({"spots": [
            {"onset": 9, "apex": 12, "offset": 19, "kind": "micro", "peak": 1.0, "score": 9.0,
             "curve": "AU4"}
        ]});
        let mut moved = step("au_evidence", "motion", &["AU15", "AU4"]);
        moved.observation.data["aus"][0]["intensity"] = serde_json::json!(0.42);
        moved.observation.data["aus"][1]["intensity"] = serde_json::json!(0.23);
        let steps = [spot.clone(), moved];
        let fixed = fixed_thoughts(&steps, true);
        let of = |tool: &str| {
            fixed
                .iter()
                .find(|(t, _)| t == tool)
                .map(|(_, v)| v.clone())
        };
        let flow = of("optical_flow").unwrap();
        assert_eq!(flow.len(), 3);
        assert!(flow.contains(&"Brow Lowerer (AU4) is weak at 0.23; look closer with the finer flow model from frame 9 to 12.".to_string()), "{flow:?}");
        assert!(of(FINAL_ANSWER).is_none());
        // the answer: anger and fear claim AU4, disgust AU15, sadness AU15 and AU4 (its
        // prototype's, in the order shown); each list with its own thoughts
        let choices = answer_choices("", &steps, true, &best(0));
        let lists: Vec<&Vec<String>> = choices.claims.iter().map(|(l, _)| l).collect();
        assert_eq!(lists, [&vec!["AU4"], &vec!["AU15"], &vec!["AU15", "AU4"]]);
        let says = |k: usize, t: &str| choices.claims[k].1.contains(&t.to_string());
        assert!(says(2, "AU15 and AU4 are what moved; write the answer."));
        assert!(says(0, "AU4 is what moved; write the answer."));
        let schema = step_schema(&[FINAL_ANSWER], &choices, None, &[]);
        let variants = schema["anyOf"].as_array().unwrap();
        assert_eq!(variants.len(), 3);
        for (v, (list, _)) in variants.iter().zip(&choices.claims) {
            for b in v["properties"]["args"]["anyOf"].as_array().unwrap() {
                assert_eq!(b["properties"]["aus"]["const"], serde_json::json!(list));
            }
        }
        // before the motion was read: the spotted expression's frames
        let before = fixed_thoughts(&steps[..1], true);
        let motion = &before.iter().find(|(t, _)| t == "au_evidence").unwrap().1;
        assert_eq!(motion.len(), 12);
        assert!(motion.contains(
            &"A single micro-expression from frame 9 to 19, apex 12; which AUs moved?".to_string()
        ));
        assert!(of("au_evidence").is_none());
        // nothing spotted: the motion step's thought and a neutral answer's
        let mut none = spot;
        none.observation.data = serde_json::json!({"spots": []});
        let fixed = fixed_thoughts(std::slice::from_ref(&none), true);
        assert_eq!(fixed.len(), 1);
        assert_eq!(fixed[0].1[0], teacher::NOTHING_SPOTTED[0]);
        let choices = answer_choices("", &[none], true, &Limits::default());
        assert_eq!(choices.claims.len(), 1);
        assert!(choices.claims[0].0.is_empty());
        assert_eq!(choices.claims[0].1[1], teacher::NOTHING_SHOWN[1]);
    }

    /// Limits that let the answer choose among the `n` best emotions.
    fn best(n: usize) -> Limits {
        Limits {
            emotions: n,
            ..Limits::default()
        }
    }

    /// An appearance step that shows `aus` and ranks `emotions` first to last.
    fn ranked(aus: &[&str], emotions: &[&str]) -> Step {
        let mut s = step("au_evidence", "appearance", aus);
        let p: Vec<f32> = (0..emotions.len())
            .map(|k| 0.5f32.powi(k as i32 + 1))
            .collect();
        s.observation.data["prototypes"] = emotions
            .iter()
            .zip(p)
            .map(|(e, p)| serde_json::json!([e, p]))
            .collect();
        s
    }

    #[test]
    fn the_answer_may_name_the_best_matching_emotions() {
        use crate::facs::emotion::Emotion::*;
        // AU1, AU2, AU5, AU26: all of surprise, four of fear's seven; AU5 alone is a part
        // of anger, AU1 a part of sadness
        let aus = ["AU1", "AU2", "AU5", "AU26"];
        let open = [ranked(
            &aus,
            &[
                "fear",
                "neutral",
                "surprise",
                "happiness",
                "anger",
                "sadness",
            ],
        )];
        let all = answer_choices("", &open, false, &best(0));
        assert_eq!(all.aus, aus);
        assert!(all.emotions.is_empty());
        assert_eq!(fitting_emotions(&all.aus), [Surprise, Anger, Sadness, Fear]);
        // neutral and happiness do not fit these AUs, so are passed over
        assert_eq!(answer_choices("", &open, false, &best(1)).emotions, [Fear]);
        assert_eq!(
            answer_choices("", &open, false, &best(2)).emotions,
            [Fear, Surprise]
        );
        assert_eq!(answer_choices("", &open, false, &best(9)).emotions.len(), 4);
        // the latest ranking counts; a step without one leaves every fitting emotion
        let later = ranked(&["AU1"], &["sadness", "fear"]);
        let both = [open[0].clone(), later];
        assert_eq!(
            answer_choices("", &both, false, &best(1)).emotions,
            [Sadness]
        );
        let plain = [step("au_evidence", "appearance", &aus)];
        assert!(answer_choices("", &plain, false, &best(1))
            .emotions
            .is_empty());
        // on a clip whose motion showed AUs, the motion's ranking, not the frame's
        let mut moved = ranked(&["AU12"], &["contempt", "happiness"]);
        moved.tool.args["source"] = "motion".into();
        let clip = [open[0].clone(), moved];
        let c = answer_choices("", &clip, true, &best(1));
        assert_eq!(
            (c.aus, c.emotions),
            (vec!["AU12".to_string()], vec![Contempt])
        );
    }
}
