//! The emotion label set, its spellings, the micro-expression 3-class grouping, and the FACS
//! prototype table (DESIGN.md, SynthME): happiness 6+12; surprise 1+2+5+26; anger 4+5+7+23;
//! disgust 9+15+16; sadness 1+4+15; fear 1+2+4+5+7+20+26; contempt R12+R14; neutral: none.
//!
//! Compatibility rule ([`Emotion::compatible_with`], used by the reward `r_consistency`, the
//! agent's verifier and its answer schema): an emotion is compatible with a set of AUs `P`
//! (sides ignored) when
//! - the AUs cover at least half of the emotion's prototype AUs,
//!   `2 |P ∩ proto(e)| >= |proto(e)|`; extra AUs outside the prototype do not count against
//!   it, since expressions are often mixed; or
//! - the AUs are part of the prototype: at least one of its AUs and none outside it, leaving
//!   out the AUs that go with any expression ([`ACCOMPANYING`]). Micro-expressions are often
//!   partial: AU9 alone is a partial disgust, AU4 alone a partial anger, sadness or fear.
//!
//! Neutral is compatible with no AUs only (an empty set).

use std::fmt;

use serde::Serialize;

use super::au::mask;

/// AUs that go with many expressions without telling them apart: AU25 (lips part, which
/// follows any jaw drop) and the eye closures AU43/AU45 (blinks are the commonest
/// distractor). The compatibility rule's "part of the prototype" and the prototype inference
/// ([`super::inference`]) leave them out.
pub const ACCOMPANYING: &[u8] = &[25, 43, 45];

/// The label set: the seven basic emotions of the prototype table and neutral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Emotion {
    Happiness,
    Surprise,
    Anger,
    Disgust,
    Sadness,
    Fear,
    Contempt,
    Neutral,
}

/// The micro-expression 3-class grouping (MEGC composite): positive, negative, surprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeClass {
    Positive,
    Negative,
    Surprise,
}

impl MeClass {
    pub fn name(self) -> &'static str {
        match self {
            MeClass::Positive => "positive",
            MeClass::Negative => "negative",
            MeClass::Surprise => "surprise",
        }
    }
}

impl Emotion {
    /// Every label, in table order.
    pub const ALL: [Emotion; 8] = [
        Emotion::Happiness,
        Emotion::Surprise,
        Emotion::Anger,
        Emotion::Disgust,
        Emotion::Sadness,
        Emotion::Fear,
        Emotion::Contempt,
        Emotion::Neutral,
    ];

    /// The canonical label.
    pub fn name(self) -> &'static str {
        match self {
            Emotion::Happiness => "happiness",
            Emotion::Surprise => "surprise",
            Emotion::Anger => "anger",
            Emotion::Disgust => "disgust",
            Emotion::Sadness => "sadness",
            Emotion::Fear => "fear",
            Emotion::Contempt => "contempt",
            Emotion::Neutral => "neutral",
        }
    }

    /// Normalises the usual spellings, case-insensitively, surrounding spaces ignored:
    /// happiness/happy/joy, sadness/sad, anger/angry, disgust/disgusted, fear/fearful/afraid/
    /// scared, surprise/surprised, contempt/contemptuous, neutral/neutrality.
    pub fn parse(s: &str) -> Result<Emotion, String> {
        let t = s.trim();
        let mut buf = [0u8; 16];
        if t.len() > buf.len() {
            return Err(unknown(s));
        }
        let low = &mut buf[..t.len()];
        low.copy_from_slice(t.as_bytes());
        low.make_ascii_lowercase();
        Ok(match &*low {
            b"happiness" | b"happy" | b"joy" => Emotion::Happiness,
            b"surprise" | b"surprised" => Emotion::Surprise,
            b"anger" | b"angry" => Emotion::Anger,
            b"disgust" | b"disgusted" => Emotion::Disgust,
            b"sadness" | b"sad" => Emotion::Sadness,
            b"fear" | b"fearful" | b"afraid" | b"scared" => Emotion::Fear,
            b"contempt" | b"contemptuous" => Emotion::Contempt,
            b"neutral" | b"neutrality" => Emotion::Neutral,
            _ => return Err(unknown(s)),
        })
    }

    /// The FACS prototype AUs (numbers; contempt is one-sided, R12+R14).
    pub fn prototype(self) -> &'static [u8] {
        match self {
            Emotion::Happiness => &[6, 12],
            Emotion::Surprise => &[1, 2, 5, 26],
            Emotion::Anger => &[4, 5, 7, 23],
            Emotion::Disgust => &[9, 15, 16],
            Emotion::Sadness => &[1, 4, 15],
            Emotion::Fear => &[1, 2, 4, 5, 7, 20, 26],
            Emotion::Contempt => &[12, 14],
            Emotion::Neutral => &[],
        }
    }

    /// The micro-expression class; neutral has none.
    pub fn me_class(self) -> Option<MeClass> {
        match self {
            Emotion::Happiness => Some(MeClass::Positive),
            Emotion::Surprise => Some(MeClass::Surprise),
            Emotion::Anger
            | Emotion::Disgust
            | Emotion::Sadness
            | Emotion::Fear
            | Emotion::Contempt => Some(MeClass::Negative),
            Emotion::Neutral => None,
        }
    }

    /// The compatibility rule of the module docs, over a bit mask of AU numbers.
    pub fn compatible_with(self, au_numbers: u64) -> bool {
        let proto = self.prototype();
        if proto.is_empty() {
            return au_numbers == 0;
        }
        let covered = (mask(proto) & au_numbers).count_ones() as usize;
        let telling = au_numbers & !mask(ACCOMPANYING);
        2 * covered >= proto.len() || (covered > 0 && telling & !mask(proto) == 0)
    }
}

fn unknown(s: &str) -> String {
    format!("unknown emotion {s:?} (expected one of happiness, surprise, anger, disgust, sadness, fear, contempt, neutral)")
}

impl fmt::Display for Emotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Emotion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Emotion;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an emotion label such as \"happiness\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Emotion, E> {
                Emotion::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_normalise() {
        for (s, e) in [
            ("happy", Emotion::Happiness),
            (" Sad ", Emotion::Sadness),
            ("ANGRY", Emotion::Anger),
            ("disgusted", Emotion::Disgust),
            ("afraid", Emotion::Fear),
            ("surprised", Emotion::Surprise),
            ("Contempt", Emotion::Contempt),
            ("neutral", Emotion::Neutral),
        ] {
            assert_eq!(Emotion::parse(s).unwrap(), e, "{s}");
        }
        for e in Emotion::ALL {
            assert_eq!(Emotion::parse(e.name()).unwrap(), e);
        }
        assert!(Emotion::parse("joyful")
            .unwrap_err()
            .contains("unknown emotion"));
        assert!(Emotion::parse("").is_err());
        assert!(Emotion::parse("a very long unknown label").is_err());
    }

    #[test]
    fn me_classes() {
        assert_eq!(Emotion::Happiness.me_class(), Some(MeClass::Positive));
        assert_eq!(Emotion::Contempt.me_class(), Some(MeClass::Negative));
        assert_eq!(Emotion::Surprise.me_class(), Some(MeClass::Surprise));
        assert_eq!(Emotion::Neutral.me_class(), None);
    }

    #[test]
    fn compatibility_rule() {
        // Happiness {6,12}: one of the two is half.
        assert!(Emotion::Happiness.compatible_with(mask(&[12])));
        assert!(!Emotion::Happiness.compatible_with(mask(&[1, 2])));
        // Fear has 7 prototype AUs: 4 are half (2*3 = 6 < 7), or fewer with nothing else.
        assert!(!Emotion::Fear.compatible_with(mask(&[1, 2, 4, 12])));
        assert!(Emotion::Fear.compatible_with(mask(&[1, 2, 4, 20, 12])));
        // Part of a prototype: AU9 alone is a partial disgust, and lips apart or a blink
        // beside it change nothing; AU12 beside it does.
        assert!(Emotion::Disgust.compatible_with(mask(&[9])));
        assert!(Emotion::Disgust.compatible_with(mask(&[9, 25, 45])));
        assert!(!Emotion::Disgust.compatible_with(mask(&[9, 12])));
        assert!(Emotion::Fear.compatible_with(mask(&[1, 2, 4])));
        for e in [Emotion::Anger, Emotion::Sadness, Emotion::Fear] {
            assert!(e.compatible_with(mask(&[4])), "{e}");
        }
        assert!(!Emotion::Happiness.compatible_with(mask(&[25])));
        // Surprise {1,2,5,26}: two of four are half.
        assert!(Emotion::Surprise.compatible_with(mask(&[1, 2])));
        assert!(!Emotion::Sadness.compatible_with(0));
        assert!(Emotion::Neutral.compatible_with(0));
        assert!(!Emotion::Neutral.compatible_with(mask(&[12])));
    }
}
