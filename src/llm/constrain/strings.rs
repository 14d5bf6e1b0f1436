//! Where generated JSON is inside a string: the repetition penalty of an agent's reply reads
//! only the string being written (a thought, an answer's text), never the JSON around it, whose
//! keys, quotes and repeated codes (`"AU4","AU7"`) are repetition by design.

/// Follows the text of a JSON value as it is generated and keeps the tokens that lie wholly
/// inside the string being written, except those with digits.
#[derive(Debug, Default, Clone)]
pub struct OpenString {
    inside: bool,
    escaped: bool,
    tokens: Vec<u32>,
}

impl OpenString {
    /// Takes the next token and the text it decoded to.
    pub fn push(&mut self, token: u32, piece: &str) {
        let was_inside = self.inside;
        let mut quotes = 0;
        for c in piece.chars() {
            if !self.inside {
                if c == '"' {
                    self.inside = true;
                    self.tokens.clear();
                    quotes += 1;
                }
            } else if self.escaped {
                self.escaped = false;
            } else if c == '\\' {
                self.escaped = true;
            } else if c == '"' {
                self.inside = false;
                quotes += 1;
            }
        }
        // digits are never penalised: a number copied from an observation (`1.00`) must stay
        // the number it was
        let digits = piece.chars().any(|c| c.is_ascii_digit());
        if was_inside && self.inside && quotes == 0 && !digits {
            self.tokens.push(token);
        }
        if !self.inside {
            self.tokens.clear();
        }
    }

    /// The tokens of the string being written so far; empty outside a string.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(pieces: &[&str]) -> OpenString {
        let mut s = OpenString::default();
        for (i, p) in pieces.iter().enumerate() {
            s.push(i as u32, p);
        }
        s
    }

    #[test]
    fn keeps_only_the_tokens_inside_the_open_string() {
        assert!(feed(&["{\"", "thought"]).tokens() == [1]);
        assert_eq!(feed(&["{\"", "thought", "\":\""]).tokens(), [] as [u32; 0]);
        // the key is closed and the value opened by the same piece, then three content tokens
        assert_eq!(
            feed(&["{\"", "text", "\":\"", "Smile", ",", " Smile"]).tokens(),
            [3, 4, 5]
        );
        // a closed string leaves nothing to penalise
        let s = feed(&["{\"", "text", "\":\"", "Smile", "\"}"]);
        assert!(s.tokens().is_empty());
    }

    #[test]
    fn digits_are_not_penalised() {
        let s = feed(&["\"", "Jaw Drop ", "1", ".", "00", ", AU", "26"]);
        assert_eq!(s.tokens(), [1, 3, 5]);
    }

    #[test]
    fn an_escaped_quote_does_not_close_the_string() {
        let s = feed(&["\"", "say ", "\\\"", "hi", "\\\\", "x"]);
        assert_eq!(s.tokens(), [1, 2, 3, 4, 5]);
        let s = feed(&["\"", "a", "\\\\\"", "b"]);
        assert!(
            s.tokens().is_empty(),
            "an escaped backslash then a real quote closes it"
        );
    }
}
