//! A YAML tree that remembers where every key and value starts, so each problem in
//! `parameter.yml` can name its line and column. Built from yaml-rust2's marked events because
//! serde keeps no positions and rejects duplicate keys only case-sensitively.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::config::locate::Pos;

/// One YAML value and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) pos: Pos,
    pub(crate) kind: Kind,
}

/// What a YAML value is.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A scalar; `plain` when unquoted (so `true` is a boolean, `"true"` a string).
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// One key of a mapping, with the key's own position.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_pos: Pos,
    pub(crate) value: Node,
}

/// A plain scalar resolved the way PyYAML's SafeLoader (YAML 1.1) does, which is what
/// fabric-cicd reads `parameter.yml` with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Node {
    /// The string, if this is a string scalar (quoted, or plain and not a bool/number/null).
    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, plain } => match resolve(text, *plain) {
                Scalar::Str(_) => Some(text),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether this is a null scalar (`~`, `null`, or nothing at all).
    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain } if resolve(text, *plain) == Scalar::Null)
    }

    /// The mapping's entries, if a mapping.
    pub(crate) fn as_map(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(e) => Some(e),
            _ => None,
        }
    }

    /// The sequence's items, if a sequence.
    pub(crate) fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// A short name of the value's YAML type, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
            Kind::Scalar { text, plain } => match resolve(text, *plain) {
                Scalar::Null => "null",
                Scalar::Bool(_) => "a boolean",
                Scalar::Int(_) | Scalar::Float(_) => "a number",
                Scalar::Str(_) => "a string",
            },
        }
    }
}

/// Resolves a scalar's text: quoted and block scalars are strings; plain ones follow PyYAML's
/// YAML 1.1 resolvers (`yes`/`on` are booleans, `0o7` is a string, `1.0e3` is a string).
pub(crate) fn resolve(text: &str, plain: bool) -> Scalar {
    if !plain {
        return Scalar::Str(text.to_string());
    }
    let r = &*RESOLVERS;
    if r.null.is_match(text) {
        return Scalar::Null;
    }
    if r.bool.is_match(text) {
        return Scalar::Bool(matches!(
            text,
            "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON"
        ));
    }
    if r.int.is_match(text)
        && let Some(i) = int_value(text)
    {
        return Scalar::Int(i);
    }
    if r.float.is_match(text) {
        let t = text.replace('_', "");
        let neg = t.starts_with('-');
        let unsigned = t.trim_start_matches(['+', '-']);
        let f = match unsigned.to_ascii_lowercase().as_str() {
            ".inf" => f64::INFINITY,
            ".nan" => f64::NAN,
            u if u.contains(':') => sexagesimal(u).unwrap_or(0.0),
            u => u.parse::<f64>().unwrap_or(0.0),
        };
        return Scalar::Float(if neg { -f } else { f });
    }
    Scalar::Str(text.to_string())
}

/// Whether PyYAML would read `text` (plain) as something other than a string: a null, bool,
/// number, timestamp, merge key `<<` or value key `=`; such strings must be quoted.
pub(crate) fn is_implicit_non_string(text: &str) -> bool {
    !matches!(resolve(text, true), Scalar::Str(_))
        || RESOLVERS.timestamp.is_match(text)
        || text == "<<"
        || text == "="
}

struct Resolvers {
    null: regex::Regex,
    bool: regex::Regex,
    int: regex::Regex,
    float: regex::Regex,
    timestamp: regex::Regex,
}

/// PyYAML's implicit resolvers (`resolver.py`), verbatim.
static RESOLVERS: std::sync::LazyLock<Resolvers> = std::sync::LazyLock::new(|| {
    let re = |p: &str| regex::Regex::new(p).expect("PyYAML's resolver patterns are valid");
    Resolvers {
        null: re(r"^(?:~|null|Null|NULL|)$"),
        bool: re(
            r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
        ),
        int: re(
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
        ),
        float: re(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        ),
        timestamp: re(
            r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
        ),
    }
});

/// The value of a YAML 1.1 integer (binary, octal with a leading 0, decimal, hex, base 60).
fn int_value(text: &str) -> Option<i64> {
    let t = text.replace('_', "");
    let (neg, u) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.trim_start_matches('+')),
    };
    let v = if let Some(b) = u.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(h) = u.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if u.contains(':') {
        sexagesimal(u)? as i64
    } else if u.len() > 1 && u.starts_with('0') {
        i64::from_str_radix(u, 8).ok()?
    } else {
        u.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

fn sexagesimal(u: &str) -> Option<f64> {
    u.split(':').try_fold(0.0, |acc, part| {
        Some(acc * 60.0 + part.parse::<f64>().ok()?)
    })
}

/// Parses `src` into a tree, or returns the syntax error's position and message.
pub(crate) fn parse(src: &str) -> Result<Option<Node>, (Pos, String)> {
    let mut rx = Builder::default();
    let mut parser = Parser::new_from_str(src);
    if let Err(e) = parser.load(&mut rx, false) {
        return Err((pos(e.marker()), format!("YAML syntax error: {}", e.info())));
    }
    if let Some(msg) = rx.complex_key {
        return Err(msg);
    }
    Ok(rx.root)
}

fn pos(m: &Marker) -> Pos {
    Pos {
        line: m.line(),
        col: m.col() + 1,
    }
}

#[derive(Debug)]
enum Frame {
    Seq(Pos, usize, Vec<Node>),
    Map(Pos, usize, Vec<Entry>, Option<(String, Pos)>),
}

#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    complex_key: Option<(Pos, String)>,
}

impl Builder {
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, pending)) => match pending.take() {
                Some((key, key_pos)) => entries.push(Entry {
                    key,
                    key_pos,
                    value: node,
                }),
                None => match node.kind {
                    Kind::Scalar { text, .. } => *pending = Some((text, node.pos)),
                    _ => {
                        self.complex_key.get_or_insert((
                            node.pos,
                            "a mapping key must be a plain value, not a list or mapping"
                                .to_string(),
                        ));
                        *pending = Some((String::new(), node.pos));
                    }
                },
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, anchor, _) => {
                let plain = style == TScalarStyle::Plain;
                let node = Node {
                    pos: pos(&mark),
                    kind: Kind::Scalar { text, plain },
                };
                self.finish(node, anchor);
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().unwrap_or(Node {
                    pos: pos(&mark),
                    kind: Kind::Scalar {
                        text: String::new(),
                        plain: true,
                    },
                });
                self.finish(node, 0);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(pos(&mark), anchor, Vec::new()))
            }
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Frame::Map(pos(&mark), anchor, Vec::new(), None))
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(p, anchor, items)) => self.finish(
                    Node {
                        pos: p,
                        kind: Kind::Seq(items),
                    },
                    anchor,
                ),
                // A block mapping's start event is marked late; its first key is where it begins.
                Some(Frame::Map(p, anchor, entries, _)) => self.finish(
                    Node {
                        pos: entries
                            .first()
                            .map(|e| e.key_pos)
                            .filter(|k| (k.line, k.col) < (p.line, p.col))
                            .unwrap_or(p),
                        kind: Kind::Map(entries),
                    },
                    anchor,
                ),
                None => {}
            },
            _ => {}
        }
    }
}
