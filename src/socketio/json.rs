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

    /// An argument from text the scanner has already checked: a view of `owner` when
    /// the text lies within it, a copy otherwise.
    fn checked(json: &str, owner: Option<&ByteString>) -> RawArg {
        match owner {
            Some(owner) => RawArg(owner.slice_ref(json)),
            None => RawArg(json.into()),
        }
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
    (!inner.contains('\\')).then_some(inner)
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
        // The usual case: plain text, eight bytes at a time, up to the first byte that
        // needs a look.
        while let Some(chunk) = b.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let special = special_bytes(u64::from_le_bytes(word));
            if special != 0 {
                i += (special.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
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

/// The high bit of each byte of `w` (little-endian) that is a `"`, a `\` or a control
/// character, by the classic SWAR "has a byte less than n" test. A borrow can also mark
/// a byte above a marked one, never below: the lowest mark is the first such byte.
pub(crate) fn special_bytes(w: u64) -> u64 {
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

    proptest! {
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
