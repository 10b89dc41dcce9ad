//! Session ids: 128 random bits, URL-safe, stored inline (no allocation).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

const LEN: usize = 22;

/// An unguessable session id: 16 random bytes as 22 base64url characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; LEN]);

impl Sid {
    pub fn random() -> Sid {
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let mut out = [0u8; LEN];
        // 16 bytes always encode to exactly 22 characters.
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut out)
            .unwrap_or_default();
        debug_assert_eq!(written, LEN);
        Sid(out)
    }

    /// Parses a sid sent by a client; anything not shaped like one is `None`.
    pub fn parse(s: &str) -> Option<Sid> {
        let bytes = s.as_bytes();
        if bytes.len() != LEN
            || !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return None;
        }
        let mut out = [0u8; LEN];
        out.copy_from_slice(bytes);
        Some(Sid(out))
    }

    pub fn as_str(&self) -> &str {
        // Only base64url characters are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_sids_are_distinct_url_safe_and_parse_back() {
        let a = Sid::random();
        let b = Sid::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 22);
        assert_eq!(Sid::parse(a.as_str()), Some(a));
    }

    #[test]
    fn malformed_sids_do_not_parse() {
        assert_eq!(Sid::parse(""), None);
        assert_eq!(Sid::parse("short"), None);
        assert_eq!(Sid::parse("!!!!!!!!!!!!!!!!!!!!!!"), None);
    }
}
