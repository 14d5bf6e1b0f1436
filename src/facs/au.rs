//! The Action Unit catalogue: FACS number, name, and whether FACS scores it on one side
//! (`L12`, `R12`). Later work (evidence, spotting, SynthME) extends this table; nothing else
//! lists AUs.
//!
//! Written forms accepted for an AU ([`AuCode::parse`]): `AU12`, `12`, and with a side prefix
//! for one-sided AUs, `R12` / `L12` / `RAU12` (the subject's right / left). A JSON integer (`12`)
//! is accepted too. Anything else, a number not in the catalogue, or a side on an AU that
//! cannot be one-sided, is malformed.

use std::fmt;

use serde::Serialize;

/// One Action Unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AuInfo {
    pub number: u8,
    pub name: &'static str,
    /// The muscle (or muscle action) FACS attributes the movement to.
    pub muscle: &'static str,
    /// FACS can score it on one side only (`L`/`R` prefix).
    pub one_sided: bool,
}

const fn au(number: u8, name: &'static str, muscle: &'static str, one_sided: bool) -> AuInfo {
    AuInfo {
        number,
        name,
        muscle,
        one_sided,
    }
}

/// Every AU actfer knows, in FACS order. Numbers stay below 64 ([`AuSet`] is a bit mask).
/// Where each AU shows on the face lives in the region table (`face::regions`), and which
/// emotions use it in the prototype table ([`super::emotion`]); [`super::catalogue`] joins
/// the three for prompts and docs.
pub const AUS: &[AuInfo] = &[
    au(1, "Inner Brow Raiser", "frontalis, pars medialis", true),
    au(2, "Outer Brow Raiser", "frontalis, pars lateralis", true),
    au(
        4,
        "Brow Lowerer",
        "corrugator supercilii, depressor supercilii, procerus",
        true,
    ),
    au(5, "Upper Lid Raiser", "levator palpebrae superioris", true),
    au(6, "Cheek Raiser", "orbicularis oculi, pars orbitalis", true),
    au(
        7,
        "Lid Tightener",
        "orbicularis oculi, pars palpebralis",
        true,
    ),
    au(
        9,
        "Nose Wrinkler",
        "levator labii superioris alaeque nasi",
        false,
    ),
    au(10, "Upper Lip Raiser", "levator labii superioris", true),
    au(11, "Nasolabial Deepener", "zygomaticus minor", true),
    au(12, "Lip Corner Puller", "zygomaticus major", true),
    au(14, "Dimpler", "buccinator", true),
    au(15, "Lip Corner Depressor", "depressor anguli oris", true),
    au(
        16,
        "Lower Lip Depressor",
        "depressor labii inferioris",
        false,
    ),
    au(17, "Chin Raiser", "mentalis", false),
    au(
        18,
        "Lip Pucker",
        "incisivii labii superioris and inferioris",
        false,
    ),
    au(20, "Lip Stretcher", "risorius, with platysma", true),
    au(22, "Lip Funneler", "orbicularis oris", false),
    au(23, "Lip Tightener", "orbicularis oris", false),
    au(24, "Lip Pressor", "orbicularis oris", false),
    au(
        25,
        "Lips Part",
        "depressor labii inferioris, or relaxed mentalis or orbicularis oris",
        false,
    ),
    au(
        26,
        "Jaw Drop",
        "masseter, temporalis and internal pterygoid relaxed",
        false,
    ),
    au(27, "Mouth Stretch", "pterygoids, digastric", false),
    au(28, "Lip Suck", "orbicularis oris", false),
    au(
        43,
        "Eyes Closed",
        "levator palpebrae superioris relaxed, orbicularis oculi",
        false,
    ),
    au(
        45,
        "Blink",
        "levator palpebrae superioris relaxed, orbicularis oculi, pars palpebralis",
        false,
    ),
    au(46, "Wink", "orbicularis oculi", true),
];

/// FACS intensity letters, A (trace) to E (maximum), for an intensity in [0, 1]: five equal
/// bins, `(0, 0.2]` is A and `(0.8, 1]` is E. Zero (or less) has no letter.
pub fn intensity_letter(intensity: f32) -> Option<char> {
    if intensity.is_nan() || intensity <= 0.0 {
        return None;
    }
    let bin = ((intensity.min(1.0) * 5.0).ceil() as u8).clamp(1, 5);
    Some((b'A' + bin - 1) as char)
}

/// The catalogue entry for an AU number.
pub fn info(number: u8) -> Option<&'static AuInfo> {
    AUS.iter().find(|a| a.number == number)
}

/// The subject's side of a one-sided AU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum AuSide {
    Left,
    Right,
}

/// An AU as written in an answer or a label: a catalogue number and an optional side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuCode {
    pub number: u8,
    pub side: Option<AuSide>,
}

impl AuCode {
    /// Parses `AU12`, `12`, `R12`, `L12`, `RAU12` (strict: no spaces, no leading zeros).
    pub fn parse(s: &str) -> Result<AuCode, String> {
        let bad = || {
            format!("malformed AU {s:?} (expected e.g. \"AU12\", or \"R12\" for a one-sided AU)")
        };
        let (side, rest) = match s.as_bytes().first() {
            Some(b'R') => (Some(AuSide::Right), &s[1..]),
            Some(b'L') => (Some(AuSide::Left), &s[1..]),
            _ => (None, s),
        };
        let digits = rest.strip_prefix("AU").unwrap_or(rest);
        if digits.is_empty()
            || digits.len() > 2
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let number: u8 = digits.parse().map_err(|_| bad())?;
        Self::new(number, side).map_err(|e| format!("{s:?}: {e}"))
    }

    /// Checks the number against the catalogue and the side against `one_sided`.
    pub fn new(number: u8, side: Option<AuSide>) -> Result<AuCode, String> {
        let Some(info) = info(number) else {
            return Err(format!("AU{number} is not in the AU catalogue"));
        };
        if side.is_some() && !info.one_sided {
            return Err(format!("AU{number} ({}) cannot be one-sided", info.name));
        }
        Ok(AuCode { number, side })
    }
}

impl fmt::Display for AuCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.side {
            Some(AuSide::Right) => write!(f, "R{}", self.number),
            Some(AuSide::Left) => write!(f, "L{}", self.number),
            None => write!(f, "AU{}", self.number),
        }
    }
}

impl<'de> serde::Deserialize<'de> for AuCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = AuCode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an AU such as \"AU12\" or \"R12\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<AuCode, E> {
                AuCode::parse(s).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<AuCode, E> {
                let n = u8::try_from(n)
                    .map_err(|_| E::custom(format!("AU{n} is not in the AU catalogue")))?;
                AuCode::new(n, None).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for AuCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A set of AUs, each on both sides (`both`) or on one (`left`, `right`), as bit masks over AU
/// numbers. An AU appears at most once: `AU12` with `R12` is a duplicate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuSet {
    pub both: u64,
    pub left: u64,
    pub right: u64,
}

impl AuSet {
    /// Builds a set, refusing duplicates (the same number twice, whatever the sides).
    pub fn from_codes(codes: &[AuCode]) -> Result<AuSet, String> {
        let mut set = AuSet::default();
        for c in codes {
            let bit = 1u64 << c.number;
            if set.numbers() & bit != 0 {
                return Err(format!("AU{} is listed twice", c.number));
            }
            match c.side {
                None => set.both |= bit,
                Some(AuSide::Left) => set.left |= bit,
                Some(AuSide::Right) => set.right |= bit,
            }
        }
        Ok(set)
    }

    /// The AU numbers, sides ignored.
    pub fn numbers(&self) -> u64 {
        self.both | self.left | self.right
    }

    pub fn len(&self) -> u32 {
        self.numbers().count_ones()
    }

    pub fn is_empty(&self) -> bool {
        self.numbers() == 0
    }

    /// The codes in AU-number order.
    pub fn codes(&self) -> Vec<AuCode> {
        (0..64u8)
            .filter(|n| self.numbers() >> n & 1 == 1)
            .map(|n| {
                let side = if self.left >> n & 1 == 1 {
                    Some(AuSide::Left)
                } else if self.right >> n & 1 == 1 {
                    Some(AuSide::Right)
                } else {
                    None
                };
                AuCode { number: n, side }
            })
            .collect()
    }
}

/// A bit mask of AU numbers.
pub const fn mask(numbers: &[u8]) -> u64 {
    let mut m = 0u64;
    let mut i = 0;
    while i < numbers.len() {
        m |= 1u64 << numbers[i];
        i += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_unique_and_fits_a_mask() {
        assert!(AUS.windows(2).all(|w| w[0].number < w[1].number));
        assert!(AUS.iter().all(|a| a.number < 64));
        assert!(AUS.iter().all(|a| !a.muscle.is_empty()));
    }

    #[test]
    fn intensity_letters() {
        assert_eq!(intensity_letter(0.0), None);
        assert_eq!(intensity_letter(-0.1), None);
        assert_eq!(intensity_letter(0.05), Some('A'));
        assert_eq!(intensity_letter(0.2), Some('A'));
        assert_eq!(intensity_letter(0.21), Some('B'));
        assert_eq!(intensity_letter(0.5), Some('C'));
        assert_eq!(intensity_letter(0.8), Some('D'));
        assert_eq!(intensity_letter(0.95), Some('E'));
        assert_eq!(intensity_letter(3.0), Some('E'));
    }

    #[test]
    fn written_forms() {
        assert_eq!(
            AuCode::parse("AU12").unwrap(),
            AuCode {
                number: 12,
                side: None
            }
        );
        assert_eq!(
            AuCode::parse("12").unwrap(),
            AuCode {
                number: 12,
                side: None
            }
        );
        assert_eq!(
            AuCode::parse("R12").unwrap(),
            AuCode {
                number: 12,
                side: Some(AuSide::Right)
            }
        );
        assert_eq!(
            AuCode::parse("LAU14").unwrap(),
            AuCode {
                number: 14,
                side: Some(AuSide::Left)
            }
        );
        for bad in [
            "AU 12", " AU12", "AU012", "AU", "AU99", "X12", "R26", "au12", "AU12.0", "AU123",
        ] {
            assert!(AuCode::parse(bad).is_err(), "{bad}");
        }
        let v: Vec<AuCode> = serde_json::from_str(r#"["AU6", 12]"#).unwrap();
        assert_eq!(v[1].to_string(), "AU12");
        assert!(serde_json::from_str::<AuCode>("300").is_err());
    }

    #[test]
    fn sets_refuse_duplicates() {
        let s = AuSet::from_codes(&[AuCode::parse("AU6").unwrap(), AuCode::parse("R12").unwrap()])
            .unwrap();
        assert_eq!(s.numbers(), mask(&[6, 12]));
        assert_eq!(s.right, mask(&[12]));
        assert_eq!(
            s.codes().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            ["AU6", "R12"]
        );
        assert!(AuSet::from_codes(&[
            AuCode::parse("AU12").unwrap(),
            AuCode::parse("L12").unwrap()
        ])
        .is_err());
    }
}
