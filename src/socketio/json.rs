//! Raw JSON arguments: a validating scanner that splits a packet's JSON array into its
//! elements' texts in one pass, accepting exactly what serde_json accepts as raw values,
//! and [`RawArg`], an argument kept as its text.
//!
//! Every event's data went through serde_json twice before (once to split the array
//! into `RawValue`s, once more by the handler that reads the argument); this scanner
//! builds nothing and checks the grammar of RFC 8259 as serde_json does: literals,
//! numbers without leading zeros, strings without raw control characters and with
//! valid escapes (`\u` takes four hex digits; surrogates are not paired here, as
//! serde_json does not pair them in a value it skips), any nesting depth.

use bytestring::ByteString;
use serde_json::value::RawValue;
use smallvec::SmallVec;

/// The arguments of an event or an acknowledgement: most packets carry one or two, kept
/// inline (no allocation of their own).
pub type Args = SmallVec<[RawArg; 2]>;

/// One argument of an event or an acknowledgement: the text of one JSON value, checked
/// when it was made. An argument of a received packet is a view of the packet's text
/// (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawArg(ByteString);

impl RawArg {
    /// `json` as an argument, if it is exactly one JSON value (surrounding whitespace
    /// is left out).
    pub fn parse(json: &str) -> Option<RawArg> {
        let bytes = json.as_bytes();
        let start = skip_ws(bytes, 0);
        let end = value_end(bytes, start)?;
        (skip_ws(bytes, end) == bytes.len()).then(|| RawArg(json[start..end].into()))
    }

    /// Its JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }

    /// A part of its text (a string inside it, say) as shared text, without a copy;
    /// `None` if `part` does not lie within [`get`](Self::get)'s text.
    pub fn share(&self, part: &str) -> Option<ByteString> {
        let whole = self.0.as_bytes().as_ptr_range();
        let part_range = part.as_bytes().as_ptr_range();
        (whole.start <= part_range.start && part_range.end <= whole.end)
            .then(|| self.0.slice_ref(part))
    }

    /// Its members, when it is a JSON object: each key as its string literal (quotes
    /// included) and its value's text, in order, duplicates included; `None` for any
    /// other value. Walked, not checked again: the text was checked when the argument
    /// was made.
    pub fn members(&self) -> Option<Members<'_>> {
        (self.0.as_bytes().first() == Some(&b'{')).then_some(Members {
            json: &self.0,
            at: 1,
        })
    }

    /// An argument from text the scanner has already checked: a view of `owner` when
    /// the text lies within it, a copy otherwise.
    fn checked(json: &str, owner: Option<&ByteString>) -> RawArg {
        match owner {
            Some(owner) => RawArg(owner.slice_ref(json)),
            None => RawArg(json.into()),
        }
    }
}

/// The members of an object argument ([`RawArg::members`]).
pub struct Members<'a> {
    json: &'a str,
    /// Where the next member (or the closing brace) starts, after whitespace.
    at: usize,
}

impl<'a> Iterator for Members<'a> {
    /// The key's string literal, and the value's text.
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.json.as_bytes();
        let key_start = skip_ws(b, self.at);
        // The closing brace (or, past the end, nothing) ends the walk.
        self.at = b.len();
        if b.get(key_start) != Some(&b'"') {
            return None;
        }
        let key_end = checked_value_end(b, key_start)?;
        // Past the colon.
        let value_start = skip_ws(b, skip_ws(b, key_end) + 1);
        let value_end = checked_value_end(b, value_start)?;
        let after = skip_ws(b, value_end);
        if b.get(after) == Some(&b',') {
            self.at = after + 1;
        }
        Some((
            self.json.get(key_start..key_end)?,
            self.json.get(value_start..value_end)?,
        ))
    }
}

/// The string a JSON string literal holds: borrowed when it has no escapes, decoded
/// otherwise; `None` when `literal` is not a string.
pub fn str_value(literal: &str) -> Option<std::borrow::Cow<'_, str>> {
    match plain_str(literal) {
        Some(plain) => Some(plain.into()),
        None if literal.starts_with('"') => {
            serde_json::from_str::<String>(literal).ok().map(Into::into)
        }
        None => None,
    }
}

/// Where the JSON value starting at `at` in text already checked as JSON ends: its
/// strings are skipped as the scanner skips them, its structure is not checked again.
fn checked_value_end(b: &[u8], at: usize) -> Option<usize> {
    match *b.get(at)? {
        b'"' => string_end(b, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match *b.get(i)? {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        // A number or a literal: up to what may follow a value.
        _ => Some(
            b[at..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(b.len(), |n| at + n),
        ),
    }
}

impl From<Box<RawValue>> for RawArg {
    fn from(value: Box<RawValue>) -> RawArg {
        RawArg(Box::<str>::from(value).into())
    }
}

impl From<&RawValue> for RawArg {
    fn from(value: &RawValue) -> RawArg {
        RawArg(value.get().into())
    }
}

/// The elements of the JSON array `data` (whitespace around it allowed), each as its
/// text without surrounding whitespace; `None` unless `data` is exactly one array.
pub(crate) fn split_array(data: &str) -> Option<SmallVec<[&str; 4]>> {
    let bytes = data.as_bytes();
    let mut at = skip_ws(bytes, 0);
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    at = skip_ws(bytes, at + 1);
    let mut out = SmallVec::new();
    if bytes.get(at) == Some(&b']') {
        at += 1;
    } else {
        loop {
            let end = value_end(bytes, at)?;
            out.push(&data[at..end]);
            at = skip_ws(bytes, end);
            match bytes.get(at) {
                Some(b',') => at = skip_ws(bytes, at + 1),
                Some(b']') => {
                    at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(bytes, at) == bytes.len()).then_some(out)
}

/// The elements of [`split_array`] as arguments: views of `owner` (the text they were
/// split from, which must hold every element) or, without one, copies.
pub(crate) fn args_of(elements: &[&str], owner: Option<&ByteString>) -> Args {
    elements.iter().map(|e| RawArg::checked(e, owner)).collect()
}

/// The text of a JSON string literal `json` (quotes included) when it has no escapes.
pub(crate) fn plain_str(json: &str) -> Option<&str> {
    let inner = json.strip_prefix('"')?.strip_suffix('"')?;
    memchr::memchr(b'\\', inner.as_bytes())
        .is_none()
        .then_some(inner)
}

fn skip_ws(b: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(at) {
        at += 1;
    }
    at
}

/// Where the JSON value that starts exactly at `at` ends, or `None` if there is none.
/// Iterative: the nesting is a stack of open brackets, not recursion.
fn value_end(b: &[u8], mut at: usize) -> Option<usize> {
    // `true` for an open object, `false` for an open array.
    let mut open: SmallVec<[bool; 16]> = SmallVec::new();
    loop {
        // A value.
        match *b.get(at)? {
            bracket @ (b'{' | b'[') => {
                let object = bracket == b'{';
                let close = if object { b'}' } else { b']' };
                at = skip_ws(b, at + 1);
                if b.get(at) == Some(&close) {
                    at += 1;
                } else {
                    open.push(object);
                    if object {
                        at = key_then_colon(b, at)?;
                    }
                    continue;
                }
            }
            b'"' => at = string_end(b, at)?,
            b'-' | b'0'..=b'9' => at = number_end(b, at)?,
            b't' => at = literal_end(b, at, b"true")?,
            b'f' => at = literal_end(b, at, b"false")?,
            b'n' => at = literal_end(b, at, b"null")?,
            _ => return None,
        }
        // After a value: close what ends here, or go on to the next element.
        loop {
            let Some(&in_object) = open.last() else {
                return Some(at);
            };
            at = skip_ws(b, at);
            match (*b.get(at)?, in_object) {
                (b',', true) => {
                    at = key_then_colon(b, skip_ws(b, at + 1))?;
                    break;
                }
                (b',', false) => {
                    at = skip_ws(b, at + 1);
                    break;
                }
                (b'}', true) | (b']', false) => {
                    open.pop();
                    at += 1;
                }
                _ => return None,
            }
        }
    }
}

/// After `{` or `,` in an object: a key, `:`, and the whitespace before the value.
fn key_then_colon(b: &[u8], at: usize) -> Option<usize> {
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let at = skip_ws(b, string_end(b, at)?);
    (b.get(at) == Some(&b':')).then(|| skip_ws(b, at + 1))
}

fn literal_end(b: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    let end = at + word.len();
    (b.get(at..end) == Some(word)).then_some(end)
}

/// A string literal starting at its opening quote: where it ends, past the closing one.
fn string_end(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        // The usual case: plain text up to the first byte that needs a look.
        i = next_special(b, i);
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => {
                i += 1;
                match *b.get(i)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 1,
                    b'u' => {
                        let hex = b.get(i + 1..i + 5)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        i += 5;
                    }
                    _ => return None,
                }
            }
            0x00..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// The bytes [`special_mask`] looks at at once.
const BLOCK: usize = 16;

/// Where the first `"`, `\` or control character at or after `at` is (`b.len()` when
/// there is none): a block of sixteen bytes at a time, then a word, then byte by byte.
pub(crate) fn next_special(b: &[u8], mut at: usize) -> usize {
    while let Some(block) = b.get(at..).and_then(<[u8]>::first_chunk::<BLOCK>) {
        let mask = special_mask(block);
        if mask != 0 {
            return at + mask.trailing_zeros() as usize;
        }
        at += BLOCK;
    }
    if let Some(word) = b.get(at..).and_then(<[u8]>::first_chunk::<8>) {
        let marks = special_bytes(u64::from_le_bytes(*word));
        if marks != 0 {
            return at + (marks.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let rest = b.get(at..).unwrap_or_default();
    at + rest
        .iter()
        .position(|&c| is_special(c))
        .unwrap_or(rest.len())
}

fn is_special(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Bit `i` set for each byte `i` of `block` that is a `"`, a `\` or a control
/// character: three comparisons of all sixteen bytes at once.
#[cfg(target_arch = "x86_64")]
fn special_mask(block: &[u8; BLOCK]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 processor (the target enables it), and the
    // load is an unaligned one (no alignment needed) of exactly the sixteen bytes of
    // `block`.
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // A byte below 0x20 is its own minimum with 0x1f.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn special_mask(block: &[u8; BLOCK]) -> u32 {
    block
        .iter()
        .enumerate()
        .fold(0, |mask, (i, &b)| mask | u32::from(is_special(b)) << i)
}

/// The high bit of each byte of `w` (little-endian) that is a `"`, a `\` or a control
/// character, by the classic SWAR "has a byte less than n" test. A borrow can also mark
/// a byte above a marked one, never below: the lowest mark is the first such byte.
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_less = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    has_less(w, 0x20) | has_less(quote, 1) | has_less(backslash, 1)
}

/// A number: `-`? (`0` | [1-9][0-9]*) (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?
fn number_end(b: &[u8], mut at: usize) -> Option<usize> {
    let digits = |b: &[u8], mut at: usize| {
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        (at > start).then_some(at)
    };
    if b.get(at) == Some(&b'-') {
        at += 1;
    }
    match *b.get(at)? {
        b'0' => {
            at += 1;
            // serde_json refuses a leading zero followed by digits.
            if b.get(at).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        b'1'..=b'9' => at = digits(b, at)?,
        _ => return None,
    }
    if b.get(at) == Some(&b'.') {
        at = digits(b, at + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(at) {
        at += 1;
        if let Some(b'+' | b'-') = b.get(at) {
            at += 1;
        }
        at = digits(b, at)?;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What serde_json makes of `data` as an array of raw values.
    fn serde_split(data: &str) -> Option<Vec<String>> {
        serde_json::from_str::<Vec<&RawValue>>(data)
            .ok()
            .map(|v| v.iter().map(|r| r.get().to_owned()).collect())
    }

    fn ours(data: &str) -> Option<Vec<String>> {
        split_array(data).map(|v| v.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn splits_as_serde_json_does() {
        for data in [
            "[]",
            " [ ] ",
            r#"["msg",{"msg":"hi","user":"u","img":"i"}]"#,
            r#"[1,-0,0.5,-1.25e+3,1E5,2e-7,true,false,null]"#,
            " [ \"a\" ,\t{ \"k\" : [ 1 , { } , [ ] ] }\n,\r\"\\u00e9\\n\\\"\" ] ",
            r#"["\ud800"]"#,
            r#"[{"a":1,"a":2}]"#,
            "[\"é ✓ 𝄞\"]",
            // Refused.
            "",
            "[",
            "]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "[01]",
            "[-]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[+1]",
            "[tru]",
            "[nul]",
            "[True]",
            "[\"a]",
            "[\"\\x\"]",
            "[\"\\u12\"]",
            "[\"\\u12g4\"]",
            "[\"a\tb\"]",
            "[\"a\u{1}b\"]",
            "[{1:2}]",
            "[{\"a\" 1}]",
            "[{\"a\":}]",
            "[{\"a\":1,}]",
            "[{\"a\":1]",
            "[[1}]",
            "[1] x",
            "[1][2]",
            "{\"a\":1}",
            "\"s\"",
            "[NaN]",
            "[Infinity]",
        ] {
            assert_eq!(ours(data), serde_split(data), "{data:?}");
        }
    }

    #[test]
    fn nesting_has_no_depth_limit_inside_an_argument() {
        let deep = format!("[{}{}]", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(ours(&deep).map(|v| v.len()), Some(1));
        assert_eq!(ours(&deep), serde_split(&deep));
        let unbalanced = format!("[{}{}]", "[".repeat(100), "]".repeat(99));
        assert_eq!(ours(&unbalanced), None);
    }

    #[test]
    fn a_raw_arg_is_one_value() {
        assert_eq!(RawArg::parse(" {\"a\":[1]} ").unwrap().get(), "{\"a\":[1]}");
        assert_eq!(RawArg::parse("1 2"), None);
        assert_eq!(RawArg::parse(""), None);
        let from_serde = RawArg::from(RawValue::from_string("[true]".into()).unwrap());
        assert_eq!(from_serde.get(), "[true]");
    }

    #[test]
    fn a_string_ends_at_its_first_unescaped_quote_wherever_it_falls() {
        for len in 0..40 {
            for special in ["\"", "\\n", "\\u00e9", "\u{1}", "é"] {
                for at in 0..=len {
                    let text = format!("{}{}{}", "a".repeat(at), special, "b".repeat(len - at));
                    let literal = format!("\"{text}\"");
                    let data = format!("[{literal},1]");
                    assert_eq!(ours(&data), serde_split(&data), "{data:?}");
                }
            }
        }
    }

    #[test]
    fn plain_strings_are_borrowed() {
        assert_eq!(plain_str("\"msg\""), Some("msg"));
        assert_eq!(plain_str("\"a\\nb\""), None);
        assert_eq!(plain_str("1"), None);
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC*|[\\x00-\\x7f]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn only_an_object_has_members() {
        for not_an_object in ["[1]", "\"{}\"", "1", "null"] {
            assert!(RawArg::parse(not_an_object).unwrap().members().is_none());
        }
        let empty = RawArg::parse(" { } ").unwrap();
        assert_eq!(empty.members().unwrap().count(), 0);
        let duplicates = RawArg::parse(r#"{"a":1,"a":[2]}"#).unwrap();
        let members: Vec<_> = duplicates.members().unwrap().collect();
        assert_eq!(members, [("\"a\"", "1"), ("\"a\"", "[2]")]);
    }

    #[test]
    fn a_string_value_is_borrowed_unless_escaped() {
        use std::borrow::Cow;
        assert!(matches!(str_value("\"abc\""), Some(Cow::Borrowed("abc"))));
        assert_eq!(str_value(r#""a\u00e9\n""#).as_deref(), Some("aé\n"));
        assert_eq!(str_value("12"), None);
        assert_eq!(str_value("null"), None);
    }

    proptest! {
        #[test]
        fn the_next_special_byte_is_the_first_one_at_or_after_the_start(
            bytes in prop::collection::vec(prop_oneof![
                40 => 0x20u8..=0xff,
                1 => Just(b'"'),
                1 => Just(b'\\'),
                1 => 0u8..0x20,
            ], 0..100),
            start in any::<prop::sample::Index>(),
        ) {
            let start = start.index(bytes.len() + 1);
            let expected = bytes[start..]
                .iter()
                .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
                .map_or(bytes.len(), |n| start + n);
            prop_assert_eq!(next_special(&bytes, start), expected);
        }

        #[test]
        fn members_are_the_objects_members_in_order(
            members in prop::collection::vec(("\\PC{0,6}|[\\x00-\\x7f]{0,4}", json_value()), 0..6),
            pretty: bool,
        ) {
            // Written by hand: a map would drop duplicates and reorder the keys.
            let (open, colon, comma, close) = if pretty {
                ("{\n  ", " : ", " ,\n\t", "\r\n}")
            } else {
                ("{", ":", ",", "}")
            };
            let mut text = String::from(open);
            let mut value_texts = Vec::new();
            for (n, (key, value)) in members.iter().enumerate() {
                if n > 0 {
                    text.push_str(comma);
                }
                text.push_str(&serde_json::to_string(key).unwrap());
                text.push_str(colon);
                let value = if pretty {
                    serde_json::to_string_pretty(value).unwrap()
                } else {
                    serde_json::to_string(value).unwrap()
                };
                text.push_str(&value);
                value_texts.push(value);
            }
            text.push_str(close);
            let raw = RawArg::parse(&text).unwrap();
            let walked: Vec<_> = raw.members().unwrap().collect();
            prop_assert_eq!(walked.len(), members.len());
            for (((key, _), value), (walked_key, walked_value)) in
                members.iter().zip(&value_texts).zip(walked)
            {
                let walked_key = str_value(walked_key);
                prop_assert_eq!(walked_key.as_deref(), Some(key.as_str()));
                prop_assert_eq!(walked_value, value.as_str());
            }
        }

        #[test]
        fn agrees_with_serde_json_on_valid_arrays(
            values in prop::collection::vec(json_value(), 0..5),
            pretty: bool,
        ) {
            let data = if pretty {
                serde_json::to_string_pretty(&values).unwrap()
            } else {
                serde_json::to_string(&values).unwrap()
            };
            prop_assert_eq!(ours(&data), serde_split(&data));
            prop_assert!(ours(&data).is_some());
        }

        #[test]
        fn agrees_with_serde_json_on_damaged_arrays(
            values in prop::collection::vec(json_value(), 1..4),
            cut in any::<prop::sample::Index>(),
            insert in prop::sample::select(vec![
                "", ",", "]", "[", "}", "{", "\"", "\\", ":", "0", "-", ".", "e", " ", "\u{1}",
                "\\u", "tru", "01", "1.", "\\q",
            ]),
            remove in 0usize..3,
        ) {
            let data = serde_json::to_string(&values).unwrap();
            let mut at = cut.index(data.len() + 1);
            while !data.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + remove).min(data.len());
            while !data.is_char_boundary(end) {
                end += 1;
            }
            let damaged = format!("{}{}{}", &data[..at], insert, &data[end..]);
            prop_assert_eq!(ours(&damaged), serde_split(&damaged), "{:?}", damaged);
        }
    }
}
