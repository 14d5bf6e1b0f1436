//! Base64 (RFC 4648, standard alphabet, padded): the report inlines its images as `data:` URIs
//! and names its script by hash in the page's Content-Security-Policy. Thirty lines are
//! cheaper than a dependency for an encoder that never has to decode.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes`, padding the last group with `=`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        // Three bytes (zero-filled at the end) as one 24-bit group, read as four 6-bit digits.
        let group = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        // A chunk of n bytes carries n + 1 digits; the rest of the four are padding.
        for k in 0..4 {
            if k <= chunk.len() {
                let digit = (group >> (18 - 6 * k)) & 0x3f;
                out.push(ALPHABET[digit as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    /// The test vectors of RFC 4648, section 10.
    #[test]
    fn rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    /// Every byte value, so every digit (`+` and `/` included) and bytes above 0x7f. Reference:
    /// `python3 -c "import base64; print(base64.b64encode(bytes(range(256))).decode())"`.
    #[test]
    fn all_byte_values() {
        let bytes: Vec<u8> = (0..=255).collect();
        let expected = concat!(
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4",
            "OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3Bx",
            "cnN0dXZ3eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmq",
            "q6ytrq+wsbKztLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj",
            "5OXm5+jp6uvs7e7v8PHy8/T19vf4+fr7/P3+/w==",
        );
        assert_eq!(encode(&bytes), expected);
    }
}
