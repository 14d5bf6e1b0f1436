//! The reasoner's training data (`actfer train policy data`) and the words checks, through
//! the CLI and the library with the real tools.

use actfer::agent::words::{check, Evidence, Problem, Vocabulary};
use actfer::facs::emotion::Emotion;
use serde_json::Value;

use super::common::{fails_with, succeeds};

/// The conversations of three SynthME train clips (and their apex frames): each one opens
/// with the trained system prompt, alternates message and reply, every reply is one JSON
/// step, and the last answers with the gold emotion, claiming only gold AUs; a test-split
/// folder is refused.
#[test]
fn training_conversations_follow_the_evidence_to_the_gold_answer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train");
    let out = dir.path().join("train.jsonl");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    synth(&data, "3", "6", "train", &["--size", "128"]);
    let run = succeeds(&[
        "train",
        "policy",
        "data",
        "--data",
        &s(&data),
        "--out",
        &s(&out),
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    let kept = report["kept"].as_u64().unwrap() as usize;
    let explanations = report["explanations"].as_u64().unwrap() as usize;
    assert_eq!(report["runs"], 12, "{report}");
    assert!(kept >= 1, "{report}");
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), kept + explanations);
    let system = actfer::agent::run::trained_system_prompt();
    let mut answers = 0;
    for c in &lines {
        assert_eq!(c["split"], "train");
        let messages = c["messages"].as_array().unwrap();
        let role = |k: usize| messages[k]["role"].as_str().unwrap();
        assert_eq!(role(0), "system");
        for k in 1..messages.len() {
            assert_eq!(
                role(k),
                if k % 2 == 1 { "user" } else { "assistant" },
                "{c}"
            );
        }
        let id = c["id"].as_str().unwrap();
        if id.ends_with("/explain") {
            assert_eq!(messages.len(), 3);
            let text = messages[2]["content"].as_str().unwrap();
            assert!(text.contains(c["gold_emotion"].as_str().unwrap()), "{text}");
            continue;
        }
        assert_eq!(messages[0]["content"], system.as_str());
        let last: Value =
            serde_json::from_str(messages.last().unwrap()["content"].as_str().unwrap()).unwrap();
        assert_eq!(last["tool"], "final_answer", "{c}");
        assert_eq!(last["args"]["emotion"], c["gold_emotion"]);
        let gold: Vec<String> = c["gold_aus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| format!("AU{n}"))
            .collect();
        for au in last["args"]["aus"].as_array().unwrap() {
            assert!(gold.contains(&au.as_str().unwrap().to_string()), "{c}");
        }
        answers += 1;
    }
    assert_eq!(answers, kept);

    // the test split never trains
    let test = dir.path().join("test");
    synth(&test, "3", "1", "test", &["--size", "128"]);
    let err = fails_with(
        &[
            "train",
            "policy",
            "data",
            "--data",
            &s(&test),
            "--out",
            &s(&out),
        ],
        2,
    );
    assert!(err.contains("test-split"), "{err}");
}

/// The words checks with the real word list: a sound explanation passes, the failures the
/// untrained model wrote are each caught.
#[test]
fn the_words_checks_catch_what_the_untrained_model_wrote() {
    let vocab = Vocabulary::shared().unwrap();
    let mut given = Evidence {
        emotion: Some(Emotion::Sadness),
        ..Default::default()
    };
    given.add_text(
        "A Macro expression from frame 13 to 44 (apex 30). AUs that moved: AU15 Lip Corner \
         Depressor 0.62, AU4 Brow Lowerer 0.40.",
    );
    let sound = "A longer macro-expression from frame 13 to 44 (apex 30): Lip Corner Depressor \
                 (AU15) pulls the lip corners down and Brow Lowerer (AU4) lowers the brows. \
                 This pattern suggests sadness, and the movement is marked, so the reading is \
                 fairly sure.";
    assert_eq!(check(sound, &given, &vocab), []);
    let kinds = |text: &str| -> Vec<&'static str> {
        check(text, &given, &vocab)
            .iter()
            .map(|p| match p {
                Problem::OtherEmotion { .. } => "emotion",
                Problem::OutsideCatalogue { .. } => "catalogue",
                Problem::Unsupported { .. } => "unsupported",
                Problem::NonWord { .. } => "non-word",
            })
            .collect()
    };
    // README's examples of the untrained model
    assert_eq!(
        kinds("Lip Corner Depressor (AU15) and Lip Correction 0.42, LipsCorner Upcorpion: Sarcasm"),
        ["non-word", "non-word"]
    );
    assert_eq!(
        kinds("The Macro expression from frame 38 to the end of frame 47 is happy"),
        ["emotion", "unsupported", "unsupported"]
    );
    assert_eq!(kinds("Sadismus in German literature"), ["non-word"]);
    assert_eq!(
        kinds("Lipscorner Raiser (AU12)"),
        ["unsupported", "catalogue", "non-word"]
    );
}

/// The default model is the trained reasoner: on the demo's clip (SynthME seed 5, the test
/// split's identity: sadness, AU1 + AU4 + AU15) it reads the motion before answering, answers
/// sadness with gold AUs only, its first answer passes the verifier, and no thought and not its
/// text names another emotion, cites an AU or frame that no observation showed, or holds a
/// non-word. (What the checks do not see, README "The trained reasoner": its intensity word
/// can overstate the evidence.)
#[test]
fn the_trained_reasoner_answers_the_demo_clip_with_sound_words() {
    use actfer::agent::trace::{Trace, FILE};
    use actfer::agent::words::check_first_answer;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("synthme");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    synth(
        &data,
        "5",
        "1",
        "test",
        &["--size", "256", "--flow", "none"],
    );
    let trace_dir = dir.path().join("ask");
    succeeds(&[
        "ask",
        &s(&data.join("clips/clip_00000/frames")),
        "What expression does this face show, and which action units?",
        "--trace-dir",
        &s(&trace_dir),
        "--no-prompt-cache",
    ]);
    let trace = Trace::read(&trace_dir.join(FILE)).unwrap();
    assert_eq!(trace.model, actfer::llm::REASONER_FILE);
    let motion = trace.steps.iter().position(|s| {
        s.tool.name == "optical_flow"
            || (s.tool.name == "au_evidence" && s.tool.args["source"] == "motion")
    });
    let answer = trace
        .steps
        .iter()
        .position(|s| s.tool.name == "final_answer");
    assert!(motion.is_some() && motion < answer, "{:#?}", trace.steps);
    let answer = trace.answer.as_ref().expect("an answer");
    assert_eq!(answer.emotion.label, "sadness");
    for au in &answer.aus {
        assert!(
            ["AU1", "AU4", "AU15"].contains(&au.au.as_str()),
            "{}",
            au.au
        );
    }
    let first = trace
        .steps
        .iter()
        .find(|s| s.tool.name == "final_answer")
        .unwrap();
    assert!(!first.observation.error, "{:#?}", first.observation);
    let vocab = Vocabulary::shared().unwrap();
    let words = check_first_answer(&trace, &vocab);
    assert!(
        words.thoughts.iter().all(Vec::is_empty),
        "{:?}",
        words.thoughts
    );
    assert_eq!(words.text.as_deref(), Some(&[][..]), "{:?}", words.text);
    assert!(words.distinct_thoughts >= 2, "{:#?}", trace.steps);
}

/// `actfer synth` of expression clips only into `out`: `clips` clips of `split` from `seed`,
/// with `more` flags.
fn synth(out: &std::path::Path, seed: &str, clips: &str, split: &str, more: &[&str]) {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "synth",
        "--out",
        out,
        "--seed",
        seed,
        "--clips",
        clips,
        "--split",
        split,
        "--no-neutral",
    ];
    args.extend_from_slice(more);
    succeeds(&args);
}
