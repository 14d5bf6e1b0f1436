//! `uniqueItems` for arrays of strings, which no grammar can say: follow the JSON text as it
//! is written, and forbid the tokens that would close a string item equal to an earlier item
//! of the same array.
//!
//! The schema is followed through `properties` (in every branch of `anyOf`, `oneOf`,
//! `allOf`), `additionalProperties` and `items`; an array is checked when any schema that may
//! apply to it asks for unique items. Arrays reached through `$ref`, and items that are not
//! strings, are not checked. [`super::JsonConstraint`] also looks ahead, so the
//! model does not enter an item that can only end as a repeat (`"AU12` when `"AU12"` is
//! already there).

use std::sync::Arc;

use llguidance::toktrie::SimpleVob;
use serde_json::Value;

/// Where the text is: the open containers, innermost last, and the string being written.
#[derive(Debug, Clone)]
pub struct UniqueGuard {
    schema: Option<Arc<Value>>,
    stack: Vec<Frame>,
    /// Raw bytes of the string being written (between the quotes, escapes as written).
    string: Option<Vec<u8>>,
    escaped: bool,
}

#[derive(Debug, Clone)]
enum Frame {
    /// `schemas`: the schemas that may apply to the object; `key`: the last key read;
    /// `in_key`: the next string is a key.
    Object {
        schemas: Vec<Arc<Value>>,
        key: Option<String>,
        in_key: bool,
    },
    /// `seen`: the string items so far, when the array asks for unique items.
    Array {
        items: Vec<Arc<Value>>,
        seen: Option<Vec<String>>,
    },
}

impl UniqueGuard {
    /// A guard for `schema`; one that does nothing when no array in it asks for unique items.
    pub fn new(schema: &Value) -> Self {
        let any = schema.to_string().contains("\"uniqueItems\":true");
        UniqueGuard {
            schema: any.then(|| Arc::new(schema.clone())),
            stack: Vec::new(),
            string: None,
            escaped: false,
        }
    }

    /// Follows `bytes` of the text; `false` when they close a repeated item.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        if self.schema.is_none() {
            return true;
        }
        let mut fresh = true;
        for &b in bytes {
            fresh &= self.byte(b);
        }
        fresh
    }

    /// Inside an array with unique items that already has one: the only place a token can
    /// repeat an item.
    pub fn checking(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Array { seen: Some(s), .. }) if !s.is_empty())
    }

    /// Writing a string item of an array that [`checking`](Self::checking) applies to.
    pub fn in_item(&self) -> bool {
        self.string.is_some() && self.checking()
    }

    /// The tokens allowed by `mask` that would close a repeated item (they are among
    /// `quote_tokens`, the tokens with a `"`).
    pub fn repeats(
        &self,
        mask: &SimpleVob,
        quote_tokens: &[u32],
        token_bytes: &[Vec<u8>],
    ) -> Vec<u32> {
        if !self.checking() {
            return Vec::new();
        }
        quote_tokens
            .iter()
            .copied()
            .filter(|&t| mask.is_allowed(t) && !self.clone().feed(&token_bytes[t as usize]))
            .collect()
    }

    fn byte(&mut self, b: u8) -> bool {
        if let Some(s) = &mut self.string {
            if self.escaped {
                self.escaped = false;
                s.push(b);
            } else if b == b'\\' {
                self.escaped = true;
                s.push(b);
            } else if b == b'"' {
                let raw = self.string.take().unwrap_or_default();
                return self.close_string(raw);
            } else {
                s.push(b);
            }
            return true;
        }
        match b {
            b'"' => self.string = Some(Vec::new()),
            b'{' => {
                let schemas = self.child_schemas();
                self.stack.push(Frame::Object {
                    schemas,
                    key: None,
                    in_key: true,
                });
            }
            b'[' => {
                let schemas = self.child_schemas();
                let unique = schemas
                    .iter()
                    .any(|s| s.get("uniqueItems") == Some(&Value::Bool(true)));
                self.stack.push(Frame::Array {
                    items: schemas
                        .iter()
                        .filter_map(|s| s.get("items"))
                        .map(|s| Arc::new(s.clone()))
                        .collect(),
                    seen: unique.then(Vec::new),
                });
            }
            b'}' | b']' => {
                self.stack.pop();
            }
            b',' => {
                if let Some(Frame::Object { in_key, .. }) = self.stack.last_mut() {
                    *in_key = true;
                }
            }
            _ => {}
        }
        true
    }

    /// A string ended: a key, a value, or an item (checked against the earlier ones).
    fn close_string(&mut self, raw: Vec<u8>) -> bool {
        let mut quoted = Vec::with_capacity(raw.len() + 2);
        quoted.push(b'"');
        quoted.extend(&raw);
        quoted.push(b'"');
        let text: String = serde_json::from_slice(&quoted)
            .unwrap_or_else(|_| String::from_utf8_lossy(&raw).into_owned());
        match self.stack.last_mut() {
            Some(Frame::Object { key, in_key, .. }) if *in_key => {
                *key = Some(text);
                *in_key = false;
            }
            Some(Frame::Array {
                seen: Some(seen), ..
            }) => {
                if seen.contains(&text) {
                    return false;
                }
                seen.push(text);
            }
            _ => {}
        }
        true
    }

    /// The schemas that may apply to a value that starts here: the root, a property, or an
    /// item.
    fn child_schemas(&self) -> Vec<Arc<Value>> {
        match self.stack.last() {
            None => self.schema.iter().cloned().collect(),
            Some(Frame::Object { schemas, key, .. }) => {
                let mut found = Vec::new();
                if let Some(key) = key {
                    schemas.iter().for_each(|s| properties(s, key, &mut found));
                }
                found.into_iter().map(|s| Arc::new(s.clone())).collect()
            }
            Some(Frame::Array { items, .. }) => items.clone(),
        }
    }
}

/// The schemas of property `key`: in `properties` or `additionalProperties`, of `schema` and
/// of every branch of its `anyOf`, `oneOf` and `allOf`.
fn properties<'a>(schema: &'a Value, key: &str, found: &mut Vec<&'a Value>) {
    match schema.get("properties").and_then(|p| p.get(key)) {
        Some(p) => found.push(p),
        None => found.extend(schema.get("additionalProperties").filter(|a| a.is_object())),
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        for branch in schema
            .get(combinator)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            properties(branch, key, found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "aus": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
            "tags": {"type": "array", "items": {"type": "string"}},
        }})
    }

    #[test]
    fn a_repeated_item_is_caught_and_keys_or_other_arrays_are_not() {
        let mut g = UniqueGuard::new(&schema());
        assert!(g.feed(br#"{"tags":["a","a"],"aus":["AU6","AU12""#));
        assert!(!g.clone().feed(br#","AU6""#));
        assert!(g.clone().feed(br#","AU\u0036x""#));
        assert!(!g.clone().feed(br#","AU\u0036""#), "escapes are decoded");
        assert!(g.feed(br#","AU1"]}"#));
    }

    #[test]
    fn arrays_inside_any_of_branches_are_followed() {
        let s = json!({"anyOf": [
            {"properties": {"args": {"properties": {"x": {"type": "integer"}}}}},
            {"properties": {"args": {"properties": {"aus": {"type": "array",
                "uniqueItems": true}}}}},
        ]});
        let mut g = UniqueGuard::new(&s);
        assert!(g.feed(br#"{"tool":"a","args":{"aus":["AU1""#));
        assert!(!g.feed(br#","AU1""#));
    }

    #[test]
    fn repeats_are_the_tokens_that_close_a_repeated_item() {
        let tokens: Vec<Vec<u8>> = vec![b"\"".to_vec(), b"AU6\"".to_vec(), b"7".to_vec()];
        let quote_tokens = [0, 1];
        let mut g = UniqueGuard::new(&schema());
        g.feed(br#"{"aus":["AU6""#);
        assert!(g.checking());
        g.feed(br#","AU6"#);
        let mask = SimpleVob::alloc_ones(3);
        assert_eq!(g.repeats(&mask, &quote_tokens, &tokens), vec![0]);
        let mut g = UniqueGuard::new(&schema());
        g.feed(br#"{"tags":["a","#);
        assert!(!g.checking());
    }
}
