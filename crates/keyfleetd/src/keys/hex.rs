//! Lowercase hexadecimal for public keys, wrapped keys and check values.

/// Encodes `bytes` as lowercase hexadecimal.
pub(crate) fn encode(bytes: &[u8]) -> String {
    use std::fmt::Write;

    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        write!(text, "{byte:02x}").expect("writing to a String cannot fail");
    }
    text
}

/// Decodes hexadecimal in either case. The error explains what is wrong with `text`, without
/// repeating it.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err(format!(
            "{} hexadecimal digits is an odd number",
            text.len()
        ));
    }

    text.as_bytes()
        .chunks_exact(2)
        .enumerate()
        .map(|(index, pair)| {
            let high = digit(pair[0]);
            let low = digit(pair[1]);
            match (high, low) {
                (Some(high), Some(low)) => Ok(high << 4 | low),
                _ => Err(format!(
                    "character {} or {} is not a hexadecimal digit",
                    2 * index + 1,
                    2 * index + 2
                )),
            }
        })
        .collect()
}

fn digit(character: u8) -> Option<u8> {
    match character {
        b'0'..=b'9' => Some(character - b'0'),
        b'a'..=b'f' => Some(character - b'a' + 10),
        b'A'..=b'F' => Some(character - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = [0x00, 0x0f, 0xa5, 0xff];

        assert_eq!(encode(&bytes), "000fa5ff");
        assert_eq!(decode("000fa5ff").unwrap(), bytes);
        assert_eq!(decode("000FA5FF").unwrap(), bytes);
    }

    #[test]
    fn decode_rejects_bad_text() {
        assert!(decode("abc").unwrap_err().contains("odd"));
        assert!(
            decode("zz")
                .unwrap_err()
                .contains("not a hexadecimal digit")
        );
        assert!(decode("0g").unwrap_err().contains("character 1 or 2"));
    }
}
