//! Source positions for YAML values, so validation errors can point at file:line:column.
//!
//! serde_norway deserializes the typed config but keeps no spans; this walks the same text
//! with yaml-rust2's marked event parser and records where each value starts, keyed by a path
//! such as `workspaces[1].lakehouses[0].name`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

/// Where each value of a YAML document starts.
#[derive(Debug, Default)]
pub struct Locations {
    map: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Locations {
    /// Reads `src`; a document that does not parse yields no locations (serde reports it).
    pub fn of(src: &str) -> Self {
        let mut rx = Receiver::default();
        let mut parser = Parser::new_from_str(src);
        if parser.load(&mut rx, false).is_err() {
            return Self::default();
        }
        Self {
            map: rx.map,
            keys: rx.keys,
        }
    }

    /// Where the key of the value at `path` is written (`workspaces[0].lakehouse` → the
    /// `lakehouse:` of that workspace), for problems about the key itself.
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.keys.get(path).copied()
    }

    /// What makes `src` unusable before its shape is even looked at: a syntax error at its
    /// position, or keys given twice in one mapping (at the second one, naming the first).
    /// serde would report the first as some other error and the second at the document's start.
    pub fn structural_problems(src: &str) -> Vec<(Pos, String)> {
        let mut rx = Receiver::default();
        let mut parser = Parser::new_from_str(src);
        if let Err(e) = parser.load(&mut rx, false) {
            // An error found at the end of the text points past its last line; show it at the
            // end of the last line with text, where the unclosed thing is.
            let mut at = pos(e.marker());
            let lines: Vec<&str> = src.lines().collect();
            if at.line > lines.len()
                && let Some((i, l)) = lines
                    .iter()
                    .enumerate()
                    .rev()
                    .find(|(_, l)| !l.trim().is_empty())
            {
                at = Pos {
                    line: i + 1,
                    col: l.chars().count() + 1,
                };
            }
            return vec![(at, format!("YAML syntax error: {}", e.info()))];
        }
        rx.duplicates
    }

    /// The position of the value at `path`, or of its nearest located ancestor.
    pub fn find(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.map.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

#[derive(Debug)]
enum Frame {
    Map {
        path: String,
        key: Option<String>,
        seen: HashMap<String, Pos>,
    },
    Seq {
        path: String,
        index: usize,
    },
}

#[derive(Debug, Default)]
struct Receiver {
    stack: Vec<Frame>,
    map: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
    duplicates: Vec<(Pos, String)>,
}

impl Receiver {
    /// The path of the value that starts now, advancing the parent's key/index state.
    fn next_value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                Some(p)
            }
            Some(Frame::Map { path, key, .. }) => key.take().map(|k| {
                if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                }
            }),
        }
    }
}

fn pos(m: &Marker) -> Pos {
    Pos {
        line: m.line(),
        col: m.col() + 1,
    }
}

impl MarkedEventReceiver for Receiver {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                // A scalar in key position of a mapping is a key, not a value.
                if let Some(Frame::Map { key, seen, path }) = self.stack.last_mut()
                    && key.is_none()
                {
                    let at = pos(&mark);
                    let whole = if path.is_empty() {
                        value.clone()
                    } else {
                        format!("{path}.{value}")
                    };
                    self.keys.entry(whole.clone()).or_insert(at);
                    if let Some(first) = seen.get(&value) {
                        self.duplicates.push((
                            at,
                            format!(
                                "duplicate key `{whole}` (first given on line {})",
                                first.line
                            ),
                        ));
                    } else {
                        seen.insert(value.clone(), at);
                    }
                    *key = Some(value);
                    return;
                }
                if let Some(p) = self.next_value_path() {
                    self.map.insert(p, pos(&mark));
                }
            }
            Event::MappingStart(..) => {
                let p = self.next_value_path().unwrap_or_default();
                self.map.insert(p.clone(), pos(&mark));
                self.stack.push(Frame::Map {
                    path: p,
                    key: None,
                    seen: HashMap::new(),
                });
            }
            Event::SequenceStart(..) => {
                let p = self.next_value_path().unwrap_or_default();
                self.map.insert(p.clone(), pos(&mark));
                self.stack.push(Frame::Seq { path: p, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                let _ = self.next_value_path();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_point_at_values() {
        let src = "project:\n  name: sales\nworkspaces:\n  - name: a\n    lakehouses:\n      - name: BRONZE_X\n      - name: bad-name\n  - name: b\n";
        let l = Locations::of(src);
        assert_eq!(l.find("project.name"), Some(Pos { line: 2, col: 9 }));
        assert_eq!(l.find("workspaces[0].name"), Some(Pos { line: 4, col: 11 }));
        assert_eq!(
            l.find("workspaces[0].lakehouses[1].name"),
            Some(Pos { line: 7, col: 15 })
        );
        assert_eq!(l.find("workspaces[1].name"), Some(Pos { line: 8, col: 11 }));
        // Unknown leaf: nearest ancestor.
        assert_eq!(l.find("workspaces[1].description").map(|p| p.line), Some(8));
        // Keys where they are written.
        assert_eq!(
            l.key("workspaces[0].lakehouses"),
            Some(Pos { line: 5, col: 5 })
        );
        assert_eq!(l.key("workspaces[1].description"), None);
    }

    #[test]
    fn syntax_errors_and_duplicate_keys_are_found_where_they_are() {
        let dup = "project: {name: a, prefix: a}\nworkspaces:\n  - name: one\n\nworkspaces:\n  - name: two\n";
        let p = Locations::structural_problems(dup);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0.line, 5);
        assert!(
            p[0].1.contains("duplicate key `workspaces`") && p[0].1.contains("line 2"),
            "{p:?}"
        );
        let nested = "workspaces:\n  - name: one\n    name: two\n";
        let p = Locations::structural_problems(nested);
        assert_eq!(p[0].0.line, 3, "{p:?}");
        assert!(p[0].1.contains("workspaces[0].name"), "{p:?}");
        let syntax = "project: {name: a, prefix: a}\nnot: [valid\n";
        let p = Locations::structural_problems(syntax);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.starts_with("YAML syntax error"), "{p:?}");
        assert_eq!(
            p[0].0,
            Pos { line: 2, col: 12 },
            "at the end of the unclosed line"
        );
        assert!(Locations::structural_problems("project: {name: a, prefix: a}\n").is_empty());
    }
}
