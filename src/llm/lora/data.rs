//! SFT data: conversations in JSONL, rendered with the model's chat template and tokenized as
//! inference would prefill them, with the tokens of each assistant message marked as trained.
//!
//! One conversation a line:
//! `{"id": "c1", "split": "train", "messages": [{"role": "user", "content": "..."}, ...]}`
//! (`split`: `train` or `val`, `train` when absent).
//!
//! The trained tokens of an assistant message are those of its content and of the
//! end-of-turn token that closes it (`<|im_end|>` in ChatML). Their bounds come from rendering
//! the conversation up to the message (with the generation prompt: where the content starts)
//! and through it (where the end-of-turn token ends), tokenizing those prefixes of the full
//! text, and checking that their tokens begin the full text's tokens; a template or tokenizer
//! that merges across a bound is reported, naming the conversation.

use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::llm::{ChatTemplate, Message, Tokenizer};
use crate::{Error, Result};

/// Which part of the data a conversation belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    #[default]
    Train,
    Val,
}

/// One line of the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    #[serde(default)]
    pub split: Split,
    pub messages: Vec<Message>,
}

/// What to do with a conversation longer than the maximum length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// Keep its first tokens (the trained tokens among them); dropped when none are left.
    #[default]
    Truncate,
    /// Leave it out.
    Drop,
}

/// A tokenized conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub id: String,
    pub tokens: Vec<u32>,
    /// The trained token positions, ascending (never 0: a token is predicted from those
    /// before it).
    pub trained: Vec<usize>,
}

impl Example {
    /// What the model runs: the tokens before the last trained one.
    pub fn inputs(&self) -> &[u32] {
        let end = self.trained.last().copied().unwrap_or(1);
        &self.tokens[..end]
    }

    /// The rows of [`Example::inputs`] whose logits predict the trained tokens.
    pub fn rows(&self) -> Vec<u32> {
        self.trained.iter().map(|&p| (p - 1) as u32).collect()
    }

    /// The trained tokens.
    pub fn targets(&self) -> Vec<u32> {
        self.trained.iter().map(|&p| self.tokens[p]).collect()
    }
}

/// Reads JSONL conversations; a malformed line is an error naming the file and the line.
/// Blank lines are skipped.
pub fn read_jsonl(path: &Path) -> Result<Vec<Conversation>> {
    if !path.exists() {
        return Err(Error::NotFound {
            path: path.to_path_buf(),
        });
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let c: Conversation = serde_json::from_str(line).map_err(|e| {
            Error::bad_input(
                path,
                format!("line {}: not a conversation ({e}); expected {{\"id\", \"split\", \"messages\": [{{\"role\", \"content\"}}]}}", i + 1),
            )
        })?;
        out.push(c);
    }
    Ok(out)
}

/// Renders and tokenizes `conv`; returns its tokens and the token ranges of its assistant
/// turns (content and end-of-turn token). Errors say what is wrong with the conversation.
pub fn encode(
    conv: &Conversation,
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
) -> std::result::Result<(Vec<u32>, Vec<Range<usize>>), String> {
    let render = |msgs: &[Message], open: bool| {
        template
            .render(msgs, open)
            .map_err(|e| format!("the chat template fails on it: {e}"))
    };
    let encode = |text: &str| {
        tokenizer
            .encode(text, true, true)
            .map_err(|e| format!("cannot tokenize it: {e}"))
    };
    let full = render(&conv.messages, false)?;
    let tokens = encode(&full)?;
    let mut ranges = Vec::new();
    for (i, m) in conv.messages.iter().enumerate() {
        if m.role != "assistant" {
            continue;
        }
        let before = render(&conv.messages[..i], true)?;
        let through = render(&conv.messages[..=i], false)?;
        if !full.starts_with(&before)
            || !full.starts_with(&through)
            || !through.starts_with(&before)
        {
            return Err(format!(
                "message {i}: the chat template does not render the conversation's beginning as a prefix of it"
            ));
        }
        let body = &through[before.len()..];
        // templates may trim the content
        let content = [m.content.as_str(), m.content.trim()]
            .into_iter()
            .find(|c| body.starts_with(c))
            .ok_or_else(|| {
                format!(
                    "message {i}: the chat template does not render the assistant content as given"
                )
            })?;
        let after = &body[content.len()..];
        let end = tokenizer
            .end_of_generation()
            .iter()
            .map(|&id| String::from_utf8_lossy(&tokenizer.token_bytes(id)).into_owned())
            .find(|t| !t.is_empty() && after.starts_with(t.as_str()))
            .ok_or_else(|| {
                format!("message {i}: the chat template closes the assistant turn with {:?}, not an end-of-turn token", after.chars().take(20).collect::<String>())
            })?;
        let start_char = before.len();
        let end_char = start_char + content.len() + end.len();
        let prefix_tokens = |at: usize| -> std::result::Result<usize, String> {
            let t = encode(&full[..at])?;
            if tokens.starts_with(&t) {
                Ok(t.len())
            } else {
                Err(format!(
                    "message {i}: the tokens of the text before byte {at} are not a prefix of the conversation's (a token spans the bound)"
                ))
            }
        };
        let range = prefix_tokens(start_char)?..prefix_tokens(end_char)?;
        let decoded = tokenizer.decode(&tokens[range.clone()]);
        if decoded != format!("{content}{end}") {
            return Err(format!(
                "message {i}: its tokens decode to {decoded:?}, not its content and {end:?}"
            ));
        }
        if range.start == 0 {
            return Err(format!(
                "message {i}: an assistant turn cannot open the text"
            ));
        }
        ranges.push(range);
    }
    Ok((tokens, ranges))
}

/// The examples of a data set, split, with what was cut or left out.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub train: Vec<Example>,
    pub val: Vec<Example>,
    /// Ids of conversations cut to the maximum length.
    pub truncated: Vec<String>,
    /// Ids of conversations left out, with why.
    pub dropped: Vec<(String, String)>,
}

/// Encodes every conversation: longer than `max_len` tokens, one is cut or dropped as
/// `overflow` says; one without an assistant turn is dropped. A conversation the template or
/// tokenizer cannot bound cleanly is an error naming it.
pub fn prepare(
    path: &Path,
    convs: &[Conversation],
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
    max_len: usize,
    overflow: Overflow,
) -> Result<Prepared> {
    let mut out = Prepared::default();
    let mut seen = std::collections::HashSet::new();
    for c in convs {
        if !seen.insert(c.id.as_str()) {
            return Err(Error::bad_input(
                path,
                format!(
                    "conversation id {:?} appears twice; ids must be unique",
                    c.id
                ),
            ));
        }
        let (mut tokens, ranges) = encode(c, tokenizer, template)
            .map_err(|e| Error::bad_input(path, format!("conversation {:?}: {e}", c.id)))?;
        let mut trained: Vec<usize> = ranges.into_iter().flatten().collect();
        if trained.is_empty() {
            out.dropped
                .push((c.id.clone(), "no assistant message".into()));
            continue;
        }
        if tokens.len() > max_len {
            if overflow == Overflow::Drop {
                out.dropped.push((
                    c.id.clone(),
                    format!("{} tokens, more than {max_len}", tokens.len()),
                ));
                continue;
            }
            tokens.truncate(max_len);
            trained.retain(|&p| p < max_len);
            if trained.is_empty() {
                out.dropped.push((
                    c.id.clone(),
                    format!("no assistant token among its first {max_len}"),
                ));
                continue;
            }
            out.truncated.push(c.id.clone());
        }
        let ex = Example {
            id: c.id.clone(),
            tokens,
            trained,
        };
        match c.split {
            Split::Train => out.train.push(ex),
            Split::Val => out.val.push(ex),
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::llm::lora::model::tests::tiny;
    use crate::llm::TextModel;

    pub(crate) fn conversation(id: &str, split: Split, turns: &[(&str, &str)]) -> Conversation {
        Conversation {
            id: id.into(),
            split,
            messages: turns.iter().map(|(r, c)| Message::new(*r, *c)).collect(),
        }
    }

    fn chat_model() -> (tempfile::TempDir, TextModel) {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny("llama", dir.path());
        let m = TextModel::load(&path).unwrap();
        (dir, m)
    }

    #[test]
    fn trained_tokens_are_the_assistant_contents_and_end_tokens() {
        let (_dir, m) = chat_model();
        let template = m.template.as_ref().unwrap();
        for c in [
            conversation(
                "a",
                Split::Train,
                &[
                    ("system", "Look at the face."),
                    ("user", "What is the emotion?"),
                    ("assistant", "{\"tool\": \"detect\"}"),
                    ("user", "Observation: one face, AU12 strong."),
                    ("assistant", " The smile (AU12) says happiness.\n"),
                ],
            ),
            // no system message: the template adds its own
            conversation(
                "b",
                Split::Train,
                &[
                    ("user", "hi"),
                    ("assistant", "the answer"),
                    ("user", "thanks"),
                ],
            ),
        ] {
            let (tokens, ranges) = encode(&c, &m.tokenizer, template).unwrap();
            let contents: Vec<&str> = c
                .messages
                .iter()
                .filter(|m| m.role == "assistant")
                .map(|m| m.content.as_str())
                .collect();
            assert_eq!(ranges.len(), contents.len());
            for (r, content) in ranges.iter().zip(contents) {
                assert_eq!(
                    m.tokenizer.decode(&tokens[r.clone()]),
                    format!("{content}<|im_end|>")
                );
                assert_eq!(
                    tokens[r.end - 1],
                    2,
                    "the end-of-turn token closes the range"
                );
            }
            // the tokens are those of the rendered text, as inference prefills it
            let full = template.render(&c.messages, false).unwrap();
            assert_eq!(tokens, m.tokenizer.encode(&full, true, true).unwrap());
            // nothing else is trained: the tokens between ranges are prompt
            let untrained: Vec<u32> = (0..tokens.len())
                .filter(|i| !ranges.iter().any(|r| r.contains(i)))
                .map(|i| tokens[i])
                .collect();
            let text = m.tokenizer.decode(&untrained);
            assert!(
                text.contains("<|im_start|>assistant\n") && !text.contains("the answer"),
                "{text}"
            );
        }
    }

    #[test]
    fn long_conversations_are_cut_or_dropped() {
        let (_dir, m) = chat_model();
        let template = m.template.as_ref().unwrap();
        let long = "x".repeat(200);
        let convs = vec![
            conversation("short", Split::Train, &[("user", "a"), ("assistant", "b")]),
            conversation("long", Split::Val, &[("user", "a"), ("assistant", &long)]),
            conversation("late", Split::Train, &[("user", &long), ("assistant", "b")]),
            conversation("mute", Split::Train, &[("user", "a")]),
        ];
        let p = Path::new("data.jsonl");
        let cut = prepare(p, &convs, &m.tokenizer, template, 100, Overflow::Truncate).unwrap();
        assert_eq!(cut.train.len(), 1);
        assert_eq!(cut.val.len(), 1);
        assert_eq!(cut.truncated, ["long"]);
        let dropped: Vec<&str> = cut.dropped.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(dropped, ["late", "mute"]);
        let v = &cut.val[0];
        assert_eq!(v.tokens.len(), 100);
        assert!(v.trained.iter().all(|&p| p < 100) && !v.trained.is_empty());
        assert_eq!(v.inputs().len(), *v.trained.last().unwrap());
        assert_eq!(
            v.targets(),
            v.trained.iter().map(|&p| v.tokens[p]).collect::<Vec<_>>()
        );
        let drop = prepare(p, &convs, &m.tokenizer, template, 100, Overflow::Drop).unwrap();
        assert_eq!(drop.train.len(), 1);
        assert!(drop.val.is_empty() && drop.truncated.is_empty());
        assert_eq!(drop.dropped.len(), 3);
        // duplicate ids are an error
        let twice = vec![convs[0].clone(), convs[0].clone()];
        let err = prepare(p, &twice, &m.tokenizer, template, 100, Overflow::Drop).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(
            &path,
            "{\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n\n{\"id\": 3}\n",
        )
        .unwrap();
        let err = read_jsonl(&path).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        std::fs::write(
            &path,
            "{\"id\": \"a\", \"split\": \"val\", \"messages\": []}\n",
        )
        .unwrap();
        let convs = read_jsonl(&path).unwrap();
        assert_eq!(convs[0].split, Split::Val);
    }
}
