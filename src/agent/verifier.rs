//! Checks of an answer against the run's evidence: every claimed AU shown present by a cited
//! step, the emotion compatible with the claimed AUs, evidence gathered before answering, the
//! text citing only claimed AUs, each for a face part where it acts, and the text's words
//! ([`super::words`]: no other emotion, nothing outside the catalogue, only AUs and frames
//! the observations showed, no non-words).

use super::trace::{Answer, Check, Step};
use super::words::{self, Evidence, Problem, Vocabulary};
use crate::facs::au::{info, mask, AuCode};
use crate::facs::catalogue::{face_parts, FacePart};
use crate::facs::emotion::Emotion;
use crate::facs::evidence::PRESENT;

/// The checks, in a fixed order.
pub fn verify(answer: &Answer, steps: &[Step]) -> Vec<Check> {
    let unsupported: Vec<&str> = answer
        .aus
        .iter()
        .filter(|a| a.evidence.is_empty() || a.intensity < PRESENT)
        .map(|a| a.au.as_str())
        .collect();
    let numbers: Vec<u8> = answer
        .aus
        .iter()
        .filter_map(|a| claimed_number(&a.au))
        .collect();
    let emotion = Emotion::parse(&answer.emotion.label);
    let looked = steps.iter().filter(|s| super::run::is_evidence(s)).count();
    vec![
        Check {
            name: "aus_have_evidence".into(),
            passed: unsupported.is_empty(),
            detail: if unsupported.is_empty() {
                format!(
                    "each of the {} AU(s) is present (intensity >= {PRESENT}) in a cited step",
                    answer.aus.len()
                )
            } else {
                format!("no step shows {} present", unsupported.join(", "))
            },
        },
        Check {
            name: "emotion_fits_aus".into(),
            passed: emotion
                .as_ref()
                .is_ok_and(|e| e.compatible_with(mask(&numbers))),
            detail: match &emotion {
                Ok(e) if e.prototype().is_empty() => format!("{} fits no claimed AU", e.name()),
                Ok(e) => format!(
                    "{} needs at least half of its prototype ({}) among the claimed AUs, or \
                     only AUs of it",
                    e.name(),
                    e.prototype()
                        .iter()
                        .map(|n| format!("AU{n}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                Err(e) => e.clone(),
            },
        },
        Check {
            name: "evidence_before_answer".into(),
            passed: looked > 0,
            detail: format!("{looked} evidence step(s) before the answer"),
        },
        text_matches_aus(answer),
        text_words(answer, steps),
    ]
}

/// The words checks ([`super::words`]) on the answer's text, against every observation of the
/// run and the answer's emotion.
pub fn text_words(answer: &Answer, steps: &[Step]) -> Check {
    let check = |passed, detail| Check {
        name: "text_words".into(),
        passed,
        detail,
    };
    let vocab = match Vocabulary::shared() {
        Ok(v) => v,
        Err(e) => return check(false, format!("the words were not checked: {e}")),
    };
    let evidence = Evidence::from_steps("", steps, Emotion::parse(&answer.emotion.label).ok());
    let problems = words::check(&answer.text, &evidence, &vocab);
    if problems.is_empty() {
        check(
            true,
            "the text names no other emotion, nothing outside the catalogue, only what the \
             observations showed, and no non-words"
                .into(),
        )
    } else {
        let said: Vec<String> = problems.iter().map(Problem::describe).collect();
        check(false, said.join("; "))
    }
}

/// Words that name a face part, and the parts they name. Where each AU acts comes from the
/// region table ([`face_parts`]); this list only reads English.
const PART_WORDS: &[(&str, &[FacePart])] = {
    use FacePart::*;
    &[
        ("brow", &[Brows]),
        ("brows", &[Brows]),
        ("eyebrow", &[Brows]),
        ("eyebrows", &[Brows]),
        ("forehead", &[Brows]),
        ("glabella", &[Brows]),
        ("lid", &[Eyelids]),
        ("lids", &[Eyelids]),
        ("eyelid", &[Eyelids]),
        ("eyelids", &[Eyelids]),
        ("eye", &[Eyelids]),
        ("eyes", &[Eyelids]),
        ("nose", &[Nose]),
        ("nostril", &[Nose]),
        ("nostrils", &[Nose]),
        ("nasolabial", &[Nose, Cheeks]),
        ("cheek", &[Cheeks]),
        ("cheeks", &[Cheeks]),
        ("corner", &[MouthCorners]),
        ("corners", &[MouthCorners]),
        ("dimple", &[MouthCorners]),
        ("dimples", &[MouthCorners]),
        ("lip", &[Lips, MouthCorners]),
        ("lips", &[Lips, MouthCorners]),
        ("mouth", &[Lips, MouthCorners]),
        ("chin", &[Chin]),
        ("jaw", &[Chin]),
    ]
};

/// Words that end a clause (besides `,;:.!?`, dashes and line ends).
const CLAUSE_WORDS: &[&str] = &["and", "while", "whilst", "but", "whereas", "then"];

/// Words that may stand between citations of one group: `(AU1 and AU2)`, `AU6 with AU12`.
const JOINING_WORDS: &[&str] = &["and", "or", "with", "plus"];

/// One AU the text cites: its number and the byte range of the citation.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Citation {
    number: u8,
    start: usize,
    end: usize,
}

/// A citation starting at byte `i` (at a word start): `AU4`, `AU 4`, `AU-4`, `au4`, `RAU12`, and
/// `R12` / `L12` for one-sided AUs; with `bare`, a plain number too (after `+` in `AU1+2`). An
/// intensity letter may follow (`AU12C`). Returns the number and the citation's end.
fn citation_at(b: &[u8], i: usize, bare: bool) -> Option<(u8, usize)> {
    let mut j = i;
    let sided = matches!(b.get(j), Some(b'R' | b'L'));
    if sided {
        j += 1;
    }
    let prefixed = b.len() >= j + 2 && b[j..j + 2].eq_ignore_ascii_case(b"AU");
    if prefixed {
        j += 2;
        if matches!(b.get(j), Some(b' ' | b'-')) && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
    } else if !sided && !bare {
        return None;
    }
    let digits = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 2 {
        return None;
    }
    let number: u8 = std::str::from_utf8(&b[j..j + digits]).ok()?.parse().ok()?;
    j += digits;
    if matches!(b.get(j), Some(b'A'..=b'E')) && !b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric)
    {
        j += 1;
    }
    if b.get(j).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    // `R12` without `AU` only where it can mean a one-sided AU, not any letter and number
    if sided && !prefixed && !info(number).is_some_and(|a| a.one_sided) {
        return None;
    }
    Some((number, j))
}

/// Every AU the text cites, in order; `AU1+2` cites two.
fn citations(text: &str) -> Vec<Citation> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let word_start = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let Some((number, end)) = citation_at(b, i, false).filter(|_| word_start) else {
            i += 1;
            continue;
        };
        out.push(Citation {
            number,
            start: i,
            end,
        });
        i = end;
        // `AU1+2`, `AU1 + AU2`
        loop {
            let mut k = i;
            while b.get(k) == Some(&b' ') {
                k += 1;
            }
            if b.get(k) != Some(&b'+') {
                break;
            }
            k += 1;
            while b.get(k) == Some(&b' ') {
                k += 1;
            }
            let Some((number, end)) = citation_at(b, k, true) else {
                break;
            };
            out.push(Citation {
                number,
                start: k,
                end,
            });
            i = end;
        }
    }
    out
}

/// Whether the text between two citations joins them into one group: only spaces, commas,
/// `+`, `/`, `&` and joining words (`(AU4, AU7)`, `AU1 and AU2`), no bracket or sentence end.
fn joined(between: &str) -> bool {
    between
        .chars()
        .all(|c| c.is_whitespace() || c.is_alphabetic() || matches!(c, ',' | '+' | '/' | '&'))
        && words(between).all(|w| JOINING_WORDS.contains(&w.as_str()))
}

/// Whether a character ends a clause.
fn ends_clause(c: char) -> bool {
    matches!(
        c,
        ',' | ';' | ':' | '.' | '!' | '?' | '\n' | '\u{2013}' | '\u{2014}'
    )
}

/// The clauses of a piece of text between citations, as byte ranges into it.
fn clauses(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut word: Option<usize> = None;
    for (i, c) in s.char_indices().chain([(s.len(), ' ')]) {
        if c.is_alphabetic() {
            word.get_or_insert(i);
            continue;
        }
        if let Some(w) = word.take() {
            if CLAUSE_WORDS.contains(&s[w..i].to_lowercase().as_str()) {
                out.push((start, w));
                start = i;
            }
        }
        if ends_clause(c) {
            out.push((start, i));
            start = i + c.len_utf8();
        }
    }
    out.push((start, s.len()));
    out
}

/// The lowercase words of a piece of text.
fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The face parts a clause names.
fn parts_named(clause: &str) -> Vec<FacePart> {
    let mut parts = Vec::new();
    for w in words(clause) {
        let named = PART_WORDS.iter().filter(|(word, _)| *word == w);
        for &p in named.flat_map(|(_, ps)| ps.iter()) {
            if !parts.contains(&p) {
                parts.push(p);
            }
        }
    }
    parts
}

/// A claimed AU's number, whatever its written form (`AU12`, `R12`, `12`).
fn claimed_number(code: &str) -> Option<u8> {
    AuCode::parse(code).map(|c| c.number).ok().or_else(|| {
        code.trim_start_matches(['R', 'L'])
            .trim_start_matches("AU")
            .parse()
            .ok()
    })
}

/// `AU4, the Brow Lowerer (brows)`.
fn describe(number: u8) -> String {
    let name = info(number).map_or("", |a| a.name);
    let parts: Vec<&str> = face_parts(number).into_iter().map(FacePart::name).collect();
    format!("AU{number}, the {name} ({})", parts.join(", "))
}

/// The text cites only claimed AUs, and the clause at each citation names (if any face part)
/// a part where the cited AU acts, by the region table: `the lids tighten (AU4)` fails, AU4
/// being the Brow Lowerer. The clause is the one just before the citation, split at `,;:.!?`,
/// `and`, `while`, ... and the previous citation; where it names no part and the citation
/// opens its clause (`AU4 pulls the brows down`), the clause after it. Citations standing
/// together (`(AU4, AU7)`, `AU1+2`) share their clause, which fits when it fits any of them.
pub fn text_matches_aus(answer: &Answer) -> Check {
    let check = |passed, detail| Check {
        name: "text_matches_aus".into(),
        passed,
        detail,
    };
    let text = answer.text.as_str();
    if text.trim().is_empty() {
        return check(true, "the text is empty".into());
    }
    let cited = citations(text);
    if cited.is_empty() {
        return check(true, "the text cites no AU".into());
    }
    let claimed: Vec<u8> = answer
        .aus
        .iter()
        .filter_map(|a| claimed_number(&a.au))
        .collect();

    let mut groups: Vec<Vec<Citation>> = Vec::new();
    for c in &cited {
        match groups.last_mut() {
            Some(g) if joined(&text[g[g.len() - 1].end..c.start]) => g.push(*c),
            _ => groups.push(vec![*c]),
        }
    }

    let mut problems = Vec::new();
    for (k, g) in groups.iter().enumerate() {
        let from = if k == 0 {
            0
        } else {
            groups[k - 1].last().unwrap().end
        };
        let to = groups.get(k + 1).map_or(text.len(), |n| n[0].start);
        let (start, end) = (g[0].start, g[g.len() - 1].end);
        let before = &text[from..start];
        let (b0, b1) = *clauses(before).last().unwrap();
        let mut clause = &before[b0..b1];
        if parts_named(clause).is_empty() {
            let after = &text[end..to];
            let (a0, a1) = clauses(after)[0];
            clause = &after[a0..a1];
        }
        let named = parts_named(clause);
        let known: Vec<u8> = g
            .iter()
            .map(|c| c.number)
            .filter(|&n| info(n).is_some())
            .collect();
        let acts = known
            .iter()
            .any(|&n| face_parts(n).iter().any(|p| named.contains(p)));
        if !named.is_empty() && !known.is_empty() && !acts {
            let phrase = clause.trim_matches(|c: char| {
                c.is_whitespace() || matches!(c, '(' | '[' | ')' | ']' | '"' | '\'')
            });
            let aus: Vec<String> = known.iter().map(|&n| describe(n)).collect();
            problems.push(format!(
                "the text says \"{phrase}\" for {}",
                aus.join(", and ")
            ));
        }
    }
    let mut unclaimed: Vec<u8> = Vec::new();
    for c in &cited {
        if !claimed.contains(&c.number) && !unclaimed.contains(&c.number) {
            unclaimed.push(c.number);
        }
    }
    for n in unclaimed {
        problems.push(if info(n).is_some() {
            format!("AU{n} is cited in the text but not claimed")
        } else {
            format!("AU{n} is cited in the text but is not in the AU catalogue")
        });
    }
    if problems.is_empty() {
        check(
            true,
            format!(
                "the text's {} AU citation(s) name the claimed AUs where they act",
                cited.len()
            ),
        )
    } else {
        check(false, problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::trace::{AnswerAu, EmotionAnswer};

    fn answer(aus: &[&str], text: &str) -> Answer {
        Answer {
            emotion: EmotionAnswer {
                label: "anger".into(),
                confidence: None,
                distribution: vec![],
            },
            aus: aus
                .iter()
                .map(|au| AnswerAu {
                    au: au.to_string(),
                    name: String::new(),
                    intensity: 0.5,
                    side: "both".into(),
                    evidence: vec![1],
                })
                .collect(),
            intervals: vec![],
            text: text.into(),
            step: 2,
        }
    }

    fn check(aus: &[&str], text: &str) -> Check {
        text_matches_aus(&answer(aus, text))
    }

    #[test]
    fn the_prompt_examples_pass() {
        // the two few-shot answers of prompts/agent_system.md
        let c = check(
            &["AU6", "AU12"],
            "Cheek Raiser (AU6) with Lip Corner Puller (AU12): a smile.",
        );
        assert!(c.passed, "{}", c.detail);
        assert_eq!(
            c.detail,
            "the text's 2 AU citation(s) name the claimed AUs where they act"
        );
        let c = check(
            &["AU4", "AU7"],
            "Brow Lowerer (AU4) and Lid Tightener (AU7) from frame 10 to 14: anger.",
        );
        assert!(c.passed, "{}", c.detail);
        let c = check(
            &["AU15", "AU4", "AU1"],
            "the lip corners pull down (AU15), the brows lower (AU4) and the inner brows rise (AU1)",
        );
        assert!(c.passed, "{}", c.detail);
        assert!(c.detail.starts_with("the text's 3 AU"), "{}", c.detail);
    }

    #[test]
    fn a_copied_phrase_on_the_wrong_au_fails() {
        let c = check(&["AU4"], "The brows lower (AU4) and the lids tighten (AU4)");
        assert!(!c.passed);
        assert_eq!(
            c.detail,
            "the text says \"the lids tighten\" for AU4, the Brow Lowerer (brows)"
        );
        let c = check(&["AU4"], "lids tighten (AU4)");
        assert!(!c.passed);
        assert_eq!(
            c.detail,
            "the text says \"lids tighten\" for AU4, the Brow Lowerer (brows)"
        );
        let c = check(&["AU6", "AU12"], "The lip corners pull up (AU6).");
        assert!(!c.passed);
        assert!(
            c.detail.contains(
                "\"The lip corners pull up\" for AU6, the Cheek Raiser (eyelids, cheeks)"
            ),
            "{}",
            c.detail
        );
    }

    #[test]
    fn cited_aus_must_be_claimed() {
        let c = check(
            &["AU4"],
            "The brows lower (AU4) and the lids tighten (AU7).",
        );
        assert!(!c.passed);
        assert_eq!(c.detail, "AU7 is cited in the text but not claimed");
        // both problems, the phrase first
        let c = check(
            &["AU4"],
            "The brows lower (AU4), the lids tighten (AU4), AU7 and AU99 too.",
        );
        assert!(!c.passed);
        assert_eq!(
            c.detail,
            "the text says \"the lids tighten\" for AU4, the Brow Lowerer (brows); \
             AU7 is cited in the text but not claimed; \
             AU99 is cited in the text but is not in the AU catalogue"
        );
        // side prefixes on either side compare by number
        assert!(check(&["R12"], "the right lip corner pulls up (AU12)").passed);
        assert!(check(&["AU12"], "the right lip corner pulls up (R12)").passed);
        assert!(check(&["RAU12", "14"], "corners up (AU 12), dimples (L14)").passed);
        assert!(!check(&["AU6"], "the right corner pulls up (R12)").passed);
    }

    #[test]
    fn what_counts_as_a_citation() {
        let numbers = |t: &str| citations(t).iter().map(|c| c.number).collect::<Vec<_>>();
        assert_eq!(
            numbers("AU4, (AU7), AU 12, au6, AU-9, AU25C"),
            [4, 7, 12, 6, 9, 25]
        );
        assert_eq!(numbers("brows up (AU1+2), AU1 + AU5"), [1, 2, 1, 5]);
        assert_eq!(numbers("R12 and L14, RAU6"), [12, 14, 6]);
        // not citations: other words and numbers, sides on AUs that cannot be one-sided,
        // three digits
        assert!(numbers("AUDIO4 GAU4 AU123 frame 12, R2D2, L26 R9 P12 AU12x").is_empty());
        assert!(check(&["AU4"], "frame 12 to 14, 0.62 strong").passed);
    }

    #[test]
    fn clauses_and_groups() {
        // no face part in the clause: nothing to contradict
        assert!(check(&["AU4"], "Anger (AU4).").passed);
        // a part where the AU acts, among others, is enough
        assert!(check(&["AU4"], "the brows lower over the eyes (AU4)").passed);
        assert!(check(&["AU26"], "the mouth opens as the jaw drops (AU26)").passed);
        // a citation that opens its clause reads the words after it
        assert!(check(&["AU4"], "AU4 pulls the brows down").passed);
        let c = check(&["AU4"], "AU4 tightens the lids, a stare");
        assert!(!c.passed);
        assert!(c.detail.contains("\"tightens the lids\""), "{}", c.detail);
        // citations together share their clause
        assert!(check(&["AU4", "AU7"], "the lids tighten (AU4, AU7)").passed);
        assert!(check(&["AU1", "AU2"], "the brows rise (AU1+2)").passed);
        let c = check(&["AU1", "AU2"], "the lips part (AU1+2)");
        assert!(!c.passed);
        assert!(
            c.detail.ends_with(
                "for AU1, the Inner Brow Raiser (brows), and AU2, the Outer Brow Raiser (brows)"
            ),
            "{}",
            c.detail
        );
    }

    #[test]
    fn an_empty_text_passes_and_the_words_check_comes_last() {
        let c = check(&["AU4"], "  ");
        assert!(c.passed);
        assert_eq!(c.detail, "the text is empty");
        assert!(check(&[], "a smile").passed);
        let names: Vec<String> = verify(&answer(&["AU4"], "lids tighten (AU4)"), &[])
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(
            names,
            [
                "aus_have_evidence",
                "emotion_fits_aus",
                "evidence_before_answer",
                "text_matches_aus",
                "text_words"
            ]
        );
    }

    #[test]
    fn one_sided_aus_count_towards_the_emotion() {
        // R12 is half of happiness's prototype (AU6 + AU12); AU4 is none of it
        let mut a = answer(&["R12"], "");
        a.emotion.label = "happiness".into();
        let checks = verify(&a, &[]);
        assert_eq!(checks[1].name, "emotion_fits_aus");
        assert!(checks[1].passed, "{}", checks[1].detail);
        a.aus = answer(&["AU4"], "").aus;
        assert!(!verify(&a, &[])[1].passed);
    }
}
