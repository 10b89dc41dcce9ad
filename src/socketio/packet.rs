//! The Socket.IO v5 packet codec: pure functions, no I/O.
//!
//! Wire form: `<type>[<attachments>-][/<namespace>,][<ack id>][<JSON data>]`, types
//! 0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT,
//! 6 BINARY_ACK. The main namespace `/` is left out. Binary attachments follow a binary
//! packet as separate Engine.IO binary messages and stand in the JSON as
//! `{"_placeholder":true,"num":N}`; this codec keeps placeholders as they are.
//!
//! Examples: `0` (connect to `/`), `0/admin,{"token":"x"}`, `2["hello",1]`,
//! `2/chat,12["msg",{"a":1}]`, `3/chat,12[true]`, `51-["up",{"_placeholder":true,"num":0}]`,
//! `4{"message":"Invalid namespace"}`.

use std::borrow::Cow;

use bytestring::ByteString;
use serde_json::value::RawValue;

use super::json::{self, Args, RawArg};

/// The main namespace.
pub const MAIN_NAMESPACE: &str = "/";

/// One decoded Socket.IO packet. The namespace and event name borrow the text they
/// were decoded from when they can (no escapes): no allocation for either per packet.
#[derive(Debug)]
pub enum Packet<'a> {
    Connect {
        nsp: Cow<'a, str>,
        /// The handshake `auth` object, if any.
        auth: Option<Box<RawValue>>,
    },
    Disconnect {
        nsp: Cow<'a, str>,
    },
    Event {
        nsp: Cow<'a, str>,
        id: Option<u64>,
        event: Cow<'a, str>,
        /// The arguments after the event name, as raw JSON.
        args: Args,
        /// How many binary attachments follow (0 for a plain EVENT).
        attachments: usize,
    },
    Ack {
        nsp: Cow<'a, str>,
        id: u64,
        args: Args,
        attachments: usize,
    },
    ConnectError {
        nsp: Cow<'a, str>,
        data: Box<RawValue>,
    },
}

/// Why a text is not a Socket.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    #[error("invalid attachment count")]
    Attachments,
    #[error("invalid payload for a {0} packet")]
    Payload(&'static str),
    #[error("invalid ack id")]
    AckId,
}

const MAX_ATTACHMENTS: usize = 1024;

impl<'a> Packet<'a> {
    /// The namespace the packet is for.
    pub fn nsp(&self) -> &str {
        match self {
            Packet::Connect { nsp, .. }
            | Packet::Disconnect { nsp }
            | Packet::Event { nsp, .. }
            | Packet::Ack { nsp, .. }
            | Packet::ConnectError { nsp, .. } => nsp,
        }
    }

    /// Decodes the text part of a packet.
    pub fn decode(text: &'a str) -> Result<Packet<'a>, DecodeError> {
        Packet::decode_in(text, None)
    }

    /// Decodes the text part of a packet held in shared bytes: its arguments are views
    /// of `text` (no copy).
    pub fn decode_shared(text: &'a ByteString) -> Result<Packet<'a>, DecodeError> {
        Packet::decode_in(text, Some(text))
    }

    /// Decodes `text`, which is `owner`'s text when there is an owner.
    fn decode_in(text: &'a str, owner: Option<&ByteString>) -> Result<Packet<'a>, DecodeError> {
        let bytes = text.as_bytes();
        let kind = *bytes.first().ok_or(DecodeError::Empty)?;
        if !(b'0'..=b'6').contains(&kind) {
            let c = text.chars().next().unwrap_or('?');
            return Err(DecodeError::UnknownType(c));
        }
        let mut i = 1;
        let mut attachments = 0usize;
        if kind == b'5' || kind == b'6' {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == start || i >= bytes.len() || bytes[i] != b'-' {
                return Err(DecodeError::Attachments);
            }
            attachments = text[start..i]
                .parse()
                .map_err(|_| DecodeError::Attachments)?;
            if attachments > MAX_ATTACHMENTS {
                return Err(DecodeError::Attachments);
            }
            i += 1;
        }
        let mut nsp = Cow::Borrowed(MAIN_NAMESPACE);
        if i < bytes.len() && bytes[i] == b'/' {
            let start = i;
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            nsp = Cow::Borrowed(&text[start..i]);
            if i < bytes.len() {
                i += 1; // the comma
            }
        }
        let id_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let id = if i > id_start {
            Some(
                text[id_start..i]
                    .parse::<u64>()
                    .map_err(|_| DecodeError::AckId)?,
            )
        } else {
            None
        };
        let data = &text[i..];
        match kind {
            b'0' => {
                if id.is_some() {
                    return Err(DecodeError::Payload("CONNECT"));
                }
                let auth = if data.is_empty() {
                    None
                } else {
                    let raw = raw(data).ok_or(DecodeError::Payload("CONNECT"))?;
                    if !raw.get().starts_with('{') {
                        return Err(DecodeError::Payload("CONNECT"));
                    }
                    Some(raw)
                };
                Ok(Packet::Connect { nsp, auth })
            }
            b'1' => {
                if !data.is_empty() || id.is_some() {
                    return Err(DecodeError::Payload("DISCONNECT"));
                }
                Ok(Packet::Disconnect { nsp })
            }
            b'2' | b'5' => {
                let name = if kind == b'2' {
                    "EVENT"
                } else {
                    "BINARY_EVENT"
                };
                let args = json::split_array(data).ok_or(DecodeError::Payload(name))?;
                let (first, rest) = args.split_first().ok_or(DecodeError::Payload(name))?;
                let event = match json::plain_str(first) {
                    Some(plain) => Cow::Borrowed(plain),
                    // A name with escapes is unescaped into its own string.
                    None => Cow::Owned(
                        serde_json::from_str::<String>(first)
                            .map_err(|_| DecodeError::Payload(name))?,
                    ),
                };
                Ok(Packet::Event {
                    nsp,
                    id,
                    event,
                    args: json::args_of(rest, owner),
                    attachments,
                })
            }
            b'3' | b'6' => {
                let name = if kind == b'3' { "ACK" } else { "BINARY_ACK" };
                let id = id.ok_or(DecodeError::AckId)?;
                let args = json::split_array(data).ok_or(DecodeError::Payload(name))?;
                Ok(Packet::Ack {
                    nsp,
                    id,
                    args: json::args_of(&args, owner),
                    attachments,
                })
            }
            _ => {
                let data = raw(data).ok_or(DecodeError::Payload("CONNECT_ERROR"))?;
                Ok(Packet::ConnectError { nsp, data })
            }
        }
    }

    /// The same packet, owning its namespace and event name (to be kept while its
    /// binary attachments arrive).
    pub fn into_owned(self) -> Packet<'static> {
        let own = |s: Cow<'a, str>| Cow::Owned(s.into_owned());
        match self {
            Packet::Connect { nsp, auth } => Packet::Connect {
                nsp: own(nsp),
                auth,
            },
            Packet::Disconnect { nsp } => Packet::Disconnect { nsp: own(nsp) },
            Packet::Event {
                nsp,
                id,
                event,
                args,
                attachments,
            } => Packet::Event {
                nsp: own(nsp),
                id,
                event: own(event),
                args,
                attachments,
            },
            Packet::Ack {
                nsp,
                id,
                args,
                attachments,
            } => Packet::Ack {
                nsp: own(nsp),
                id,
                args,
                attachments,
            },
            Packet::ConnectError { nsp, data } => Packet::ConnectError {
                nsp: own(nsp),
                data,
            },
        }
    }
}

fn raw(data: &str) -> Option<Box<RawValue>> {
    serde_json::from_str::<Box<RawValue>>(data).ok()
}

/// Writes the header of a packet: type, attachments, namespace, ack id.
fn header(out: &mut String, kind: u8, attachments: usize, nsp: &str, id: Option<u64>) {
    write_header(kind, attachments, nsp, id, |piece| out.push_str(piece));
}

/// The header's pieces, in order, for a text or a byte buffer alike.
fn write_header(
    kind: u8,
    attachments: usize,
    nsp: &str,
    id: Option<u64>,
    mut push: impl FnMut(&str),
) {
    push(packet_type(kind));
    if attachments > 0 {
        push(itoa::Buffer::new().format(attachments));
        push("-");
    }
    if nsp != MAIN_NAMESPACE {
        push(nsp);
        push(",");
    }
    if let Some(id) = id {
        push(itoa::Buffer::new().format(id));
    }
}

/// The digit of a packet type (`b'0'`…`b'6'`) as text.
fn packet_type(kind: u8) -> &'static str {
    const DIGITS: [&str; 7] = ["0", "1", "2", "3", "4", "5", "6"];
    DIGITS[usize::from(kind.saturating_sub(b'0')).min(6)]
}

/// `0/nsp,{"sid":…}`: the namespace accepted the client.
pub fn encode_connect(nsp: &str, sid: &str) -> String {
    let mut out = String::with_capacity(nsp.len() + sid.len() + 12);
    header(&mut out, b'0', 0, nsp, None);
    out.push_str("{\"sid\":\"");
    out.push_str(sid);
    out.push_str("\"}");
    out
}

/// `1/nsp,`: the server disconnected the client from the namespace.
pub fn encode_disconnect(nsp: &str) -> String {
    let mut out = String::with_capacity(nsp.len() + 2);
    header(&mut out, b'1', 0, nsp, None);
    out
}

/// `4/nsp,{"message":…}`: the namespace refused the client.
pub fn encode_connect_error(nsp: &str, message: &str, data: Option<&RawValue>) -> String {
    let mut out = String::new();
    header(&mut out, b'4', 0, nsp, None);
    let body = match data {
        Some(data) => serde_json::json!({ "message": message, "data": data }),
        None => serde_json::json!({ "message": message }),
    };
    out.push_str(&body.to_string());
    out
}

/// An EVENT (or BINARY_EVENT when `attachments > 0`) whose JSON array text (event
/// name first) is written by `write_array`.
pub fn encode_event_with(
    nsp: &str,
    id: Option<u64>,
    attachments: usize,
    write_array: impl FnOnce(&mut String),
) -> String {
    let mut out = String::with_capacity(64);
    let kind = if attachments > 0 { b'5' } else { b'2' };
    header(&mut out, kind, attachments, nsp, id);
    write_array(&mut out);
    out
}

/// An ACK (or BINARY_ACK) carrying the JSON array text written by `write_array`.
pub fn encode_ack_with(
    nsp: &str,
    id: u64,
    attachments: usize,
    write_array: impl FnOnce(&mut String),
) -> String {
    let mut out = String::with_capacity(32);
    let kind = if attachments > 0 { b'6' } else { b'3' };
    header(&mut out, kind, attachments, nsp, Some(id));
    write_array(&mut out);
    out
}

/// An EVENT `["event",data]` (or, with `id`, one that asks for an ack) with `data`
/// serialized straight into the packet.
pub fn encode_event_json<T: serde::Serialize + ?Sized>(
    nsp: &str,
    id: Option<u64>,
    event: &str,
    data: &T,
) -> Result<String, serde_json::Error> {
    event_packet(nsp, id, event, |buf| serde_json::to_writer(buf, data))
}

/// An ACK `[data]` with `data` serialized straight into the packet.
pub fn encode_ack_json<T: serde::Serialize + ?Sized>(
    nsp: &str,
    id: u64,
    data: &T,
) -> Result<String, serde_json::Error> {
    ack_packet(nsp, id, |buf| serde_json::to_writer(buf, data))
}

/// A payload that writes its own JSON text: exactly one valid JSON value, appended to
/// `out`. For the payloads sent with every chat message, where serde's generic path
/// (every key and string value escaped byte by byte) cost more than the rest of the
/// packet. [`write_json_str`] writes a string value.
pub trait WriteJson {
    fn write_json(&self, out: &mut String);

    /// About how many bytes [`WriteJson::write_json`] appends: the packet is allocated
    /// once at that size plus its header (a short guess only costs a reallocation).
    fn len_hint(&self) -> usize {
        64
    }
}

/// Room for a packet's header and brackets beside its namespace and event name.
const HEADER_ROOM: usize = 32;

/// An EVENT `["event",data]` (or, with `id`, one that asks for an ack) with `data`
/// written by itself, straight into a string of about its size.
pub fn encode_event_written(
    nsp: &str,
    id: Option<u64>,
    event: &str,
    data: &dyn WriteJson,
) -> Result<String, serde_json::Error> {
    let mut out = String::with_capacity(nsp.len() + event.len() + HEADER_ROOM + data.len_hint());
    header(&mut out, b'2', 0, nsp, id);
    out.push('[');
    write_json_str(&mut out, event);
    out.push(',');
    data.write_json(&mut out);
    out.push(']');
    Ok(out)
}

/// An ACK `[data]` with `data` written by itself, straight into a string of about its
/// size.
pub fn encode_ack_written(
    nsp: &str,
    id: u64,
    data: &dyn WriteJson,
) -> Result<String, serde_json::Error> {
    let mut out = String::with_capacity(nsp.len() + HEADER_ROOM + data.len_hint());
    header(&mut out, b'3', 0, nsp, Some(id));
    out.push('[');
    data.write_json(&mut out);
    out.push(']');
    Ok(out)
}

/// `2/nsp,id["event",data]` in the scratch buffer, `data` written by `write_data`.
fn event_packet(
    nsp: &str,
    id: Option<u64>,
    event: &str,
    write_data: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>,
) -> Result<String, serde_json::Error> {
    with_scratch(|buf| {
        write_header(b'2', 0, nsp, id, |piece| {
            buf.extend_from_slice(piece.as_bytes())
        });
        buf.push(b'[');
        serde_json::to_writer(&mut *buf, event)?;
        buf.push(b',');
        write_data(buf)?;
        buf.push(b']');
        Ok(())
    })
}

/// `3/nsp,id[data]` in the scratch buffer, `data` written by `write_data`.
fn ack_packet(
    nsp: &str,
    id: u64,
    write_data: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>,
) -> Result<String, serde_json::Error> {
    with_scratch(|buf| {
        write_header(b'3', 0, nsp, Some(id), |piece| {
            buf.extend_from_slice(piece.as_bytes())
        });
        buf.push(b'[');
        write_data(buf)?;
        buf.push(b']');
        Ok(())
    })
}

/// Appends `s` as a JSON string literal, exactly as serde_json writes it. A string with
/// nothing to escape (no `"`, `\` or control character: the usual case) is copied as
/// it is after one branch-free scan.
pub fn write_json_str(out: &mut String, s: &str) {
    if is_plain(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // A string always serializes; the rare text with escapes gets its own buffer.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

/// Whether `bytes` hold nothing JSON escapes (`"`, `\\`, a control character).
fn is_plain(bytes: &[u8]) -> bool {
    json::next_special(bytes, 0) == bytes.len()
}

/// Appends the decimal digits of `n` (a JSON number).
pub fn write_json_i64(out: &mut String, n: i64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Builds a packet in this thread's scratch buffer, then copies it into a string of
/// exactly its size: one allocation per packet, none for a growing buffer.
fn with_scratch(
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), serde_json::Error>,
) -> Result<String, serde_json::Error> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    SCRATCH.with(|scratch| {
        // Re-entered only if `data`'s Serialize encodes a packet itself: then it gets
        // a buffer of its own.
        let mut own = Vec::new();
        let mut borrowed = scratch.try_borrow_mut();
        let buf = match borrowed.as_deref_mut() {
            Ok(buf) => buf,
            Err(_) => &mut own,
        };
        buf.clear();
        let written = write(buf);
        // serde_json writes UTF-8 only, and so does the header.
        let text = String::from_utf8(buf.clone()).map_err(|e| {
            serde_json::Error::io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        });
        if buf.capacity() > 64 * 1024 {
            // One huge packet does not pin a huge buffer to the thread.
            *buf = Vec::new();
        }
        written.and(text)
    })
}

/// Writes `["event",arg1,arg2…]` from raw JSON arguments.
pub fn write_event_array(out: &mut String, event: &str, args: &[RawArg]) {
    out.push('[');
    write_json_str(out, event);
    for arg in args {
        out.push(',');
        out.push_str(arg.get());
    }
    out.push(']');
}

/// Writes `[arg1,arg2…]` from raw JSON arguments.
pub fn write_args_array(out: &mut String, args: &[RawArg]) {
    out.push('[');
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(arg.get());
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn written_strings_and_numbers_match_serde_json(s in "\\PC*|[\\x00-\\x7f]*", n: i64) {
            let mut out = String::new();
            write_json_str(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_string(&s).unwrap());
            let mut out = String::new();
            write_json_i64(&mut out, n);
            prop_assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn a_character_to_escape_is_found_at_every_position_of_a_word() {
        for len in 1..=17 {
            for at in 0..len {
                for (special, plain) in [
                    ('\u{0}', false),
                    ('\u{1f}', false),
                    ('"', false),
                    ('\\', false),
                    (' ', true),
                    ('\u{7f}', true),
                    ('!', true),
                    (']', true),
                ] {
                    let mut s = "x".repeat(len);
                    s.replace_range(at..=at, &special.to_string());
                    assert_eq!(is_plain(s.as_bytes()), plain, "{s:?}");
                }
            }
        }
        assert!(is_plain("été 🎉 ok".as_bytes()));
    }

    #[test]
    fn written_payloads_make_the_same_packets_as_serialized_ones() {
        struct Pair<'a>(&'a str, i64);
        impl WriteJson for Pair<'_> {
            fn write_json(&self, out: &mut String) {
                out.push_str("{\"s\":");
                write_json_str(out, self.0);
                out.push_str(",\"n\":");
                write_json_i64(out, self.1);
                out.push('}');
            }
        }
        for (s, n) in [
            ("plain", 0),
            ("quote \" and \\ slash", -7),
            ("ctl \u{1}\n été 🎉", i64::MIN),
        ] {
            let serialized = serde_json::json!({"s": s, "n": n});
            assert_eq!(
                encode_event_written("/socket", Some(9), "receive", &Pair(s, n)).unwrap(),
                encode_event_json("/socket", Some(9), "receive", &serialized).unwrap()
            );
            assert_eq!(
                encode_ack_written("/socket", 4, &Pair(s, n)).unwrap(),
                encode_ack_json("/socket", 4, &serialized).unwrap()
            );
        }
    }

    fn args(json: &str) -> Args {
        json::args_of(&json::split_array(json).unwrap(), None)
    }

    #[test]
    fn connect_packets_decode_with_and_without_auth() {
        match Packet::decode("0").unwrap() {
            Packet::Connect { nsp, auth } => {
                assert_eq!(nsp, "/");
                assert!(auth.is_none());
            }
            p => panic!("{p:?}"),
        }
        match Packet::decode(r#"0/custom,{"token":"abc"}"#).unwrap() {
            Packet::Connect { nsp, auth } => {
                assert_eq!(nsp, "/custom");
                assert_eq!(auth.unwrap().get(), r#"{"token":"abc"}"#);
            }
            p => panic!("{p:?}"),
        }
        assert!(matches!(
            Packet::decode("0/custom").unwrap(),
            Packet::Connect { nsp, .. } if nsp == "/custom"
        ));
    }

    #[test]
    fn events_decode_with_namespace_and_ack_id() {
        match Packet::decode(r#"2/chat,12["msg",{"a":1},"x"]"#).unwrap() {
            Packet::Event {
                nsp,
                id,
                event,
                args,
                attachments,
            } => {
                assert_eq!(nsp, "/chat");
                assert_eq!(id, Some(12));
                assert_eq!(event, "msg");
                assert_eq!(args.len(), 2);
                assert_eq!(args[0].get(), r#"{"a":1}"#);
                assert_eq!(attachments, 0);
            }
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn a_shared_decode_keeps_views_of_the_text_as_arguments() {
        let text = ByteString::from(r#"3/chat,4[{"msg":"hi"}, 2]"#);
        let Packet::Ack { args, .. } = Packet::decode_shared(&text).unwrap() else {
            panic!("not an ack");
        };
        let first = &text[text.find('{').unwrap()..text.find('}').unwrap() + 1];
        assert_eq!(args[0].get(), first);
        assert_eq!(args[0].get().as_ptr(), first.as_ptr(), "a view, not a copy");
        assert_eq!(args[1].get(), "2");
        // A part of an argument is shared too; text from elsewhere is not its part.
        let inner = &args[0].get()[8..10];
        assert_eq!(args[0].share(inner).unwrap(), "hi");
        assert_eq!(args[0].share(inner).unwrap().as_ptr(), inner.as_ptr());
        assert_eq!(args[0].share("hi"), None);
        assert_eq!(args[1].share(&text[..1]), None);
    }

    #[test]
    fn names_borrow_the_text_unless_they_hold_escapes() {
        let text = String::from(r#"2/chat,["plain",1]"#);
        match Packet::decode(&text).unwrap() {
            Packet::Event { nsp, event, .. } => {
                assert!(matches!(nsp, Cow::Borrowed("/chat")));
                assert!(matches!(event, Cow::Borrowed("plain")));
            }
            p => panic!("{p:?}"),
        }
        let escaped = Packet::decode(r#"2["a\"b\u00e9",{"x":[1,2]}]"#).unwrap();
        match escaped.into_owned() {
            Packet::Event { event, args, .. } => {
                assert_eq!(event, "a\"b\u{e9}");
                assert_eq!(args.len(), 1);
                assert_eq!(args[0].get(), r#"{"x":[1,2]}"#);
            }
            p => panic!("{p:?}"),
        }
        assert!(Packet::decode(r#"2["a\q"]"#).is_err());
        assert!(Packet::decode(r#"2["a",]"#).is_err());
        assert!(Packet::decode(r#"3/chat,4[1,2]x"#).is_err());
    }

    #[test]
    fn binary_events_count_their_attachments() {
        match Packet::decode(
            r#"52-789["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
        )
        .unwrap()
        {
            Packet::Event {
                id, attachments, ..
            } => {
                assert_eq!(id, Some(789));
                assert_eq!(attachments, 2);
            }
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn acks_need_an_id() {
        assert!(matches!(
            Packet::decode(r#"3/chat,5[true]"#).unwrap(),
            Packet::Ack { id: 5, .. }
        ));
        assert_eq!(Packet::decode("3[true]").unwrap_err(), DecodeError::AckId);
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert_eq!(Packet::decode("").unwrap_err(), DecodeError::Empty);
        assert!(matches!(
            Packet::decode("abc").unwrap_err(),
            DecodeError::UnknownType('a')
        ));
        assert!(Packet::decode("2{}").is_err());
        assert!(Packet::decode("2[]").is_err());
        assert!(Packet::decode("2[1]").is_err());
        assert!(Packet::decode(r#"2abc["message-with-ack",1]"#).is_err());
        assert!(Packet::decode("5[\"x\"]").is_err());
        assert!(Packet::decode("0[1]").is_err());
        assert!(Packet::decode("1x").is_err());
        assert!(Packet::decode("299999999999999999999999[\"a\"]").is_err());
    }

    #[test]
    fn outgoing_packets_have_their_exact_wire_form() {
        assert_eq!(encode_connect("/", "abc"), r#"0{"sid":"abc"}"#);
        assert_eq!(
            encode_connect("/custom", "abc"),
            r#"0/custom,{"sid":"abc"}"#
        );
        assert_eq!(encode_disconnect("/"), "1");
        assert_eq!(encode_disconnect("/socket"), "1/socket,");
        assert_eq!(
            encode_connect_error("/random", "Invalid namespace", None),
            r#"4/random,{"message":"Invalid namespace"}"#
        );
        let a = args(r#"[1,"2",{"3":[true]}]"#);
        assert_eq!(
            encode_event_with("/", None, 0, |o| write_event_array(o, "message-back", &a)),
            r#"2["message-back",1,"2",{"3":[true]}]"#
        );
        assert_eq!(
            encode_ack_with("/", 456, 0, |o| write_args_array(o, &a)),
            r#"3456[1,"2",{"3":[true]}]"#
        );
        let p = args(r#"[{"_placeholder":true,"num":0}]"#);
        assert_eq!(
            encode_ack_with("/", 789, 1, |o| write_args_array(o, &p)),
            r#"61-789[{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(
            encode_event_with("/socket", Some(3), 0, |o| write_event_array(o, "a\"b", &[])),
            r#"2/socket,3["a\"b"]"#
        );
    }

    #[test]
    fn json_events_and_acks_are_written_straight_into_the_packet() {
        #[derive(serde::Serialize)]
        struct Msg<'a> {
            msg: &'a str,
            seq: i64,
        }
        let data = Msg {
            msg: "a \"quoted\" é\n",
            seq: 7,
        };
        assert_eq!(
            encode_event_json("/socket", None, "receive", &data).unwrap(),
            r#"2/socket,["receive",{"msg":"a \"quoted\" é\n","seq":7}]"#
        );
        assert_eq!(
            encode_event_json("/", Some(0), "a\"b", &1).unwrap(),
            r#"20["a\"b",1]"#
        );
        for (id, digits) in [
            (0u64, "0"),
            (9, "9"),
            (10, "10"),
            (u64::MAX, "18446744073709551615"),
        ] {
            assert_eq!(
                encode_ack_json("/socket", id, &data).unwrap(),
                format!(r#"3/socket,{digits}[{{"msg":"a \"quoted\" é\n","seq":7}}]"#)
            );
        }
        // A value that cannot be JSON is an error, not a broken packet; the next
        // packet built on this thread is whole.
        let bad: std::collections::HashMap<(i32, i32), i32> = [((1, 2), 3)].into();
        assert!(encode_ack_json("/", 1, &bad).is_err());
        assert_eq!(encode_ack_json("/", 1, &[1]).unwrap(), "31[[1]]");
    }

    proptest! {
        #[test]
        fn events_round_trip(
            nsp in "(/[a-z]{1,8})?",
            id in proptest::option::of(0u64..1_000_000),
            event in "[^\u{0}]{0,12}",
            nums in proptest::collection::vec(any::<i32>(), 0..4),
        ) {
            let nsp = if nsp.is_empty() { "/".to_string() } else { nsp };
            let raw: Vec<RawArg> = nums
                .iter()
                .map(|n| RawArg::parse(&n.to_string()).unwrap())
                .collect();
            let wire = encode_event_with(&nsp, id, 0, |o| write_event_array(o, &event, &raw));
            match Packet::decode(&wire).unwrap() {
                Packet::Event { nsp: n, id: i, event: e, args, .. } => {
                    prop_assert_eq!(n, nsp);
                    prop_assert_eq!(i, id);
                    prop_assert_eq!(e, event);
                    let back: Vec<String> = args.iter().map(|a| a.get().to_string()).collect();
                    let want: Vec<String> = nums.iter().map(|n| n.to_string()).collect();
                    prop_assert_eq!(back, want);
                }
                p => prop_assert!(false, "{:?}", p),
            }
        }

        #[test]
        fn arbitrary_input_never_panics_the_decoder(s in any::<String>()) {
            let _ = Packet::decode(&s);
        }

        #[test]
        fn arbitrary_packet_shaped_input_never_panics(s in "[0-6][0-9]{0,3}-?(/[a-z]{0,3},?)?[0-9]{0,5}.{0,20}") {
            let _ = Packet::decode(&s);
        }
    }
}
