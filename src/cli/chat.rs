//! `actfer chat`: a conversation on the terminal; each line of input is a user message, the
//! answer streams back, and the KV cache carries the conversation so each turn only prefills
//! its new tokens. With `--json-schema` each answer is one JSON value the schema accepts.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use actfer::llm::constrain::JsonConstraint;
use actfer::llm::{Chat, Message, TextModel};
use clap::Args;

use super::generate::SamplingArgs;

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// A system message that opens the conversation.
    #[arg(long)]
    pub system: Option<String>,
    /// Write each answer as one JSON value that this JSON Schema file accepts (constrained
    /// decoding), one line per turn.
    #[arg(long, value_name = "FILE")]
    pub json_schema: Option<PathBuf>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

pub fn run(args: ChatArgs) -> anyhow::Result<()> {
    let model = TextModel::load_spec(&args.sampling.model)?;
    let schema = match &args.json_schema {
        Some(path) => Some(super::generate::constraint(path, &model)?),
        None => None,
    };
    let mut chat = Chat::new(model)?;
    if let Some(system) = &args.system {
        chat.push(Message::system(system.clone()));
    }
    let opts = args.sampling.options();
    let interactive = std::io::stdin().is_terminal();
    let stdout = std::io::stdout();
    let prompt = || {
        if interactive {
            print!("> ");
            let _ = std::io::stdout().flush();
        }
    };
    prompt();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let line = line.trim();
        if line == "/exit" || line == "/quit" {
            break;
        }
        if line.is_empty() {
            prompt();
            continue;
        }
        let mut echo = |piece: &str| {
            let mut out = stdout.lock();
            out.write_all(piece.as_bytes())
                .and_then(|_| out.flush())
                .is_ok()
        };
        let generation = match &schema {
            Some((schema, vocab, _)) => {
                let mut c = JsonConstraint::new(vocab, schema)?;
                let g = chat.send_constrained(Message::user(line), &opts, &mut c, &mut echo)?;
                super::generate::checked_value(&g.text, g.stop, schema)?;
                g
            }
            None => chat.send(Message::user(line), &opts, &mut echo)?,
        };
        println!();
        tracing::info!(
            new_prompt_tokens = generation.prompt_tokens,
            tokens = generation.tokens.len(),
            decode_tok_s = format!("{:.1}", generation.decode_tokens_per_second()),
            "turn done"
        );
        prompt();
    }
    Ok(())
}
