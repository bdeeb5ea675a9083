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
}

impl Locations {
    /// Reads `src`; a document that does not parse yields no locations (serde reports it).
    pub fn of(src: &str) -> Self {
        let mut rx = Receiver::default();
        let mut parser = Parser::new_from_str(src);
        if parser.load(&mut rx, false).is_err() {
            return Self::default();
        }
        Self { map: rx.map }
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
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Debug, Default)]
struct Receiver {
    stack: Vec<Frame>,
    map: HashMap<String, Pos>,
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
            Some(Frame::Map { path, key }) => key.take().map(|k| {
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
                if let Some(Frame::Map { key, .. }) = self.stack.last_mut()
                    && key.is_none()
                {
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
                self.stack.push(Frame::Map { path: p, key: None });
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
    }
}
