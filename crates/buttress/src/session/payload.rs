//! The compact binary plaintext of a session cookie (cookie format version 3).
//!
//! ```text
//! payload  := created:int  (expires - created):int  (last_seen - created):int  flags:u8
//!             [user:str] [csrf:str] [client:str] [sid:str] [epoch:len]
//!                                                     (present when flag bit 0 … 4 is set)
//!             values:map
//! int      := zigzag LEB128 of an i64 (at most 10 bytes); differences wrap, so every i64
//!             round-trips, and the usual ones (12 hours, 0) take three bytes or one
//! len      := LEB128 of a u64 (at most 10 bytes)
//! str      := len  UTF-8 bytes
//! map      := len (str value)*                          (entry count, then entries)
//! value    := 0 null | 1 false | 2 true
//!           | 3 len                                     (u64)
//!           | 4 len                                     (negative i64 n, stored as !n)
//!           | 5 8 bytes                                 (finite f64, little-endian bits)
//!           | 6 str | 7 len value* | 8 map              (string, array, object)
//! ```
//!
//! It round-trips every [`SessionData`] exactly, including every `serde_json::Value` (numbers
//! keep their kind: unsigned, negative or float, bit for bit). Arrays and objects nest at most
//! [`MAX_DEPTH`] deep, as serde_json's own parser allows; deeper values are refused when
//! encoding, so a cookie that was issued always opens.
//!
//! Decoding is total: every byte string gives a value or `Err(Invalid)`, never a panic. Every
//! length and count is checked against the bytes that remain before anything is read or
//! allocated, so the work and memory are bounded by the input's size.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use super::record::SessionData;

/// The deepest nesting of arrays and objects in a value (serde_json's parser allows 128).
pub(crate) const MAX_DEPTH: usize = 128;

const USER: u8 = 1;
const CSRF: u8 = 2;
const CLIENT: u8 = 4;
const SID: u8 = 8;
const EPOCH: u8 = 16;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UINT: u8 = 3;
const NEG_INT: u8 = 4;
const FLOAT: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// The payload does not decode (or a value nests too deep to encode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid;

/// Appends the payload of `data` to `out`.
pub(crate) fn encode(data: &SessionData, out: &mut Vec<u8>) -> Result<(), Invalid> {
    put_int(out, data.created);
    put_int(out, data.expires.wrapping_sub(data.created));
    put_int(out, data.last_seen.wrapping_sub(data.created));
    let flags = [
        (data.user.is_some(), USER),
        (data.csrf.is_some(), CSRF),
        (data.client.is_some(), CLIENT),
        (data.sid.is_some(), SID),
        (data.epoch.is_some(), EPOCH),
    ]
    .iter()
    .filter(|(present, _)| *present)
    .fold(0, |flags, (_, bit)| flags | bit);
    out.push(flags);
    for s in [&data.user, &data.csrf, &data.client, &data.sid]
        .into_iter()
        .flatten()
    {
        put_str(out, s);
    }
    if let Some(epoch) = data.epoch {
        put_u64(out, epoch);
    }
    put_len(out, data.values.len());
    for (k, v) in &data.values {
        put_str(out, k);
        put_value(out, v, 0)?;
    }
    Ok(())
}

/// Reads a whole payload: trailing bytes are invalid.
pub(crate) fn decode(bytes: &[u8]) -> Result<SessionData, Invalid> {
    let mut r = Reader { rest: bytes };
    let created = r.int()?;
    let expires = created.wrapping_add(r.int()?);
    let last_seen = created.wrapping_add(r.int()?);
    let flags = r.byte()?;
    if flags & !(USER | CSRF | CLIENT | SID | EPOCH) != 0 {
        return Err(Invalid);
    }
    let mut optional = |bit: u8| -> Result<Option<String>, Invalid> {
        Ok(if flags & bit != 0 {
            Some(r.str()?.to_owned())
        } else {
            None
        })
    };
    let user = optional(USER)?;
    let csrf = optional(CSRF)?;
    let client = optional(CLIENT)?;
    let sid = optional(SID)?;
    let epoch = if flags & EPOCH != 0 {
        Some(r.u64()?)
    } else {
        None
    };
    // Each entry takes at least two bytes (an empty key and a one-byte value).
    let n = r.count(2)?;
    let mut values = BTreeMap::new();
    for _ in 0..n {
        let k = r.str()?.to_owned();
        let v = r.value(0)?;
        values.insert(k, v);
    }
    if !r.rest.is_empty() {
        return Err(Invalid);
    }
    Ok(SessionData {
        created,
        expires,
        last_seen,
        values,
        user,
        csrf,
        client,
        sid,
        epoch,
    })
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    put_u64(out, n as u64);
}

fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_int(out: &mut Vec<u8>, n: i64) {
    put_u64(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value, depth: usize) -> Result<(), Invalid> {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.push(UINT);
                put_u64(out, u);
            } else if let Some(i) = n.as_i64() {
                // Not a u64, so negative: !i is in 0..=i64::MAX.
                out.push(NEG_INT);
                put_u64(out, !i as u64);
            } else {
                // serde_json keeps only finite floats, and without arbitrary_precision every
                // number is one of the three kinds.
                let f = n.as_f64().ok_or(Invalid)?;
                out.push(FLOAT);
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        Value::String(s) => {
            out.push(STRING);
            put_str(out, s);
        }
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(Invalid);
            }
            out.push(ARRAY);
            put_len(out, items.len());
            for item in items {
                put_value(out, item, depth + 1)?;
            }
        }
        Value::Object(map) => {
            if depth >= MAX_DEPTH {
                return Err(Invalid);
            }
            out.push(OBJECT);
            put_len(out, map.len());
            for (k, item) in map {
                put_str(out, k);
                put_value(out, item, depth + 1)?;
            }
        }
    }
    Ok(())
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, Invalid> {
        let (&b, rest) = self.rest.split_first().ok_or(Invalid)?;
        self.rest = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Invalid> {
        if n > self.rest.len() {
            return Err(Invalid);
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, Invalid> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            // The tenth byte holds only the top bit of a u64.
            if shift == 63 && b > 1 {
                return Err(Invalid);
            }
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err(Invalid)
    }

    fn int(&mut self) -> Result<i64, Invalid> {
        let z = self.u64()?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    /// A length that must fit in what remains.
    fn len(&mut self) -> Result<usize, Invalid> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.rest.len())
            .ok_or(Invalid)
    }

    /// A count of items of at least `min` bytes each that must fit in what remains.
    fn count(&mut self, min: usize) -> Result<usize, Invalid> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.rest.len() / min)
            .ok_or(Invalid)
    }

    fn str(&mut self) -> Result<&'a str, Invalid> {
        let n = self.len()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| Invalid)
    }

    fn value(&mut self, depth: usize) -> Result<Value, Invalid> {
        Ok(match self.byte()? {
            NULL => Value::Null,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            UINT => Value::Number(self.u64()?.into()),
            NEG_INT => {
                let n = self.u64()?;
                let n = i64::try_from(n).map_err(|_| Invalid)?;
                Value::Number((!n).into())
            }
            FLOAT => {
                let raw: [u8; 8] = self.take(8)?.try_into().map_err(|_| Invalid)?;
                Value::Number(Number::from_f64(f64::from_le_bytes(raw)).ok_or(Invalid)?)
            }
            STRING => Value::String(self.str()?.to_owned()),
            ARRAY => {
                if depth >= MAX_DEPTH {
                    return Err(Invalid);
                }
                let n = self.count(1)?;
                // Capacity is capped: a nest of arrays each claiming the whole remainder must
                // not reserve depth × remainder slots.
                let mut items = Vec::with_capacity(n.min(16));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items)
            }
            OBJECT => {
                if depth >= MAX_DEPTH {
                    return Err(Invalid);
                }
                let n = self.count(2)?;
                let mut map = Map::new();
                for _ in 0..n {
                    let k = self.str()?.to_owned();
                    let v = self.value(depth + 1)?;
                    map.insert(k, v);
                }
                Value::Object(map)
            }
            _ => return Err(Invalid),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn round_trip(d: &SessionData) -> SessionData {
        let mut buf = Vec::new();
        encode(d, &mut buf).expect("encodes");
        decode(&buf).expect("decodes")
    }

    #[test]
    fn edge_values_round_trip() {
        let mut d = SessionData::new(i64::MIN, i64::MAX);
        d.last_seen = -1;
        d.user = Some(String::new());
        d.client = Some("203.0.113.7 — Mozilla/5.0 ✓".into());
        d.sid = Some("AAAAAAAAAAAAAAAAAAAAAA".into());
        d.epoch = Some(u64::MAX);
        for (k, v) in [
            ("u", json!(u64::MAX)),
            ("i", json!(i64::MIN)),
            ("m1", json!(-1)),
            ("z", json!(0)),
            ("f", json!(1.0)),
            ("nz", json!(-0.0)),
            ("tiny", json!(f64::MIN_POSITIVE)),
            ("big", json!(f64::MAX)),
            (
                "nested",
                json!({"a": [null, true, false, "x", {"": []}], "b": {}}),
            ),
            ("", json!("")),
        ] {
            d.values.insert(k.into(), v);
        }
        let back = round_trip(&d);
        assert_eq!(back, d);
        // Bit-exact floats (-0.0 == 0.0 under PartialEq).
        assert!(back.values["nz"]
            .as_f64()
            .is_some_and(|f| f.is_sign_negative()));
        // Number kinds survive: 1.0 stays a float, 0 an integer.
        assert!(back.values["f"].is_f64());
        assert!(back.values["z"].is_u64());
    }

    fn nested(depth: usize) -> Value {
        (0..depth).fold(json!(1), |v, _| json!([v]))
    }

    #[test]
    fn depth_limit_is_symmetric() {
        let mut d = SessionData::new(0, 1);
        d.values.insert("ok".into(), nested(MAX_DEPTH));
        assert_eq!(round_trip(&d), d);
        d.values.insert("deep".into(), nested(MAX_DEPTH + 1));
        assert_eq!(encode(&d, &mut Vec::new()), Err(Invalid));
        // A hand-made payload one level deeper than allowed is refused, not followed.
        let mut raw = vec![0, 2, 0, 0, 1, 0];
        raw.extend(std::iter::repeat_n([ARRAY, 1], MAX_DEPTH + 1).flatten());
        raw.push(NULL);
        assert_eq!(decode(&raw), Err(Invalid));
        // A very deep one (far past the stack) is refused just as quickly.
        let mut raw = vec![0, 2, 0, 0, 1, 0];
        raw.extend(std::iter::repeat_n([ARRAY, 1], 1 << 20).flatten());
        assert_eq!(decode(&raw), Err(Invalid));
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let mut good = Vec::new();
        let mut d = SessionData::new(1_700_000_000, 1_700_043_200);
        d.csrf = Some("token".into());
        d.values.insert("k".into(), json!([1, "two"]));
        encode(&d, &mut good).expect("encodes");
        assert_eq!(decode(&good).as_ref(), Ok(&d));
        // Every truncation fails, and so does a trailing byte.
        for cut in 0..good.len() {
            assert_eq!(decode(&good[..cut]), Err(Invalid), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(Invalid));
        // Unknown flag bits and value tags.
        let header = [0u8, 2, 0];
        assert_eq!(decode(&[&header[..], &[32, 0]].concat()), Err(Invalid));
        assert_eq!(decode(&[&header[..], &[0, 1, 0, 9]].concat()), Err(Invalid));
        // Overlong varint (11 bytes) and a tenth byte past 64 bits.
        assert_eq!(decode(&[0xff; 11]), Err(Invalid));
        let mut over = vec![0xff; 9];
        over.push(2);
        assert_eq!(decode(&over), Err(Invalid));
        // Lengths and counts larger than the input.
        assert_eq!(
            decode(&[&header[..], &[USER, 5, b'a']].concat()),
            Err(Invalid)
        );
        assert_eq!(
            decode(&[&header[..], &[0, 0xff, 0xff, 0xff, 0xff, 0x0f]].concat()),
            Err(Invalid)
        );
        // Invalid UTF-8, a non-finite float, a "negative" integer that is not.
        assert_eq!(
            decode(&[&header[..], &[USER, 1, 0xff, 0]].concat()),
            Err(Invalid)
        );
        let nan = f64::NAN.to_le_bytes();
        assert_eq!(
            decode(&[&header[..], &[0, 1, 0, FLOAT], &nan[..]].concat()),
            Err(Invalid)
        );
        let mut neg = [&header[..], &[0, 1, 0, NEG_INT]].concat();
        put_u64(&mut neg, 1 << 63);
        assert_eq!(decode(&neg), Err(Invalid));
    }

    /// Any JSON value, nested a few levels.
    pub(crate) fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(|n| json!(n)),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter_map("finite", Number::from_f64)
                .prop_map(Value::Number),
            "\\PC{0,20}".prop_map(Value::String),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    prop_compose! {
        /// Any session: any times, strings and JSON values.
        pub(crate) fn session_data()(
            created in any::<i64>(),
            expires in any::<i64>(),
            last_seen in any::<i64>(),
            user in proptest::option::of(any::<String>()),
            csrf in proptest::option::of("[A-Za-z0-9_-]{43}"),
            client in proptest::option::of("\\PC{0,80}"),
            sid in proptest::option::of("[A-Za-z0-9_-]{22}"),
            epoch in proptest::option::of(any::<u64>()),
            values in proptest::collection::btree_map(any::<String>(), json_value(), 0..6),
        ) -> SessionData {
            SessionData { created, expires, last_seen, values, user, csrf, client, sid, epoch }
        }
    }

    proptest! {
        #[test]
        fn round_trips_any_session(d in session_data()) {
            let mut buf = Vec::new();
            encode(&d, &mut buf).expect("encodes");
            let back = decode(&buf).expect("decodes");
            // Compare as JSON too: that also tells -0.0 from 0.0.
            prop_assert_eq!(
                serde_json::to_string(&back).expect("json"),
                serde_json::to_string(&d).expect("json")
            );
            prop_assert_eq!(back, d);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn mutated_payloads_never_panic(
            d in session_data(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        ) {
            let mut buf = Vec::new();
            encode(&d, &mut buf).expect("encodes");
            for (at, byte, op) in edits {
                match op {
                    0 if !buf.is_empty() => { let i = at.index(buf.len()); buf[i] = byte; }
                    1 => { let i = at.index(buf.len() + 1); buf.insert(i, byte); }
                    _ if !buf.is_empty() => { let i = at.index(buf.len()); buf.truncate(i); }
                    _ => {}
                }
            }
            if let Ok(back) = decode(&buf) {
                // Whatever decodes re-encodes and decodes to the same thing.
                let mut again = Vec::new();
                encode(&back, &mut again).expect("re-encodes");
                prop_assert_eq!(decode(&again).expect("decodes"), back);
            }
        }
    }
}
