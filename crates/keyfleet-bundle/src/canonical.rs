//! Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace, and only integers
//! and strings as scalars, so that one document has exactly one encoding and one digest.

use serde_json::Value;

use crate::error::ArtifactError;

/// Writes `value` in canonical form.
///
/// Floats are rejected because their decimal form is not unique.
pub fn to_canonical_json(value: &Value) -> Result<Vec<u8>, ArtifactError> {
    let mut out = Vec::new();
    write_value(value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), ArtifactError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(flag) => out.extend_from_slice(if *flag { b"true" } else { b"false" }),
        Value::Number(number) => {
            if !(number.is_u64() || number.is_i64()) {
                return Err(ArtifactError::NotCanonical(format!(
                    "the number {number} is not an integer"
                )));
            }
            out.extend_from_slice(number.to_string().as_bytes());
        }
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Writes a JSON string, escaping only `"`, `\` and control characters, the minimum that
/// RFC 8259 requires.
fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for character in text.chars() {
        match character {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            control if (control as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", control as u32).as_bytes());
            }
            other => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(other.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn canonical_json_sorts_keys() {
        let value = json!({"b": 1, "a": {"d": [1, "x"], "c": null}});
        let bytes = to_canonical_json(&value).unwrap();
        assert_eq!(bytes, br#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }

    #[test]
    fn canonical_json_escapes_controls() {
        let value = json!("a\"b\\c\n\u{1}é");
        let bytes = to_canonical_json(&value).unwrap();
        assert_eq!(bytes, "\"a\\\"b\\\\c\\n\\u0001é\"".as_bytes());
    }

    #[test]
    fn canonical_json_rejects_floats() {
        let result = to_canonical_json(&json!({"x": 1.5}));
        assert!(matches!(result, Err(ArtifactError::NotCanonical(_))));
    }
}
