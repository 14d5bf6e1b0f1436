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
    /// FACS can score it on one side only (`L`/`R` prefix).
    pub one_sided: bool,
}

const fn au(number: u8, name: &'static str, one_sided: bool) -> AuInfo {
    AuInfo {
        number,
        name,
        one_sided,
    }
}

/// Every AU actfer knows, in FACS order. Numbers stay below 64 ([`AuSet`] is a bit mask).
pub const AUS: &[AuInfo] = &[
    au(1, "Inner Brow Raiser", true),
    au(2, "Outer Brow Raiser", true),
    au(4, "Brow Lowerer", true),
    au(5, "Upper Lid Raiser", true),
    au(6, "Cheek Raiser", true),
    au(7, "Lid Tightener", true),
    au(9, "Nose Wrinkler", false),
    au(10, "Upper Lip Raiser", true),
    au(11, "Nasolabial Deepener", true),
    au(12, "Lip Corner Puller", true),
    au(14, "Dimpler", true),
    au(15, "Lip Corner Depressor", true),
    au(16, "Lower Lip Depressor", false),
    au(17, "Chin Raiser", false),
    au(18, "Lip Pucker", false),
    au(20, "Lip Stretcher", true),
    au(22, "Lip Funneler", false),
    au(23, "Lip Tightener", false),
    au(24, "Lip Pressor", false),
    au(25, "Lips Part", false),
    au(26, "Jaw Drop", false),
    au(27, "Mouth Stretch", false),
    au(28, "Lip Suck", false),
    au(43, "Eyes Closed", false),
    au(45, "Blink", false),
    au(46, "Wink", true),
];

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
