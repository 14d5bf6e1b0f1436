//! `actfer facs aus|regions|emotions`: the FACS tables as text, Markdown or JSON, rendered
//! from the library's tables (the README's AU catalogue is this command's Markdown).

use actfer::face::regions::REGIONS;
use actfer::facs::{catalogue, Emotion};
use clap::Subcommand;
use serde::Serialize;

use super::print_json;

#[derive(Debug, Subcommand)]
pub enum FacsCommand {
    /// The AU catalogue: name, muscle, sides, regions, prototypes and image cues per AU.
    Aus {
        #[arg(long)]
        json: bool,
        #[arg(long, conflicts_with = "json")]
        markdown: bool,
    },
    /// The facial-region table (68-point scheme) with the AUs each region shows.
    Regions {
        #[arg(long)]
        json: bool,
    },
    /// The emotion labels with their FACS prototypes and micro-expression classes.
    Emotions {
        #[arg(long)]
        json: bool,
    },
}

impl FacsCommand {
    pub fn wants_json(&self) -> bool {
        matches!(
            self,
            FacsCommand::Aus { json: true, .. }
                | FacsCommand::Regions { json: true }
                | FacsCommand::Emotions { json: true }
        )
    }
}

#[derive(Serialize)]
struct EmotionRow {
    label: Emotion,
    prototype: Vec<String>,
    me_class: Option<actfer::facs::MeClass>,
}

pub fn run(cmd: FacsCommand) -> anyhow::Result<()> {
    match cmd {
        FacsCommand::Aus { json: true, .. } => print_json(&catalogue::entries()),
        FacsCommand::Aus { markdown: true, .. } => {
            print!("{}", catalogue::markdown());
            Ok(())
        }
        FacsCommand::Aus { .. } => {
            println!("{}", catalogue::prompt_text());
            Ok(())
        }
        FacsCommand::Regions { json: true } => print_json(&REGIONS),
        FacsCommand::Regions { json: false } => {
            for r in REGIONS {
                let aus: Vec<String> = r.aus.iter().map(|a| format!("AU{a}")).collect();
                println!(
                    "{:<20} {:<7} {:<6} {:<42} {}",
                    r.name,
                    format!("{:?}", r.level).to_lowercase(),
                    format!("{:?}", r.side).to_lowercase(),
                    r.description,
                    aus.join(" ")
                );
            }
            Ok(())
        }
        FacsCommand::Emotions { json } => {
            let rows: Vec<EmotionRow> = Emotion::ALL
                .iter()
                .map(|&e| EmotionRow {
                    label: e,
                    prototype: e
                        .prototype()
                        .iter()
                        .map(|a| match e {
                            Emotion::Contempt => format!("R{a}"),
                            _ => format!("AU{a}"),
                        })
                        .collect(),
                    me_class: e.me_class(),
                })
                .collect();
            if json {
                return print_json(&rows);
            }
            for r in rows {
                let me = r.me_class.map_or("-", |c| c.name());
                println!("{:<10} {:<9} {}", r.label, me, r.prototype.join("+"));
            }
            Ok(())
        }
    }
}
