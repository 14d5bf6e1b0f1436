//! A JSON Schema validator for the subset our prompts use, to check what a constrained
//! generation wrote: `type`, `enum`, `const`, `properties`, `required`,
//! `additionalProperties`, `items`, `minItems`, `maxItems`, `uniqueItems`, `minLength`,
//! `maxLength`, `pattern`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`,
//! `anyOf`, `oneOf`, `allOf`. Other keywords are ignored.

use serde_json::Value;

/// `Ok` when `value` satisfies `schema`; else the first violation, with its JSON path.
pub fn validate(value: &Value, schema: &Value) -> Result<(), String> {
    check(value, schema, "$")
}

fn check(v: &Value, s: &Value, path: &str) -> Result<(), String> {
    let Some(s) = s.as_object() else {
        return match s {
            Value::Bool(false) => Err(format!("{path}: no value is allowed here")),
            _ => Ok(()),
        };
    };
    let fail = |what: String| Err(format!("{path}: {what}"));
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.iter().any(|t| is_type(v, t)) {
            return fail(format!("{v} is not of type {t}"));
        }
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array) {
        if !options.contains(v) {
            return fail(format!("{v} is not one of {}", s["enum"]));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            return fail(format!("{v} is not {c}"));
        }
    }
    for (i, branch) in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        check(v, branch, path).map_err(|e| format!("allOf[{i}]: {e}"))?;
    }
    if let Some(branches) = s.get("anyOf").and_then(Value::as_array) {
        if !branches.iter().any(|b| check(v, b, path).is_ok()) {
            return fail("matches no branch of anyOf".into());
        }
    }
    if let Some(branches) = s.get("oneOf").and_then(Value::as_array) {
        let n = branches
            .iter()
            .filter(|b| check(v, b, path).is_ok())
            .count();
        if n != 1 {
            return fail(format!("matches {n} branches of oneOf, not 1"));
        }
    }
    match v {
        Value::String(text) => check_string(text, s).or_else(fail),
        Value::Number(n) => check_number(n.as_f64().unwrap_or(f64::NAN), s).or_else(fail),
        Value::Array(items) => check_array(items, s, path),
        Value::Object(map) => check_object(map, s, path),
        _ => Ok(()),
    }
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

type Schema = serde_json::Map<String, Value>;

fn limit(s: &Schema, key: &str) -> Option<u64> {
    s.get(key).and_then(Value::as_u64)
}

fn check_string(text: &str, s: &Schema) -> Result<(), String> {
    let chars = text.chars().count() as u64;
    if limit(s, "maxLength").is_some_and(|m| chars > m) {
        return Err(format!("{chars} characters, more than maxLength"));
    }
    if limit(s, "minLength").is_some_and(|m| chars < m) {
        return Err(format!("{chars} characters, fewer than minLength"));
    }
    if let Some(pattern) = s.get("pattern").and_then(Value::as_str) {
        let re = regex::Regex::new(pattern).map_err(|e| format!("bad pattern: {e}"))?;
        if !re.is_match(text) {
            return Err(format!("{text:?} does not match {pattern}"));
        }
    }
    Ok(())
}

fn check_number(x: f64, s: &Schema) -> Result<(), String> {
    let bound = |k: &str| s.get(k).and_then(Value::as_f64);
    let out = bound("minimum").is_some_and(|m| x < m)
        || bound("maximum").is_some_and(|m| x > m)
        || bound("exclusiveMinimum").is_some_and(|m| x <= m)
        || bound("exclusiveMaximum").is_some_and(|m| x >= m);
    if out {
        return Err(format!("{x} is out of range"));
    }
    Ok(())
}

fn check_array(items: &[Value], s: &Schema, path: &str) -> Result<(), String> {
    let n = items.len() as u64;
    if limit(s, "maxItems").is_some_and(|m| n > m) || limit(s, "minItems").is_some_and(|m| n < m) {
        return Err(format!("{path}: {n} items, outside minItems..maxItems"));
    }
    if s.get("uniqueItems") == Some(&Value::Bool(true)) {
        for (i, item) in items.iter().enumerate() {
            if items[..i].contains(item) {
                return Err(format!("{path}[{i}]: {item} repeats an earlier item"));
            }
        }
    }
    if let Some(item_schema) = s.get("items") {
        for (i, item) in items.iter().enumerate() {
            check(item, item_schema, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

fn check_object(
    map: &serde_json::Map<String, Value>,
    s: &Schema,
    path: &str,
) -> Result<(), String> {
    for key in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = key.as_str().unwrap_or_default();
        if !map.contains_key(key) {
            return Err(format!("{path}: required property {key:?} is missing"));
        }
    }
    let properties = s.get("properties").and_then(Value::as_object);
    for (key, value) in map {
        let at = format!("{path}.{key}");
        match (
            properties.and_then(|p| p.get(key)),
            s.get("additionalProperties"),
        ) {
            (Some(p), _) => check(value, p, &at)?,
            (None, Some(Value::Bool(false))) => {
                return Err(format!("{at}: property not allowed (additionalProperties)"));
            }
            (None, Some(extra)) => check(value, extra, &at)?,
            (None, None) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_answer_schema_accepts_and_refuses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/answer.schema.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let ok = json!({"emotion": "happiness", "aus": ["AU6", "R12"], "text": "smile"});
        assert_eq!(validate(&ok, &schema), Ok(()));
        for bad in [
            json!({"emotion": "happiness"}),
            json!({"emotion": "happiness", "aus": ["AU6", "AU6"]}),
            json!({"emotion": "happiness", "aus": ["AU0"]}),
            json!({"emotion": "happiness", "aus": [], "extra": 1}),
            json!({"emotion": 3, "aus": []}),
        ] {
            assert!(validate(&bad, &schema).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_enums_consts_and_branches() {
        let s = json!({"anyOf": [
            {"type": "object", "properties": {"tool": {"const": "zoom"},
                "args": {"type": "object", "properties": {"scale": {"type": "integer",
                    "minimum": 1, "maximum": 4}}, "required": ["scale"]}},
             "required": ["tool", "args"]},
            {"type": "string", "enum": ["a", "b"], "maxLength": 1},
        ]});
        assert_eq!(
            validate(&json!({"tool": "zoom", "args": {"scale": 2}}), &s),
            Ok(())
        );
        assert_eq!(validate(&json!("b"), &s), Ok(()));
        for bad in [
            json!({"tool": "zoom", "args": {"scale": 5}}),
            json!({"tool": "zoom", "args": {"scale": 1.5}}),
            json!({"tool": "pan", "args": {"scale": 2}}),
            json!("c"),
        ] {
            assert!(validate(&bad, &s).is_err(), "{bad}");
        }
    }
}
