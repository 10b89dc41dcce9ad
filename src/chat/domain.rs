//! Parse, don't validate: the chat's values, each with a private field and a `parse`
//! that is the only way to get one.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytestring::ByteString;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::error::ChatError;

/// A room id: 22–64 characters of `[A-Za-z0-9_-]`. Shared, not copied: every message
/// carries its room id to the store and back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(Arc<str>);

impl RoomId {
    pub const MIN_LEN: usize = 22;
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<RoomId, ChatError> {
        let ok = (Self::MIN_LEN..=Self::MAX_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(RoomId(s.into()))
        } else {
            Err(ChatError::InvalidRoom)
        }
    }

    /// A new unguessable room id: 16 random bytes as 22 base64url characters.
    pub fn generate() -> RoomId {
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        RoomId(URL_SAFE_NO_PAD.encode(raw).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a shared string (a reference count, no copy).
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A nickname: 1–32 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nickname(String);

impl Nickname {
    pub const MAX_CHARS: usize = 32;

    pub fn parse(s: &str) -> Result<Nickname, ChatError> {
        let trimmed = s.trim();
        let count = trimmed.chars().count();
        if count == 0 {
            return Err(ChatError::InvalidNickname("a name is required".into()));
        }
        if count > Self::MAX_CHARS {
            return Err(ChatError::InvalidNickname(format!(
                "a name has at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(ChatError::InvalidNickname(
                "a name cannot contain control characters".into(),
            ));
        }
        Ok(Nickname(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether two names are the same person's name in a room (case ignored).
    pub fn same_as(&self, other: &str) -> bool {
        self.0.to_lowercase() == other.to_lowercase()
    }
}

/// An e-mail address that looks like one: `local@domain.tld`, no spaces, ≤ 254
/// characters. Only its Gravatar hash is ever kept.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(…)")
    }
}

impl Email {
    pub fn parse(s: &str) -> Result<Email, ChatError> {
        let e = s.trim();
        let invalid = || ChatError::InvalidEmail;
        if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = e.rsplit_once('@').ok_or_else(invalid)?;
        if local.is_empty() || local.contains('@') || domain.len() < 3 {
            return Err(invalid());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
            return Err(invalid());
        }
        Ok(Email(e.to_owned()))
    }

    /// The md5 hex of the trimmed, lower-case address.
    pub fn gravatar_hash(&self) -> String {
        hex(&md5::compute(self.0.to_lowercase().as_bytes()).0)
    }

    /// `https://www.gravatar.com/avatar/<md5>?s=140&r=x&d=mm`.
    pub fn avatar_url(&self) -> String {
        avatar_url(&self.gravatar_hash())
    }
}

/// The Gravatar URL of an e-mail hash.
pub fn avatar_url(hash: &str) -> String {
    format!("https://www.gravatar.com/avatar/{hash}?s=140&r=x&d=mm")
}

/// A message text: 1–2000 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(ByteString);

impl MessageText {
    pub const MAX_CHARS: usize = 2000;

    pub fn parse(s: &str) -> Result<MessageText, ChatError> {
        MessageText::check(s.into())
    }

    /// `text` checked as a message and kept as it is: shared text stays shared (a
    /// view of the packet it came in), not copied.
    pub fn check(text: ByteString) -> Result<MessageText, ChatError> {
        let s: &str = &text;
        if s.trim().is_empty() {
            return Err(ChatError::InvalidMessage(
                "a message cannot be empty".into(),
            ));
        }
        // Counting characters only when the bytes could be too many of them.
        if s.len() > Self::MAX_CHARS && s.chars().count() > Self::MAX_CHARS {
            return Err(ChatError::MessageTooLong);
        }
        Ok(MessageText(text))
    }

    pub fn into_text(self) -> ByteString {
        self.0
    }
}

/// A client's own message id, for safe retries: 1–64 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(s: &str) -> Result<ClientId, ChatError> {
        if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ChatError::InvalidMessage(
                "cid must be 1–64 printable ASCII characters".into(),
            ));
        }
        Ok(ClientId(s.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A participant token: 32 random bytes, base64url. The browser keeps it; the server
/// keeps only its SHA-256.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

impl Token {
    const LEN: usize = 43;

    pub fn generate() -> Token {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        Token(URL_SAFE_NO_PAD.encode(raw))
    }

    /// A token shaped like ours; anything else is no token at all.
    pub fn parse(s: &str) -> Option<Token> {
        (s.len() == Self::LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Token(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SHA-256 hex the store keeps.
    pub fn hash(&self) -> String {
        hash_token(&self.0)
    }
}

/// SHA-256 hex of a token as presented (e.g. in an `Authorization` header).
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lower-case hex of `bytes` (a table lookup per nibble: `format!("{:02x}")` per byte
/// was ~3 % of a login's instructions).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    // Only ASCII digits and letters were pushed.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), expected);
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn room_ids_are_22_to_64_url_safe_characters() {
        assert!(RoomId::parse(&"a".repeat(22)).is_ok());
        assert!(RoomId::parse(&"a".repeat(64)).is_ok());
        assert!(RoomId::parse(&"a".repeat(21)).is_err());
        assert!(RoomId::parse(&"a".repeat(65)).is_err());
        assert!(RoomId::parse("aaaaaaaaaaaaaaaaaaaaa/").is_err());
        assert!(RoomId::parse("aaaaaaaaaaaaaaaaaaaaa:b").is_err());
        let generated = RoomId::generate();
        assert_eq!(generated.as_str().len(), 22);
        assert!(RoomId::parse(generated.as_str()).is_ok());
        assert_ne!(RoomId::generate(), RoomId::generate());
    }

    #[test]
    fn nicknames_are_trimmed_bounded_and_printable() {
        assert_eq!(Nickname::parse("  Ada  ").unwrap().as_str(), "Ada");
        assert!(Nickname::parse("   ").is_err());
        assert!(Nickname::parse(&"é".repeat(32)).is_ok());
        assert!(Nickname::parse(&"é".repeat(33)).is_err());
        assert!(Nickname::parse("a\u{7}b").is_err());
        assert!(Nickname::parse("Ada").unwrap().same_as("ADA"));
    }

    #[test]
    fn emails_must_look_like_emails() {
        assert!(Email::parse("ada@example.com").is_ok());
        assert!(Email::parse(" Ada@Example.com ").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@.com",
            "ada@example..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_avatar_is_the_gravatar_of_the_trimmed_lower_case_email() {
        let e = Email::parse("  MyEmailAddress@example.com ").unwrap();
        assert_eq!(e.gravatar_hash(), "0bc83cb571cd1c50ba6f3e8a78ef1346");
        assert_eq!(
            e.avatar_url(),
            "https://www.gravatar.com/avatar/0bc83cb571cd1c50ba6f3e8a78ef1346?s=140&r=x&d=mm"
        );
    }

    #[test]
    fn messages_are_1_to_2000_characters_and_not_blank() {
        assert!(MessageText::parse("hi").is_ok());
        assert!(matches!(
            MessageText::parse(" \n "),
            Err(ChatError::InvalidMessage(_))
        ));
        assert!(MessageText::parse(&"x".repeat(2000)).is_ok());
        assert!(matches!(
            MessageText::parse(&"x".repeat(2001)),
            Err(ChatError::MessageTooLong)
        ));
        // Characters, not bytes: 2,000 of two or four bytes each are fine.
        assert!(MessageText::parse(&"é".repeat(2000)).is_ok());
        assert!(MessageText::parse(&"😀".repeat(2000)).is_ok());
        assert!(matches!(
            MessageText::parse(&"é".repeat(2001)),
            Err(ChatError::MessageTooLong)
        ));
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let t = Token::generate();
        assert_eq!(Token::parse(t.as_str()), Some(t.clone()));
        assert_eq!(t.hash().len(), 64);
        assert_ne!(t.hash(), Token::generate().hash());
        assert_eq!(Token::parse("short"), None);
    }
}
