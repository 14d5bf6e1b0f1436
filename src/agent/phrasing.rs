//! The texts people read, in one place: an answer's text and an explanation, each written
//! from its facts (the AUs cited with the intensities shown, the main spotted expression, the
//! emotion) with a choice of phrasings.
//!
//! One function writes each text through a [`Writer`]: [`Pick`] chooses one phrasing per
//! slot with a seeded generator (the teacher's training texts), [`Pattern`] allows every one
//! (a regular expression the step schema and `actfer explain` decode under). So a model
//! trained on the one writes within the other, and every fact it writes (an AU's name, code
//! and action, a frame, the intensity word, the emotion) is the evidence's.

use crate::facs::au::info;
use crate::facs::emotion::Emotion;
use crate::synth::rng::Rng;

/// An AU shown under this intensity is a weak reading: a closer look is worth it, and a text
/// says the movement is slight.
pub const WEAK: f32 = 0.3;

/// The longest answer text the teacher writes: its fullest form that fits, else its shortest.
pub const ANSWER_CHARS: usize = 240;

/// Where texts come from: one phrasing per slot, or all of them as a pattern.
pub trait Writer {
    /// Text that stands as it is.
    fn lit(&self, s: &str) -> String;
    /// One of `options`.
    fn one(&mut self, options: &[&str]) -> String;
    /// One of the whole `texts` (made by this writer): the first of at most `max`
    /// characters, else the last.
    fn first_within(&self, texts: Vec<String>, max: usize) -> String;
}

/// Picks one phrasing per slot with a seeded generator.
pub struct Pick<'a>(pub &'a mut Rng);

impl Writer for Pick<'_> {
    fn lit(&self, s: &str) -> String {
        s.to_string()
    }
    fn one(&mut self, options: &[&str]) -> String {
        self.0.pick(options).to_string()
    }
    fn first_within(&self, texts: Vec<String>, max: usize) -> String {
        let last = texts.last().cloned().unwrap_or_default();
        texts.into_iter().find(|t| t.len() <= max).unwrap_or(last)
    }
}

/// Allows every phrasing: the text is a regular expression (unanchored).
pub struct Pattern;

impl Writer for Pattern {
    fn lit(&self, s: &str) -> String {
        regex::escape(s)
    }
    fn one(&mut self, options: &[&str]) -> String {
        let alts: Vec<String> = options.iter().map(|o| regex::escape(o)).collect();
        format!("(?:{})", alts.join("|"))
    }
    fn first_within(&self, texts: Vec<String>, _max: usize) -> String {
        format!("(?:{})", texts.join("|"))
    }
}

/// An AU a text cites: its code as the answer lists it (`AU12`), and the intensity shown
/// (the largest any observation gave, to two decimals as observations write it).
#[derive(Debug, Clone, PartialEq)]
pub struct Cited {
    pub code: String,
    pub number: u8,
    pub intensity: f32,
}

/// The main spotted expression, as a text gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct When {
    pub micro: bool,
    pub onset: usize,
    pub apex: usize,
    pub offset: usize,
}

/// An intensity as observations write it (two decimals), so a word chosen from it is the
/// same whether read from the text or from the data.
pub fn as_written(x: f32) -> f32 {
    (x * 100.0).round() / 100.0
}

/// The plain word for an intensity.
pub fn intensity_word(x: f32) -> &'static str {
    match x {
        x if x < WEAK => "slight",
        x if x < 0.55 => "moderate",
        x if x < 0.8 => "marked",
        _ => "strong",
    }
}

/// An answer's text: each cited AU by name and code with what it does (the later ones by
/// name only when the text would be long), when (the main expression on a clip), the plain
/// intensity word of the strongest, the emotion, and how sure that is. Without AUs, a
/// neutral reading, with the frames of what moved on a clip.
pub fn answer_text(
    w: &mut dyn Writer,
    emotion: Emotion,
    cited: &[Cited],
    spot: Option<When>,
) -> String {
    let Some(first) = cited.first() else {
        if let Some(s) = spot {
            let moved = w.one(&[
                "Something moved",
                "The face moved slightly",
                "A slight movement shows",
            ]);
            let but = w.one(&[
                "but no action unit was clear enough to claim",
                "but no action unit moved clearly",
            ]);
            return format!(
                "{moved}{}{but}{}",
                w.lit(&format!(" from frame {} to {}, ", s.onset, s.offset)),
                w.lit(", so the face reads as neutral.")
            );
        }
        return w.one(&[
            "No action unit moved clearly, so the face reads as neutral.",
            "The face shows no clear action unit: neutral.",
        ]);
    };
    let when = match spot {
        Some(s) => {
            let how = if s.micro {
                w.one(&[
                    "in a brief micro-expression",
                    "as a micro-expression",
                    "for a moment",
                ])
            } else {
                w.one(&["in a longer macro-expression", "as a macro-expression"])
            };
            format!(
                "{}{how}{}",
                w.lit(" "),
                w.lit(&format!(" from frame {} to {}", s.onset, s.offset))
            )
        }
        None => String::new(),
    };
    let strength = cited.iter().map(|s| s.intensity).fold(0.0f32, f32::max);
    let word = intensity_word(strength);
    let sure = if strength < WEAK {
        w.one(&["so the reading is uncertain", "a tentative reading"])
    } else if strength < 0.55 {
        w.one(&["a fairly sure reading", "so the reading is fairly sure"])
    } else {
        w.one(&["a clear reading", "so the reading is sure"])
    };
    let reads = w.one(&["reads as", "points to", "suggests"]);
    let cite = |s: &Cited, act: bool| {
        let mut c = format!("{} ({})", name_of(s.number), s.code);
        if act {
            c = format!("{c} {}", action(s.number));
        }
        w.lit(&c)
    };
    // `A (AU1) does this, B (AU2) does that and C (AU5) does more`, or with names only after
    // the first: `A (AU1) does this, with B (AU2) and C (AU5)`
    let compose = |acts: bool, sure: Option<&str>| {
        let mut t = cite(first, true);
        let rest: Vec<String> = cited[1..].iter().map(|s| cite(s, acts)).collect();
        match (acts, rest.len()) {
            (_, 0) => {}
            (true, 1) => t.push_str(&format!("{}{}", w.lit(" and "), rest[0])),
            (true, _) => t.push_str(&format!("{}{}", w.lit(", "), join_with(w, &rest))),
            (false, _) => t.push_str(&format!("{}{}", w.lit(", with "), join_with(w, &rest))),
        }
        t.push_str(&when);
        t.push_str(&w.lit(&format!(". The movement is {word} and ")));
        t.push_str(&format!(
            "{reads}{}",
            w.lit(&format!(" {}", emotion.name()))
        ));
        if let Some(sure) = sure {
            t.push_str(&format!("{}{sure}", w.lit(", ")));
        }
        t.push_str(&w.lit("."));
        t
    };
    // the fullest text that fits: each AU with what it does, then the later ones by name
    // only, then without the certainty
    let texts = vec![
        compose(true, Some(&sure)),
        compose(false, Some(&sure)),
        compose(false, None),
    ];
    w.first_within(texts, ANSWER_CHARS)
}

/// The phrasings of an explanation's slots.
const MICRO: [&str; 3] = [
    "A brief micro-expression",
    "A micro-expression",
    "A fleeting micro-expression",
];
const MACRO: [&str; 2] = ["A longer macro-expression", "A macro-expression"];

/// An explanation of one spotted expression as `actfer explain` asks for it: when, what moved
/// (each AU by name, code and what it does), what it suggests and how sure that is. `cited`
/// holds every AU that moved, in the order the evidence lists them.
pub fn explanation(w: &mut dyn Writer, spot: When, cited: &[Cited], emotion: Emotion) -> String {
    let kind = if spot.micro {
        w.one(&MICRO)
    } else {
        w.one(&MACRO)
    };
    let span = format!(
        "from frame {} to {} (apex {})",
        spot.onset, spot.offset, spot.apex
    );
    if cited.is_empty() {
        return format!(
            "{}{}",
            w.lit(&format!(
                "Something moved {span}, but no action unit is clear, so the movement "
            )),
            w.one(&[
                "cannot be read with confidence.",
                "gives no reliable reading."
            ])
        );
    }
    let clauses: Vec<String> = cited
        .iter()
        .map(|a| {
            let c = format!("{} ({}) {}", name_of(a.number), a.code, action(a.number));
            w.lit(&c)
        })
        .collect();
    let moved = format!(
        "{kind}{}{}{}",
        w.lit(&format!(" {span}: ")),
        join_with(w, &clauses),
        w.lit(".")
    );
    if emotion == Emotion::Neutral {
        // movement that matches no emotion's pattern: say so, not "suggests neutral"
        let none =
            w.lit(" Together these match no emotion's pattern, so the face reads as neutral.");
        return format!("{moved}{none}");
    }
    let together = w.one(&["Together this", "This pattern", "The movement"]);
    let reads = w.one(&["reads as", "points to", "suggests"]);
    let suggests = format!(
        "{}{together}{}{reads}{}",
        w.lit(" "),
        w.lit(" "),
        w.lit(&format!(" {}.", emotion.name()))
    );
    let strongest = cited.iter().map(|a| a.intensity).fold(0.0f32, f32::max);
    let weakest = cited.iter().map(|a| a.intensity).fold(1.0f32, f32::min);
    let word = intensity_word(strongest);
    let sure = if strongest < WEAK {
        format!(
            "{}{}",
            w.lit(" Every movement is slight, so the reading is "),
            w.one(&["uncertain.", "tentative."])
        )
    } else if weakest < WEAK && cited.len() > 1 {
        format!(
            "{}{}",
            w.lit(&format!(
                " The movements range from slight to {word}, so the reading is "
            )),
            w.one(&["fairly sure.", "reasonably sure."])
        )
    } else {
        let sure = if strongest < 0.55 {
            "fairly sure"
        } else {
            "sure"
        };
        w.lit(&format!(
            " The movement is {word}, so the reading is {sure}."
        ))
    };
    format!("{moved}{suggests}{sure}")
}

/// `A`, `A and B`, `A, B and C` of pieces the writer made.
fn join_with(w: &dyn Writer, items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}{}{last}", init.join(&w.lit(", ")), w.lit(" and ")),
    }
}

/// An AU's catalogue name.
pub fn name_of(number: u8) -> &'static str {
    info(number).map_or("", |a| a.name)
}

/// What an AU does, in plain words that name the face part it acts on.
pub fn action(number: u8) -> &'static str {
    match number {
        1 => "raises the inner brows",
        2 => "raises the outer brows",
        4 => "lowers the brows and draws them together",
        5 => "raises the upper lids",
        6 => "lifts the cheeks",
        7 => "tightens the lids",
        9 => "wrinkles the nose",
        10 => "lifts the upper lip",
        11 => "deepens the nasolabial furrow",
        12 => "pulls the lip corners up",
        14 => "dimples the mouth corners",
        15 => "pulls the lip corners down",
        16 => "lowers the lower lip",
        17 => "pushes the chin up",
        18 => "puckers the lips",
        20 => "stretches the lips sideways",
        22 => "funnels the lips",
        23 => "tightens the lips",
        24 => "presses the lips together",
        25 => "parts the lips",
        26 => "drops the jaw",
        27 => "stretches the mouth open",
        28 => "sucks in the lips",
        43 => "closes the eyes",
        45 => "closes the eyes briefly",
        46 => "closes one eye",
        _ => "moves",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn whole(p: String) -> Regex {
        Regex::new(&format!("^(?:{p})$")).unwrap()
    }

    fn au(code: &str, number: u8, intensity: f32) -> Cited {
        Cited {
            code: code.into(),
            number,
            intensity,
        }
    }

    const SPOT: When = When {
        micro: true,
        onset: 8,
        apex: 12,
        offset: 19,
    };

    /// Every text the teacher writes matches its pattern, and the pattern holds no other fact:
    /// another frame, AU name, action, emotion or intensity word is refused.
    #[test]
    fn texts_match_their_patterns_and_nothing_else_does() {
        let cases = [
            vec![],
            vec![au("AU26", 26, 0.19), au("AU20", 20, 0.16)],
            vec![au("AU5", 5, 0.72), au("AU23", 23, 0.68), au("R7", 7, 0.25)],
            vec![
                au("AU1", 1, 0.9),
                au("AU2", 2, 0.5),
                au("AU4", 4, 1.0),
                au("AU5", 5, 0.4),
                au("AU7", 7, 0.3),
                au("AU20", 20, 0.3),
                au("AU26", 26, 0.9),
            ],
        ];
        for spot in [
            Some(SPOT),
            Some(When {
                micro: false,
                ..SPOT
            }),
            None,
        ] {
            for cited in &cases {
                let answer = whole(answer_text(&mut Pattern, Emotion::Fear, cited, spot));
                let explained =
                    spot.map(|s| whole(explanation(&mut Pattern, s, cited, Emotion::Fear)));
                for seed in 0..30 {
                    let mut rng = Rng::new(seed);
                    let t = answer_text(&mut Pick(&mut rng), Emotion::Fear, cited, spot);
                    assert!(answer.is_match(&t), "{t}");
                    if let (Some(s), Some(re)) = (spot, &explained) {
                        let t = explanation(&mut Pick(&mut rng), s, cited, Emotion::Fear);
                        assert!(re.is_match(&t), "{t}");
                    }
                }
            }
        }
        let cited = [au("AU5", 5, 0.72), au("AU23", 23, 0.68), au("R7", 7, 0.25)];
        let mut rng = Rng::new(3);
        let text = explanation(&mut Pick(&mut rng), SPOT, &cited, Emotion::Anger);
        let re = whole(explanation(&mut Pattern, SPOT, &cited, Emotion::Anger));
        let answer = answer_text(&mut Pick(&mut rng), Emotion::Anger, &cited, Some(SPOT));
        let answer_re = whole(answer_text(
            &mut Pattern,
            Emotion::Anger,
            &cited,
            Some(SPOT),
        ));
        for (from, to) in [
            ("frame 8", "frame 7"),
            ("(AU23)", "(AU24)"),
            ("anger", "fear"),
            ("marked", "strong"),
            ("tightens the lips", "presses the lips together"),
        ] {
            assert!(text.contains(from), "{text}");
            assert!(!re.is_match(&text.replace(from, to)), "{from} -> {to}");
            assert!(answer.contains(from), "{answer}");
            assert!(
                !answer_re.is_match(&answer.replace(from, to)),
                "{from} -> {to}"
            );
        }
    }

    /// Movement that matches no emotion is said to, not "suggests neutral".
    #[test]
    fn an_explanation_of_movement_that_fits_no_emotion() {
        let cited = [au("AU14", 14, 0.24), au("AU24", 24, 0.23)];
        let text = explanation(&mut Pick(&mut Rng::new(1)), SPOT, &cited, Emotion::Neutral);
        assert!(text.ends_with("match no emotion's pattern, so the face reads as neutral."));
        assert!(text.contains("Dimpler (AU14)"), "{text}");
        assert!(whole(explanation(&mut Pattern, SPOT, &cited, Emotion::Neutral)).is_match(&text));
    }

    #[test]
    fn words_for_intensities() {
        assert_eq!(intensity_word(0.29), "slight");
        assert_eq!(intensity_word(as_written(0.2996)), "moderate");
        assert_eq!(intensity_word(0.7), "marked");
        assert_eq!(intensity_word(1.0), "strong");
    }
}
