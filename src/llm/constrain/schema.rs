//! The schema as llguidance gets it: bounded where the original is open, compact JSON, and
//! without `uniqueItems` (which [`super::unique`] enforces instead).
//!
//! Every value the rewritten schema accepts, the original accepts too.

use serde_json::{json, Value};

/// The most characters of a string the schema leaves open (no `maxLength`, `enum`, `const`,
/// `pattern` or `format`). A small model can write one string forever; this ends it.
pub const DEFAULT_MAX_LENGTH: u64 = 200;

/// The most items of an array the schema leaves open (no `maxItems`).
pub const DEFAULT_MAX_ITEMS: u64 = 16;

/// The schema to compile: `schema` with default bounds, compact separators (`,` and `:`, no
/// whitespace between tokens of JSON) and no `uniqueItems`.
pub fn for_llguidance(schema: &Value) -> Value {
    let mut out = schema.clone();
    bound(&mut out);
    if let Value::Object(map) = &mut out {
        map.insert(
            "x-guidance".into(),
            json!({"whitespace_flexible": false, "item_separator": ",", "key_separator": ":"}),
        );
    }
    out
}

/// Adds the default bounds and drops `uniqueItems`, in `schema` and every schema inside it.
fn bound(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    let has = |k: &str| map.contains_key(k);
    let is_type = |t: &str| match map.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(a)) => a.iter().any(|x| x == t),
        _ => false,
    };
    let open_string = is_type("string")
        && !["maxLength", "enum", "const", "pattern", "format"]
            .iter()
            .any(|k| has(k));
    let open_array = is_type("array") && !has("maxItems") && !has("prefixItems");
    if open_string {
        map.insert("maxLength".into(), DEFAULT_MAX_LENGTH.into());
    }
    if open_array {
        map.insert("maxItems".into(), DEFAULT_MAX_ITEMS.into());
    }
    map.remove("uniqueItems");
    for (key, value) in map.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" | "definitions" | "patternProperties" => {
                if let Value::Object(children) = value {
                    children.values_mut().for_each(bound);
                }
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                if let Value::Array(children) = value {
                    children.iter_mut().for_each(bound);
                }
            }
            "items" | "additionalProperties" | "additionalItems" | "not" => bound(value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_strings_and_arrays_get_bounds_and_unique_items_go() {
        let s = json!({"type": "object", "properties": {
            "a": {"type": "string"},
            "b": {"type": "string", "enum": ["x"]},
            "c": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
            "d": {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 3}},
        }});
        let out = for_llguidance(&s);
        let p = &out["properties"];
        assert_eq!(p["a"]["maxLength"], DEFAULT_MAX_LENGTH);
        assert!(p["b"].get("maxLength").is_none());
        assert_eq!(p["c"]["maxItems"], DEFAULT_MAX_ITEMS);
        assert_eq!(p["c"]["items"]["maxLength"], DEFAULT_MAX_LENGTH);
        assert!(p["c"].get("uniqueItems").is_none());
        assert_eq!(p["d"]["maxItems"], 2);
        assert_eq!(p["d"]["items"]["maxLength"], 3);
        assert_eq!(out["x-guidance"]["whitespace_flexible"], false);
    }
}
