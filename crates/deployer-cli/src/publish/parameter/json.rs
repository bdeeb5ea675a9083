//! JSON as fabric-cicd's `key_value_replace` rewrites it: parsed keeping key order, updated at
//! the places a JSONPath query found, and written back the way Python's `json.dumps` does
//! (one line, `", "` and `": "` separators, non-ASCII as `\uXXXX`).

use std::fmt::Write as _;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json_path::{JsonPath, PathElement};

/// A JSON (or YAML) document that keeps the order of its keys.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ordered {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl Ordered {
    /// The same document as a `serde_json::Value`, for querying.
    pub(crate) fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Ordered::Null => Value::Null,
            Ordered::Bool(b) => Value::Bool(*b),
            Ordered::Number(n) => Value::Number(n.clone()),
            Ordered::String(s) => Value::String(s.clone()),
            Ordered::Array(a) => Value::Array(a.iter().map(Ordered::to_value).collect()),
            Ordered::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), v.to_value())).collect())
            }
        }
    }

    /// Sets every node `path` finds in this document to `value`; returns how many were set.
    pub(crate) fn update_all(&mut self, path: &JsonPath, value: &Ordered) -> usize {
        let queried = self.to_value();
        let located: Vec<Vec<Step>> = path
            .query_located(&queried)
            .locations()
            .map(|loc| {
                loc.iter()
                    .map(|e| match e {
                        PathElement::Name(n) => Step::Key(n.to_string()),
                        PathElement::Index(i) => Step::Index(*i),
                    })
                    .collect()
            })
            .collect();
        let mut n = 0;
        for steps in located {
            if let Some(slot) = self.at_mut(&steps) {
                *slot = value.clone();
                n += 1;
            }
        }
        n
    }

    fn at_mut(&mut self, steps: &[Step]) -> Option<&mut Ordered> {
        let Some((first, rest)) = steps.split_first() else {
            return Some(self);
        };
        let next = match (self, first) {
            // Python's json keeps the last of duplicate keys; so does the query value.
            (Ordered::Object(o), Step::Key(k)) => {
                o.iter_mut().rev().find(|(key, _)| key == k).map(|(_, v)| v)
            }
            (Ordered::Array(a), Step::Index(i)) => a.get_mut(*i),
            _ => None,
        }?;
        next.at_mut(rest)
    }

    /// Python's `json.dumps(value)` with its defaults.
    pub(crate) fn python_dumps(&self) -> String {
        let mut out = String::new();
        self.write_python(&mut out);
        out
    }

    /// Python's `json.dumps(value, indent=n)`: one member per line, `","` and `": "`.
    pub(crate) fn python_dumps_indent(&self, indent: usize) -> String {
        let mut out = String::new();
        self.write_python_indented(&mut out, indent, 0);
        out
    }

    fn write_python_indented(&self, out: &mut String, indent: usize, level: usize) {
        let pad = |out: &mut String, level: usize| {
            out.push('\n');
            out.push_str(&" ".repeat(indent * level));
        };
        match self {
            Ordered::Array(a) if !a.is_empty() => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, level + 1);
                    v.write_python_indented(out, indent, level + 1);
                }
                pad(out, level);
                out.push(']');
            }
            Ordered::Object(o) if !o.is_empty() => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, level + 1);
                    python_string(k, out);
                    out.push_str(": ");
                    v.write_python_indented(out, indent, level + 1);
                }
                pad(out, level);
                out.push('}');
            }
            other => other.write_python(out),
        }
    }

    fn write_python(&self, out: &mut String) {
        match self {
            Ordered::Null => out.push_str("null"),
            Ordered::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Ordered::Number(n) => out.push_str(&python_number(n)),
            Ordered::String(s) => python_string(s, out),
            Ordered::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write_python(out);
                }
                out.push(']');
            }
            Ordered::Object(o) => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    python_string(k, out);
                    out.push_str(": ");
                    v.write_python(out);
                }
                out.push('}');
            }
        }
    }
}

#[derive(Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// Python prints floats with `repr`: the shortest round-trip form, with `.0` on whole numbers
/// and an exponent (`1e-07`, `1e+16`) outside [1e-4, 1e16).
fn python_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let Some(f) = n.as_f64() else {
        return n.to_string();
    };
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// A JSON string with `ensure_ascii`: everything outside printable ASCII as `\uXXXX`.
fn python_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OrderedVisitor)
    }
}

struct OrderedVisitor;

impl<'de> Visitor<'de> for OrderedVisitor {
    type Value = Ordered;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Null)
    }
    fn visit_none<E>(self) -> Result<Ordered, E> {
        Ok(Ordered::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Ordered, D::Error> {
        Ordered::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Ordered, E> {
        Ok(Ordered::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Ordered, E> {
        Ok(Ordered::Number(i.into()))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Ordered, E> {
        Ok(Ordered::Number(u.into()))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Ordered, E> {
        Ok(serde_json::Number::from_f64(f).map_or(Ordered::Null, Ordered::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Ordered, E> {
        Ok(Ordered::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Ordered, E> {
        Ok(Ordered::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = seq.next_element()? {
            v.push(x);
        }
        Ok(Ordered::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
        let mut v: Vec<(String, Ordered)> = Vec::new();
        while let Some((k, x)) = map.next_entry::<OrderedKey, Ordered>()? {
            v.push((k.0, x));
        }
        Ok(Ordered::Object(v))
    }
}

/// A mapping key; YAML allows non-string keys, which Python's json writes as strings.
struct OrderedKey(String);

impl<'de> Deserialize<'de> for OrderedKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Ordered::deserialize(d)?;
        Ok(OrderedKey(match v {
            Ordered::String(s) => s,
            Ordered::Null => "null".to_string(),
            Ordered::Bool(b) => b.to_string(),
            Ordered::Number(n) => n.to_string(),
            other => other.python_dumps(),
        }))
    }
}

impl serde::Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Ordered::Null => s.serialize_unit(),
            Ordered::Bool(b) => s.serialize_bool(*b),
            Ordered::Number(n) => n.serialize(s),
            Ordered::String(v) => s.serialize_str(v),
            Ordered::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Ordered::Object(o) => {
                let mut map = s.serialize_map(Some(o.len()))?;
                for (k, v) in o {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}
