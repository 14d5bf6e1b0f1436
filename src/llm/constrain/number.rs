//! A bound on the digits of a JSON number. A grammar lets a number run on forever
//! (`0.333333...`), and a small model will write one until the token budget ends the value
//! unfinished; the schema has no keyword that bounds it. [`NumberGuard`] follows the bytes
//! written and, once a number holds [`MAX_NUMBER_DIGITS`] digits, forbids the tokens that would
//! add more, so the grammar's only way on is to end the number.

/// The most digits one number may hold before the guard ends it (a fraction, exponent and
/// sign can add at most two more, when the grammar needs a digit after `.` or `e`).
pub const MAX_NUMBER_DIGITS: usize = 16;

/// Where the bytes written so far leave a number, from a JSON lexer's view.
#[derive(Debug, Clone, Default)]
pub struct NumberGuard {
    in_string: bool,
    escaped: bool,
    /// Digits of the number being written; `None` outside a number.
    digits: Option<usize>,
}

impl NumberGuard {
    /// Follows the bytes of an accepted token.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    fn byte(&mut self, b: u8) {
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return;
        }
        self.digits = match (self.digits, b) {
            (d, b'0'..=b'9') => Some(d.unwrap_or(0) + 1),
            (None, b'-') => Some(0),
            (Some(d), b'.' | b'e' | b'E' | b'+' | b'-') => Some(d),
            _ => None,
        };
        if b == b'"' {
            self.in_string = true;
        }
    }

    /// A number is being written and has reached the bound.
    pub fn at_limit(&self) -> bool {
        self.digits.is_some_and(|d| d >= MAX_NUMBER_DIGITS)
    }

    /// Writing `bytes` now would add a digit to a number at the bound.
    pub fn overflows(&self, bytes: &[u8]) -> bool {
        if !self.at_limit() {
            return false;
        }
        let mut next = self.clone();
        for &b in bytes {
            next.byte(b);
            match next.digits {
                Some(d) if d > MAX_NUMBER_DIGITS => return true,
                Some(_) => {}
                None => return false,
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_count_in_numbers_only() {
        let mut g = NumberGuard::default();
        g.feed(b"{\"a\":\"1234567890123456789\",\"b\":-12.5e+3");
        assert_eq!(g.digits, Some(4), "the string's digits are no number");
        g.feed(b",\"c\":\"x\\\"9\"");
        assert_eq!(g.digits, None, "an escaped quote does not end the string");
        g.feed(b",\"d\":0.");
        assert!(!g.at_limit());
        g.feed(b"123456789012345");
        assert!(g.at_limit());
        assert!(g.overflows(b"7"));
        assert!(g.overflows(b"12}"));
        assert!(!g.overflows(b"}"));
        assert!(!g.overflows(b",\"e\":1"), "a new number starts from zero");
    }
}
