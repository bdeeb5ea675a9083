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

/// Resolves a scalar's text: quoted and block scalars are strings; plain ones follow YAML 1.1.
pub(crate) fn resolve(text: &str, plain: bool) -> Scalar {
    if !plain {
        return Scalar::Str(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Scalar::Bool(true);
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Scalar::Bool(false);
        }
        _ => {}
    }
    let digits = text.replace('_', "");
    let unsigned = digits.trim_start_matches(['+', '-']);
    if !unsigned.is_empty()
        && unsigned.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = digits.parse::<i64>()
    {
        return Scalar::Int(i);
    }
    if let Some(hex) = unsigned.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Scalar::Int(if digits.starts_with('-') { -i } else { i });
    }
    let is_float = unsigned.contains('.')
        && unsigned
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && unsigned
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && unsigned.bytes().any(|b| b.is_ascii_digit());
    if is_float && let Ok(f) = digits.parse::<f64>() {
        return Scalar::Float(f);
    }
    match unsigned {
        ".inf" | ".Inf" | ".INF" => {
            let inf = if digits.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            };
            return Scalar::Float(inf);
        }
        ".nan" | ".NaN" | ".NAN" => return Scalar::Float(f64::NAN),
        _ => {}
    }
    Scalar::Str(text.to_string())
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
