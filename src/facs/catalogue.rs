//! The AU catalogue as people and prompts read it: each AU of [`AUS`] joined with the regions
//! that show it (`face::regions::REGIONS`), the emotions whose prototype uses it
//! ([`Emotion::prototype`]) and the cues that measure it in one image
//! ([`super::appearance::ROWS`]). Docs and prompts are rendered from here
//! (`actfer facs aus --markdown`, [`prompt_text`]), never written by hand.

use serde::Serialize;

use super::appearance::{Reading, ROWS};
use super::au::AUS;
use super::emotion::Emotion;
use crate::face::regions::{regions_for_au, Level, Region};

/// One AU with everything the tables say about it.
#[derive(Debug, Clone, Serialize)]
pub struct AuEntry {
    pub au: String,
    pub number: u8,
    pub name: &'static str,
    pub muscle: &'static str,
    pub one_sided: bool,
    /// `upper`, `lower`, or `upper, lower`: the coarse face regions that show it.
    pub face: Vec<&'static str>,
    /// Fine regions and AUW-GCN ROIs that show it.
    pub regions: Vec<&'static str>,
    /// Emotions whose FACS prototype uses it.
    pub emotions: Vec<Emotion>,
    /// Image cues that measure it: blendshape names and geometric measures.
    pub cues: Vec<String>,
}

/// Every catalogue AU, in FACS order.
pub fn entries() -> Vec<AuEntry> {
    AUS.iter()
        .map(|a| {
            let regions: Vec<_> = regions_for_au(a.number).collect();
            let face = regions
                .iter()
                .filter(|r| r.level == Level::Coarse)
                .map(|r| r.name.trim_end_matches("_face"))
                .collect();
            let cues = ROWS
                .iter()
                .filter(|r| r.au == a.number)
                .map(|r| match r.reading {
                    Reading::Blendshape { name, sided: true } => format!("{name}Left/Right"),
                    Reading::Blendshape { name, sided: false } => name.to_string(),
                    Reading::Geometry(m) => format!("geometry:{}", m.name()),
                })
                .collect();
            AuEntry {
                au: format!("AU{}", a.number),
                number: a.number,
                name: a.name,
                muscle: a.muscle,
                one_sided: a.one_sided,
                face,
                regions: regions
                    .iter()
                    .filter(|r| r.level != Level::Coarse)
                    .map(|r| r.name)
                    .collect(),
                emotions: Emotion::ALL
                    .into_iter()
                    .filter(|e| e.prototype().contains(&a.number))
                    .collect(),
                cues,
            }
        })
        .collect()
}

fn names(emotions: &[Emotion]) -> String {
    emotions
        .iter()
        .map(|e| e.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The catalogue as a Markdown table.
pub fn markdown() -> String {
    let mut s = String::from(
        "| AU | Name | Muscle | One-sided | Face | Regions | Prototypes | Image cues |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for e in entries() {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            e.au,
            e.name,
            e.muscle,
            if e.one_sided { "yes" } else { "no" },
            e.face.join(", "),
            e.regions.join(", "),
            names(&e.emotions),
            e.cues.join(", "),
        ));
    }
    s
}

/// The catalogue as compact lines for an LLM prompt: one AU per line.
pub fn prompt_text() -> String {
    entries()
        .iter()
        .map(|e| {
            let mut line = format!("{} {} ({}", e.au, e.name, e.muscle);
            if e.one_sided {
                line.push_str("; can be one-sided: L/R");
            }
            line.push(')');
            if !e.regions.is_empty() {
                line.push_str(&format!(" regions: {}", e.regions.join(", ")));
            }
            if !e.emotions.is_empty() {
                line.push_str(&format!("; in prototypes of: {}", names(&e.emotions)));
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A face part as answers name it in words: the fine regions and ROIs of the region table
/// (`face::regions::REGIONS`) grouped by name, so where an AU acts comes from that table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FacePart {
    Brows,
    Eyelids,
    Nose,
    Cheeks,
    MouthCorners,
    Lips,
    Chin,
}

impl FacePart {
    pub const ALL: [FacePart; 7] = [
        FacePart::Brows,
        FacePart::Eyelids,
        FacePart::Nose,
        FacePart::Cheeks,
        FacePart::MouthCorners,
        FacePart::Lips,
        FacePart::Chin,
    ];

    /// The part in plain words.
    pub fn name(self) -> &'static str {
        match self {
            FacePart::Brows => "brows",
            FacePart::Eyelids => "eyelids",
            FacePart::Nose => "nose",
            FacePart::Cheeks => "cheeks",
            FacePart::MouthCorners => "mouth corners",
            FacePart::Lips => "lips",
            FacePart::Chin => "chin",
        }
    }

    /// The part a fine region or ROI belongs to, by its name (`r_inner_brow`, `glabella`,
    /// `roi_upper_lip`, ...); `None` for coarse regions, which span several parts.
    pub fn of_region(region: &Region) -> Option<FacePart> {
        if region.level == Level::Coarse {
            return None;
        }
        let has = |s: &str| region.name.contains(s);
        Some(if has("brow") || has("glabella") {
            FacePart::Brows
        } else if has("eyelid") {
            FacePart::Eyelids
        } else if has("nose") || has("nostril") {
            FacePart::Nose
        } else if has("cheek") {
            FacePart::Cheeks
        } else if has("mouth_corner") {
            FacePart::MouthCorners
        } else if has("lip") {
            FacePart::Lips
        } else if has("chin") {
            FacePart::Chin
        } else {
            return None;
        })
    }
}

/// The face parts where an AU acts (its fine regions and ROIs), in [`FacePart::ALL`] order;
/// empty for a number outside the region table.
pub fn face_parts(au: u8) -> Vec<FacePart> {
    let parts: Vec<FacePart> = regions_for_au(au).filter_map(FacePart::of_region).collect();
    FacePart::ALL
        .into_iter()
        .filter(|p| parts.contains(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_aus_are_complete() {
        let all = entries();
        for n in [
            1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26, 27, 28, 43, 45,
        ] {
            let e = all
                .iter()
                .find(|e| e.number == n)
                .unwrap_or_else(|| panic!("AU{n}"));
            assert!(!e.regions.is_empty(), "AU{n} has no region");
            assert!(!e.face.is_empty(), "AU{n} has no coarse region");
        }
    }

    #[test]
    fn joins_the_tables() {
        let all = entries();
        let au12 = all.iter().find(|e| e.number == 12).unwrap();
        assert_eq!(au12.emotions, [Emotion::Happiness, Emotion::Contempt]);
        assert_eq!(au12.face, ["lower"]);
        assert!(au12.regions.contains(&"r_mouth_corner"));
        assert_eq!(au12.cues, ["mouthSmileLeft/Right"]);
        let au1 = all.iter().find(|e| e.number == 1).unwrap();
        assert_eq!(
            au1.emotions,
            [Emotion::Surprise, Emotion::Sadness, Emotion::Fear]
        );
        assert!(markdown().contains("| AU12 | Lip Corner Puller | zygomaticus major | yes |"));
        assert!(prompt_text().lines().any(|l| l.starts_with("AU45 Blink (")));
    }

    #[test]
    fn face_parts_come_from_the_region_table() {
        for r in crate::face::regions::REGIONS {
            assert_eq!(
                FacePart::of_region(r).is_none(),
                r.level == Level::Coarse,
                "{}",
                r.name
            );
        }
        for a in AUS {
            assert!(!face_parts(a.number).is_empty(), "AU{}", a.number);
        }
        assert_eq!(face_parts(4), [FacePart::Brows]);
        assert_eq!(face_parts(6), [FacePart::Eyelids, FacePart::Cheeks]);
        assert_eq!(face_parts(7), [FacePart::Eyelids]);
        assert_eq!(face_parts(12), [FacePart::Cheeks, FacePart::MouthCorners]);
        assert_eq!(face_parts(26), [FacePart::Lips, FacePart::Chin]);
        assert!(face_parts(99).is_empty());
    }
}
