//! The Engine.IO v4 packet codec: pure functions, no I/O.
//!
//! A text packet is one type digit then its data:
//! `0` open (JSON handshake), `1` close, `2` ping, `3` pong, `4` message, `5` upgrade,
//! `6` noop. `2probe`/`3probe` are the upgrade probes. A binary message travels as a raw
//! binary WebSocket frame, or as `b<base64>` inside an HTTP long-polling payload, where
//! packets are joined with the record separator `\x1e`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use bytestring::ByteString;

/// The record separator that joins packets in a long-polling payload.
pub const SEPARATOR: char = '\x1e';

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// The handshake, as its JSON text.
    Open(String),
    Close,
    Ping,
    /// `2probe`: the client tests a new transport.
    PingProbe,
    Pong,
    /// `3probe`: the answer to `2probe`.
    PongProbe,
    Message(Text),
    Binary(Bytes),
    Upgrade,
    Noop,
}

/// A message's text: the application's own string, or a view of the frame or payload a
/// client's message came in (shared with it, not copied). Either reads as a `str`.
#[derive(Debug, Clone)]
pub enum Text {
    Owned(String),
    Shared(ByteString),
}

impl Text {
    /// The text as shared bytes: a view as it is, an owned string moved (a string whose
    /// capacity is larger than its length costs `Bytes` one small allocation).
    pub fn into_shared(self) -> ByteString {
        match self {
            Text::Owned(text) => text.into(),
            Text::Shared(text) => text,
        }
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Text::Owned(text) => text,
            Text::Shared(text) => text,
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        **self == **other
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        **self == *other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        **self == **other
    }
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text::Owned(text)
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text::Owned(text.to_owned())
    }
}

impl From<ByteString> for Text {
    fn from(text: ByteString) -> Text {
        Text::Shared(text)
    }
}

/// Why bytes are not an Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    #[error("invalid base64 in a binary packet")]
    Base64,
    #[error("unexpected data after a {0} packet")]
    TrailingData(&'static str),
}

impl Packet {
    /// Decodes one text packet (a WebSocket text frame, or one record of a payload); a
    /// message's text is copied out of `text`.
    pub fn decode(text: &str) -> Result<Packet, DecodeError> {
        Packet::decode_in(text, None)
    }

    /// Decodes one text packet held in shared bytes: a message's text is a view of
    /// `text`, not a copy.
    pub fn decode_shared(text: &ByteString) -> Result<Packet, DecodeError> {
        Packet::decode_in(text, Some(text))
    }

    /// Decodes `text`, which is `owner` or a part of it when there is an owner.
    fn decode_in(text: &str, owner: Option<&ByteString>) -> Result<Packet, DecodeError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(DecodeError::Empty)?;
        let data = chars.as_str();
        let no_data = |p: Packet, name: &'static str| {
            if data.is_empty() {
                Ok(p)
            } else {
                Err(DecodeError::TrailingData(name))
            }
        };
        match kind {
            '0' => Ok(Packet::Open(data.to_owned())),
            '1' => no_data(Packet::Close, "close"),
            '2' if data == "probe" => Ok(Packet::PingProbe),
            '2' => no_data(Packet::Ping, "ping"),
            '3' if data == "probe" => Ok(Packet::PongProbe),
            '3' => no_data(Packet::Pong, "pong"),
            '4' => Ok(Packet::Message(match owner {
                Some(owner) => Text::Shared(owner.slice_ref(data)),
                None => data.into(),
            })),
            '5' => no_data(Packet::Upgrade, "upgrade"),
            '6' => no_data(Packet::Noop, "noop"),
            'b' => BASE64
                .decode(data)
                .map(|v| Packet::Binary(Bytes::from(v)))
                .map_err(|_| DecodeError::Base64),
            other => Err(DecodeError::UnknownType(other)),
        }
    }

    /// Appends the text form of this packet to `out`; binary becomes `b<base64>`
    /// (the long-polling form).
    pub fn encode_into(&self, out: &mut String) {
        match self {
            Packet::Open(json) => {
                out.push('0');
                out.push_str(json);
            }
            Packet::Close => out.push('1'),
            Packet::Ping => out.push('2'),
            Packet::PingProbe => out.push_str("2probe"),
            Packet::Pong => out.push('3'),
            Packet::PongProbe => out.push_str("3probe"),
            Packet::Message(text) => {
                out.push('4');
                out.push_str(text);
            }
            Packet::Binary(bytes) => {
                out.push('b');
                BASE64.encode_string(bytes, out);
            }
            Packet::Upgrade => out.push('5'),
            Packet::Noop => out.push('6'),
        }
    }

    /// The text form of this packet.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.encoded_len_hint());
        self.encode_into(&mut out);
        out
    }

    /// The length of the text form (binary: of the packet's bytes, +1), roughly.
    pub(crate) fn encoded_len_hint(&self) -> usize {
        match self {
            Packet::Open(s) => s.len() + 1,
            Packet::Message(s) => s.len() + 1,
            Packet::Binary(b) => b.len().div_ceil(3) * 4 + 1,
            _ => 6,
        }
    }
}

/// Decodes a long-polling payload: packets joined with `\x1e`. Messages are views of
/// `body`.
pub fn decode_payload(body: &ByteString) -> Result<Vec<Packet>, DecodeError> {
    body.split(SEPARATOR)
        .map(|record| Packet::decode_in(record, Some(body)))
        .collect()
}

/// Encodes packets as one long-polling payload.
pub fn encode_payload<'a, I>(packets: I) -> String
where
    I: IntoIterator<Item = &'a Packet>,
    I::IntoIter: Clone,
{
    let packets = packets.into_iter();
    // Sized up front (every hint is exact or above): a long-poll answer of a few dozen
    // packets otherwise grew its buffer, and copied it, once per doubling.
    let capacity = packets
        .clone()
        .map(|packet| packet.encoded_len_hint() + SEPARATOR.len_utf8())
        .sum();
    let mut out = String::with_capacity(capacity);
    for (i, packet) in packets.enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        packet.encode_into(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_packets_have_their_exact_wire_form() {
        assert_eq!(Packet::Message("hello".into()).encode(), "4hello");
        assert_eq!(Packet::Ping.encode(), "2");
        assert_eq!(Packet::Pong.encode(), "3");
        assert_eq!(Packet::PingProbe.encode(), "2probe");
        assert_eq!(Packet::PongProbe.encode(), "3probe");
        assert_eq!(Packet::Close.encode(), "1");
        assert_eq!(Packet::Upgrade.encode(), "5");
        assert_eq!(Packet::Noop.encode(), "6");
        assert_eq!(
            Packet::Open(r#"{"sid":"a"}"#.into()).encode(),
            r#"0{"sid":"a"}"#
        );
    }

    #[test]
    fn binary_is_base64_in_a_payload() {
        let bin = Packet::Binary(Bytes::from_static(&[1, 2, 3, 4]));
        assert_eq!(bin.encode(), "bAQIDBA==");
        assert_eq!(Packet::decode("bAQIDBA==").unwrap(), bin);
    }

    #[test]
    fn payloads_join_packets_with_the_record_separator() {
        let packets = vec![
            Packet::Message("hello".into()),
            Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        ];
        let wire = encode_payload(&packets);
        assert_eq!(wire, "4hello\x1ebAQIDBA==");
        assert_eq!(decode_payload(&wire.into()).unwrap(), packets);
        assert_eq!(
            decode_payload(&"4test1\x1e4test2\x1e4test3".into())
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert_eq!(Packet::decode(""), Err(DecodeError::Empty));
        assert_eq!(Packet::decode("abc"), Err(DecodeError::UnknownType('a')));
        assert_eq!(Packet::decode("b!!"), Err(DecodeError::Base64));
        assert!(matches!(
            Packet::decode("2x"),
            Err(DecodeError::TrailingData("ping"))
        ));
        assert!(decode_payload(&"4a\x1e\x1e4b".into()).is_err());
    }

    #[test]
    fn a_shared_decode_views_the_text_it_was_given() {
        let frame = ByteString::from("4hello");
        let Ok(Packet::Message(Text::Shared(text))) = Packet::decode_shared(&frame) else {
            panic!("not a shared message");
        };
        assert_eq!(text, "hello");
        assert_eq!(text.as_ptr(), frame[1..].as_ptr(), "a view, not a copy");
        let body = ByteString::from("4a\x1e2\x1e4bc");
        let packets = decode_payload(&body).unwrap();
        let Packet::Message(Text::Shared(last)) = &packets[2] else {
            panic!("not a shared message");
        };
        assert_eq!(last.as_ptr(), body[body.len() - 2..].as_ptr());
        assert_eq!(packets[1], Packet::Ping);
    }

    #[test]
    fn a_message_may_hold_any_text_including_the_empty_one() {
        assert_eq!(Packet::decode("4").unwrap(), Packet::Message("".into()));
        assert_eq!(
            Packet::decode("4héllo 🌍").unwrap(),
            Packet::Message("héllo 🌍".into())
        );
    }

    fn any_packet() -> impl Strategy<Value = Packet> {
        prop_oneof![
            Just(Packet::Close),
            Just(Packet::Ping),
            Just(Packet::PingProbe),
            Just(Packet::Pong),
            Just(Packet::PongProbe),
            Just(Packet::Upgrade),
            Just(Packet::Noop),
            "[^\x1e]*".prop_map(|s| Packet::Message(s.into())),
            "[^\x1e]*".prop_map(Packet::Open),
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|v| Packet::Binary(Bytes::from(v))),
        ]
    }

    proptest! {
        #[test]
        fn every_packet_round_trips(p in any_packet()) {
            prop_assert_eq!(Packet::decode(&p.encode()).unwrap(), p);
        }

        #[test]
        fn every_payload_round_trips(ps in proptest::collection::vec(any_packet(), 1..8)) {
            prop_assert_eq!(decode_payload(&encode_payload(&ps).into()).unwrap(), ps);
        }

        #[test]
        fn a_payload_fits_the_room_it_is_given(ps in proptest::collection::vec(any_packet(), 1..8)) {
            // The hints are an upper bound, so encoding never grows (copies) the buffer.
            let room: usize = ps.iter().map(|p| p.encoded_len_hint() + 1).sum();
            let wire = encode_payload(&ps);
            prop_assert!(wire.len() <= room, "{} > {}", wire.len(), room);
            prop_assert!(wire.capacity() <= room);
        }

        #[test]
        fn arbitrary_input_never_panics_the_decoder(s in any::<String>()) {
            let _ = Packet::decode(&s);
            let shared = ByteString::from(s);
            let _ = Packet::decode_shared(&shared);
            let _ = decode_payload(&shared);
        }
    }
}
