//! Engine.IO v4 / Socket.IO v5 packets, as far as the load generator needs them.
//!
//! Engine.IO packet = one type digit + data: `0{"sid":…}` open, `1` close, `2` ping,
//! `3` pong, `4…` message, `6` noop. Over long-polling several packets travel in one
//! HTTP body separated by the record separator `\x1e`.
//!
//! A Socket.IO packet rides in an Engine.IO message: type digit, then `/socket,` for a
//! namespace other than `/`, then an optional ack id, then JSON:
//! `40/socket,` connect, `42/socket,["name",payload]` event, `42/socket,17["msg",…]`
//! event expecting an ack, `43/socket,17[answer]` ack, `44/socket,{…}` connect error.
//!
//! The benchmark's message text carries its own sequence number and send time:
//! `<seq> <sent µs> xxxx…`, padded with `x` to the requested length.

/// The chat's namespace.
pub const NAMESPACE: &str = "/socket";

/// Separates packets in one long-polling body.
pub const RECORD_SEPARATOR: char = '\x1e';

/// The Engine.IO pong, the answer to the server's ping `2`.
pub const PONG: &str = "3";

/// An inbound packet, borrowing from the frame it was parsed from.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// `0{…}`: the Engine.IO handshake, with its JSON.
    Open(&'a str),
    /// `1`: the server closes the session.
    Close,
    /// `2`: the server's heartbeat; answer [`PONG`].
    Ping,
    /// `40/socket,{…}`: the namespace accepted us.
    Connect,
    /// `44/socket,{…}`: the namespace refused us.
    ConnectError(&'a str),
    /// `41/socket,`: the server disconnected us from the namespace.
    Disconnect,
    /// `42/socket,[id]["name",payload]`: `payload` is the JSON after the name (may be empty).
    Event {
        name: &'a str,
        ack: Option<u64>,
        payload: &'a str,
    },
    /// `43/socket,id[answer]`: `payload` is the JSON inside the brackets.
    Ack { id: u64, payload: &'a str },
    /// Anything else (pong, noop, other namespaces, binary events): ignored.
    Other,
}

/// Parses one Engine.IO packet (one WebSocket frame, or one part of a polling body).
pub fn parse(frame: &str) -> Packet<'_> {
    match frame.as_bytes().first() {
        Some(b'0') => Packet::Open(&frame[1..]),
        Some(b'1') => Packet::Close,
        Some(b'2') if frame.len() == 1 => Packet::Ping,
        Some(b'4') => parse_socketio(&frame[1..]),
        _ => Packet::Other,
    }
}

fn parse_socketio(packet: &str) -> Packet<'_> {
    let Some(&kind) = packet.as_bytes().first() else {
        return Packet::Other;
    };
    let rest = &packet[1..];
    let (namespace, rest) = if rest.starts_with('/') {
        match rest.find(',') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        }
    } else {
        ("/", rest)
    };
    if namespace != NAMESPACE {
        return Packet::Other;
    }
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack = rest[..digits].parse().ok();
    let rest = &rest[digits..];
    match kind {
        b'0' => Packet::Connect,
        b'1' => Packet::Disconnect,
        b'4' => Packet::ConnectError(rest),
        b'2' => {
            let Some(after_quote) = rest.strip_prefix("[\"") else {
                return Packet::Other;
            };
            let Some(end) = after_quote.find('"') else {
                return Packet::Other;
            };
            let name = &after_quote[..end];
            let after_name = &after_quote[end + 1..];
            let payload = after_name.strip_prefix(',').unwrap_or(after_name);
            let payload = payload.strip_suffix(']').unwrap_or(payload);
            Packet::Event { name, ack, payload }
        }
        b'3' => match ack {
            Some(id) => {
                let payload = rest.strip_prefix('[').unwrap_or(rest);
                let payload = payload.strip_suffix(']').unwrap_or(payload);
                Packet::Ack { id, payload }
            }
            None => Packet::Other,
        },
        _ => Packet::Other,
    }
}

/// `40/socket,`: asks to enter the chat's namespace.
pub fn connect_packet() -> String {
    format!("40{NAMESPACE},")
}

/// `42/socket,[ack]["name",payload]`; `payload_json` must already be JSON.
pub fn event_packet(name: &str, ack: Option<u64>, payload_json: &str) -> String {
    match ack {
        Some(id) => format!("42{NAMESPACE},{id}[\"{name}\",{payload_json}]"),
        None => format!("42{NAMESPACE},[\"{name}\",{payload_json}]"),
    }
}

/// A JSON string literal for text that needs no escaping (room ids, names, our texts).
pub fn json_plain_string(text: &str) -> String {
    debug_assert!(!text.contains(['"', '\\']) && !text.chars().any(char::is_control));
    format!("\"{text}\"")
}

/// The `login` payload the chat expects: a valid nickname and e-mail for `u<n>`.
pub fn login_payload(user: &str, room: &str) -> String {
    format!("{{\"user\":\"{user}\",\"avatar\":\"{user}@example.com\",\"id\":\"{room}\"}}")
}

/// What the seed's browser client sends as `img` with each message.
const CLIENT_IMG: &str =
    "https://www.gravatar.com/avatar/00000000000000000000000000000000?s=140&r=x&d=mm";

/// The `msg` payload: `{msg, user, img}` as the seed's browser client sends it (the
/// readable specification of [`msg_packet`]).
#[cfg(test)]
fn msg_payload(text: &str, user: &str) -> String {
    format!("{{\"msg\":\"{text}\",\"user\":\"{user}\",\"img\":\"{CLIENT_IMG}\"}}")
}

/// The whole `msg` event, built in one allocation: the same bytes as
/// `event_packet("msg", ack, &msg_payload(&message_text(seq, sent_us, len), user))`.
pub fn msg_packet(seq: u64, sent_us: u64, len: usize, user: &str, ack: Option<u64>) -> String {
    use std::fmt::Write;
    let mut packet = String::with_capacity(len + user.len() + CLIENT_IMG.len() + 64);
    packet.push_str("42");
    packet.push_str(NAMESPACE);
    packet.push(',');
    if let Some(id) = ack {
        // Writing into a String cannot fail.
        let _ = write!(packet, "{id}");
    }
    packet.push_str("[\"msg\",{\"msg\":\"");
    let text_start = packet.len();
    let _ = write!(packet, "{seq} {sent_us} ");
    let text_len = packet.len() - text_start;
    if text_len < len {
        packet.extend(std::iter::repeat_n('x', len - text_len));
    }
    packet.push_str("\",\"user\":\"");
    packet.push_str(user);
    packet.push_str("\",\"img\":\"");
    packet.push_str(CLIENT_IMG);
    packet.push_str("\"}]");
    packet
}

/// The benchmark's message text: `<seq> <sent µs>` padded with `x` to `len` bytes.
#[cfg(test)]
fn message_text(seq: u64, sent_us: u64, len: usize) -> String {
    let mut text = format!("{seq} {sent_us} ");
    if text.len() < len {
        text.extend(std::iter::repeat_n('x', len - text.len()));
    }
    text
}

/// The sequence number and send time inside a [`message_text`].
pub fn parse_message_text(text: &str) -> Option<(u64, u64)> {
    let mut parts = text.split(' ');
    let seq = parts.next()?.parse().ok()?;
    let sent_us = parts.next()?.parse().ok()?;
    Some((seq, sent_us))
}

/// The value of the string field `key` in flat JSON whose strings have no escapes,
/// which holds for the `receive` payloads the benchmark makes the servers send.
pub fn json_str_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let needle_start = json.find(&format!("\"{key}\":\""))?;
    let value = &json[needle_start + key.len() + 4..];
    let end = value.find('"')?;
    Some(&value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_engineio_packets() {
        assert_eq!(parse("0{\"sid\":\"a\"}"), Packet::Open("{\"sid\":\"a\"}"));
        assert_eq!(parse("2"), Packet::Ping);
        assert_eq!(parse("2probe"), Packet::Other);
        assert_eq!(parse("1"), Packet::Close);
        assert_eq!(parse("6"), Packet::Other);
    }

    #[test]
    fn parses_namespace_connect_and_errors() {
        assert_eq!(parse("40/socket,{\"sid\":\"x\"}"), Packet::Connect);
        assert_eq!(
            parse("44/socket,{\"message\":\"no\"}"),
            Packet::ConnectError("{\"message\":\"no\"}")
        );
        assert_eq!(parse("40{\"sid\":\"x\"}"), Packet::Other);
        assert_eq!(parse("41/socket,"), Packet::Disconnect);
    }

    #[test]
    fn parses_events_with_and_without_ack() {
        assert_eq!(
            parse("42/socket,[\"receive\",{\"msg\":\"1 2 x\"}]"),
            Packet::Event {
                name: "receive",
                ack: None,
                payload: "{\"msg\":\"1 2 x\"}"
            }
        );
        assert_eq!(
            parse("42/socket,7[\"img\",\"https://x\"]"),
            Packet::Event {
                name: "img",
                ack: Some(7),
                payload: "\"https://x\""
            }
        );
        assert_eq!(
            parse("42/socket,[\"ping\"]"),
            Packet::Event {
                name: "ping",
                ack: None,
                payload: ""
            }
        );
    }

    #[test]
    fn parses_acks() {
        assert_eq!(
            parse("43/socket,17[{\"ok\":true,\"seq\":3}]"),
            Packet::Ack {
                id: 17,
                payload: "{\"ok\":true,\"seq\":3}"
            }
        );
        assert_eq!(parse("43/socket,[{}]"), Packet::Other);
    }

    #[test]
    fn encodes_exact_wire_strings() {
        assert_eq!(connect_packet(), "40/socket,");
        assert_eq!(
            event_packet("load", None, &json_plain_string("abc")),
            "42/socket,[\"load\",\"abc\"]"
        );
        assert_eq!(
            event_packet("msg", Some(17), "{}"),
            "42/socket,17[\"msg\",{}]"
        );
        assert_eq!(
            login_payload("u3", "room"),
            "{\"user\":\"u3\",\"avatar\":\"u3@example.com\",\"id\":\"room\"}"
        );
    }

    #[test]
    fn msg_packet_is_the_composed_event() {
        for ack in [None, Some(18)] {
            let composed = event_packet("msg", ack, &msg_payload(&message_text(17, 99, 40), "u2"));
            assert_eq!(msg_packet(17, 99, 40, "u2", ack), composed);
        }
    }

    #[test]
    fn message_text_round_trips_and_is_padded() {
        let text = message_text(42, 123_456, 32);
        assert_eq!(text.len(), 32);
        assert_eq!(parse_message_text(&text), Some((42, 123_456)));
        assert_eq!(message_text(1, 2, 0), "1 2 ");
    }

    #[test]
    fn finds_string_fields_in_receive_payloads() {
        let reference = "{\"msg\":\"5 99 xx\",\"user\":\"u1\",\"img\":\"i\"}";
        assert_eq!(json_str_field(reference, "msg"), Some("5 99 xx"));
        let tete = "{\"id\":\"m\",\"seq\":3,\"msg\":\"6 7 x\",\"user\":\"u1\",\"ts\":1}";
        assert_eq!(json_str_field(tete, "msg"), Some("6 7 x"));
        assert_eq!(json_str_field(tete, "nope"), None);
    }
}
