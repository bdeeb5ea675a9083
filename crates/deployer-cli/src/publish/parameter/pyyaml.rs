//! YAML written the way PyYAML's `yaml.dump(..., default_flow_style=False)` writes it, since
//! fabric-cicd re-dumps `Sparkcompute.yml` and YAML parts that `key_value_replace` touched.
//! Covers block mappings and lists of scalars; PyYAML's folding of plain strings longer than
//! 80 columns is not reproduced.

use super::json::Ordered;
use super::yaml;

/// Options of the `yaml.dump` call being reproduced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dump {
    /// `sort_keys` (PyYAML's default is true).
    pub(crate) sort_keys: bool,
    /// `allow_unicode`: when false, non-ASCII text is written escaped in double quotes.
    pub(crate) allow_unicode: bool,
}

/// The document as PyYAML writes it.
pub(crate) fn dump(doc: &Ordered, opts: Dump) -> String {
    let mut out = String::new();
    match doc {
        Ordered::Object(o) if !o.is_empty() => map(o, 0, opts, &mut out),
        Ordered::Array(a) if !a.is_empty() => seq(a, 0, opts, &mut out),
        // A lone scalar or empty collection: PyYAML ends it with the document end marker.
        other => {
            out.push_str(&scalar(other, 2, opts));
            out.push_str("\n...\n");
        }
    }
    out
}

fn entries(o: &[(String, Ordered)], opts: Dump) -> Vec<&(String, Ordered)> {
    let mut v: Vec<_> = o.iter().collect();
    if opts.sort_keys {
        v.sort_by(|a, b| a.0.cmp(&b.0));
    }
    v
}

fn map(o: &[(String, Ordered)], indent: usize, opts: Dump, out: &mut String) {
    for (i, (k, v)) in entries(o, opts).into_iter().enumerate() {
        // The first key of a mapping inside a list item sits after its "- ".
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&string(k, indent + 2, opts));
        out.push(':');
        value(v, indent, opts, out);
    }
}

/// A mapping value after `key:`; nested lists stay at the key's indent, as PyYAML writes them.
fn value(v: &Ordered, indent: usize, opts: Dump, out: &mut String) {
    match v {
        Ordered::Object(o) if !o.is_empty() => {
            out.push('\n');
            map(o, indent + 2, opts, out);
        }
        Ordered::Array(a) if !a.is_empty() => {
            out.push('\n');
            seq(a, indent, opts, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, indent + 2, opts));
            out.push('\n');
        }
    }
}

fn seq(a: &[Ordered], indent: usize, opts: Dump, out: &mut String) {
    for v in a {
        if !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        match v {
            Ordered::Object(o) if !o.is_empty() => map(o, indent + 2, opts, out),
            Ordered::Array(inner) if !inner.is_empty() => seq(inner, indent + 2, opts, out),
            other => {
                out.push_str(&scalar(other, indent + 2, opts));
                out.push('\n');
            }
        }
    }
}

/// A scalar; `indent` is where continuation lines of a multi-line string start.
fn scalar(v: &Ordered, indent: usize, opts: Dump) -> String {
    match v {
        Ordered::Null => "null".into(),
        Ordered::Bool(b) => b.to_string(),
        Ordered::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Ordered::Number(n) => float(n.as_f64().unwrap_or_default()),
        Ordered::String(s) => string(s, indent, opts),
        Ordered::Array(_) => "[]".into(),
        Ordered::Object(_) => "{}".into(),
    }
}

/// PyYAML's `represent_float`: `repr`, lower-cased, with `.0` before a bare exponent.
fn float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let n = serde_json::Number::from_f64(f).map(|n| super::json::Ordered::Number(n).python_dumps());
    let s = n.unwrap_or_default().to_lowercase();
    match s.split_once('e') {
        Some((m, e)) if !m.contains('.') => format!("{m}.0e{e}"),
        _ => s,
    }
}

/// A string plain when PyYAML would write it plain, else single-quoted (line breaks doubled
/// and continued at `indent`), or double-quoted when it has tabs or control characters.
fn string(s: &str, indent: usize, opts: Dump) -> String {
    let special = s.chars().any(|c| {
        (c.is_control() && c != '\n') || (!opts.allow_unicode && !c.is_ascii()) || c == '\u{feff}'
    });
    if special {
        return double_quoted(s);
    }
    let first = s.chars().next();
    let needs_quotes = s.contains('\n')
        || s.is_empty()
        || yaml::is_implicit_non_string(s)
        || s.starts_with(' ')
        || s.ends_with(' ')
        || first.is_some_and(|c| "#,[]{}&*!|>'\"%@`".contains(c))
        || (first.is_some_and(|c| "-?:".contains(c))
            && s[1..].chars().next().is_none_or(|c| c == ' '))
        || s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':');
    if !needs_quotes {
        return s.to_string();
    }
    let mut out = String::from("'");
    let mut breaks = 0;
    for c in s.chars() {
        if c == '\n' {
            breaks += 1;
            continue;
        }
        if breaks > 0 {
            out.push_str(&"\n".repeat(breaks + 1));
            out.push_str(&" ".repeat(indent));
            breaks = 0;
        }
        if c == '\'' {
            out.push_str("''");
        } else {
            out.push(c);
        }
    }
    if breaks > 0 {
        out.push_str(&"\n".repeat(breaks + 1));
        out.push_str(&" ".repeat(indent));
    }
    out.push('\'');
    out
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\0' => "\\0",
            '\u{7}' => "\\a",
            '\u{8}' => "\\b",
            '\t' => "\\t",
            '\n' => "\\n",
            '\u{b}' => "\\v",
            '\u{c}' => "\\f",
            '\r' => "\\r",
            '\u{1b}' => "\\e",
            _ => "",
        };
        match c {
            _ if !esc.is_empty() => out.push_str(esc),
            c if c.is_ascii() && !c.is_control() => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}
