//! The seed's principals file: `principal_id,role,description,type` per line, `#` comments.
//! Fields are CSV (read with the `csv` crate), so a description holding a comma can be quoted
//! (`"Data team, EU"`); the seed's unquoted lines read as before.
//!
//! The seed warned and silently defaulted a bad role to Viewer and a bad type to User. fabrik
//! reports every bad line as an error with file:line; `lenient` restores the seed's behaviour,
//! turning those errors into warnings with the seed's defaults.

use std::path::Path;

use super::Problem;

/// Roles a workspace assignment can have.
pub const ROLES: [&str; 4] = ["Admin", "Member", "Contributor", "Viewer"];
/// Principal types a workspace assignment can name.
pub const TYPES: [&str; 4] = [
    "User",
    "Group",
    "ServicePrincipal",
    "ServicePrincipalProfile",
];

/// One principal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalLine {
    /// Object id.
    pub id: String,
    /// Role, canonical spelling.
    pub role: String,
    /// Description.
    pub description: String,
    /// Principal type, canonical spelling.
    pub kind: String,
    /// 1-based line in the file.
    pub line: usize,
}

/// Canonical spelling of `value` among `allowed`, matched case-insensitively.
pub fn canonical(value: &str, allowed: &[&'static str]) -> Option<&'static str> {
    allowed
        .iter()
        .copied()
        .find(|a| a.eq_ignore_ascii_case(value.trim()))
}

/// Whether `id` looks like an Entra object id (a GUID).
pub fn is_guid(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The fields of one line, trimmed; quoted fields may hold commas and doubled quotes.
fn split_fields(line: &str) -> Result<csv::StringRecord, csv::Error> {
    // The seed allowed spaces around fields (`id, Admin, Team`); CSV sees a quote only at a
    // field's first byte, so spaces after an unquoted comma go before parsing.
    let mut compact = String::with_capacity(line.len());
    let (mut quoted, mut field_start) = (false, true);
    for c in line.chars() {
        if field_start && !quoted && c.is_whitespace() {
            continue;
        }
        field_start = !quoted && c == ',';
        if c == '"' {
            quoted = !quoted;
        }
        compact.push(c);
    }
    let line = compact;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes());
    let mut record = csv::StringRecord::new();
    reader.read_record(&mut record)?;
    Ok(record)
}

/// The 1-based byte column where field `n` (0-based) of `raw` starts, commas inside quotes
/// skipped; past the end when the line has fewer fields.
fn field_column(raw: &str, n: usize) -> usize {
    let mut quoted = false;
    let mut seen = 0;
    for (i, b) in raw.bytes().enumerate() {
        if seen == n {
            return i + 1;
        }
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => seen += 1,
            _ => {}
        }
    }
    raw.len() + 1
}

/// Parses a principals file's text. Returns the principals, and the problems (errors, or
/// warnings when `lenient`) each naming `path:line`.
pub fn parse(path: &Path, text: &str, lenient: bool) -> (Vec<PrincipalLine>, Vec<Problem>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let cx = LineCx {
            path,
            text,
            raw,
            line: i + 1,
            lenient,
        };
        if let Some(p) = cx.parse(&mut problems) {
            out.push(p);
        }
    }
    (out, problems)
}

/// One line of a principals file, and where its problems point.
struct LineCx<'a> {
    path: &'a Path,
    text: &'a str,
    raw: &'a str,
    /// 1-based.
    line: usize,
    lenient: bool,
}

impl LineCx<'_> {
    /// A problem at `col`: an error, or a warning when lenient.
    fn problem(&self, col: usize, msg: String, hint: Option<String>) -> Problem {
        Problem::at_line(
            self.path,
            self.text,
            self.line,
            col,
            msg,
            hint,
            self.lenient,
        )
    }

    /// A problem that lenient parsing does not excuse: the line cannot be used at all.
    fn error(&self, col: usize, msg: String, hint: Option<String>) -> Problem {
        Problem::at_line(self.path, self.text, self.line, col, msg, hint, false)
    }

    /// The line's principal; `None` for a blank or comment line, or one with an error.
    fn parse(&self, problems: &mut Vec<Problem>) -> Option<PrincipalLine> {
        let trimmed = self.raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return None;
        }
        let record = match split_fields(trimmed) {
            Ok(r) => r,
            Err(e) => {
                problems.push(self.error(
                    1,
                    format!("cannot read the line as CSV: {e}"),
                    Some(
                        "quote a field that holds a comma or a quote (\"a, b\"; \"\" for a quote)"
                            .into(),
                    ),
                ));
                return None;
            }
        };
        let fields: Vec<&str> = record.iter().collect();
        if fields.len() < 2 {
            problems.push(self.problem(
                1,
                format!("expected principal_id,role[,description[,type]] but found '{trimmed}'"),
                None,
            ));
            return None;
        }
        let id = fields[0];
        if !is_guid(id) {
            problems.push(self.error(
                1,
                format!("principal id '{id}' is not an Entra object id (GUID)"),
                Some("use the object id from Entra ID, not an email or display name".into()),
            ));
            return None;
        }
        if fields.len() > 4 {
            problems.push(self.problem(
                field_column(self.raw, 4),
                format!(
                    "expected at most 4 fields (principal_id,role,description,type) but found {}",
                    fields.len()
                ),
                Some("quote a description that holds a comma: \"Data team, EU\"".into()),
            ));
            if !self.lenient {
                return None;
            }
        }
        let role = self.one_of(1, fields[1], &ROLES, "role", "Viewer", problems)?;
        let description = fields.get(2).copied().unwrap_or("").to_string();
        let kind = match fields.get(3).copied().filter(|t| !t.is_empty()) {
            None => "User".to_string(),
            Some(t) => self.one_of(3, t, &TYPES, "principal type", "User", problems)?,
        };
        Some(PrincipalLine {
            id: id.to_string(),
            role,
            description,
            kind,
            line: self.line,
        })
    }

    /// Field `n`, `value`, in its canonical spelling among `allowed`. Otherwise a problem and,
    /// when lenient, `fallback` as the seed defaulted it.
    fn one_of(
        &self,
        n: usize,
        value: &str,
        allowed: &[&'static str],
        what: &str,
        fallback: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<String> {
        if let Some(c) = canonical(value, allowed) {
            return Some(c.to_string());
        }
        let seed = if self.lenient {
            format!("; using {fallback} as the seed did")
        } else {
            String::new()
        };
        problems.push(self.problem(
            field_column(self.raw, n),
            format!("unknown {what} '{value}'"),
            Some(format!("one of {}{seed}", allowed.join(", "))),
        ));
        self.lenient.then(|| fallback.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "# Format: principal_id,role,description,type\n\n9117cbfa-f0a7-43b7-846f-96ba66a3c1c0,Admin,Workspace administrator,User\nb2c3d4e5-0000-4000-8000-000000000001, viewer ,Engineering Team,Group\nc3d4e5f6-0000-4000-8000-000000000002,Member\n";

    #[test]
    fn seed_format_parses_with_defaults() {
        let (p, problems) = parse(Path::new("p.txt"), GOOD, false);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].role, "Viewer");
        assert_eq!(p[1].kind, "Group");
        assert_eq!(p[2].kind, "User");
        assert_eq!(p[2].description, "");
        assert_eq!(p[0].line, 3);
    }

    #[test]
    fn a_quoted_description_may_hold_commas_and_quotes() {
        let text = "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0,Admin,\"Data team, EU\",Group\n\
                    b2c3d4e5-0000-4000-8000-000000000001, Viewer , \"Says \"\"hi\"\", twice\" ,ServicePrincipal\n";
        let (p, problems) = parse(Path::new("p.txt"), text, false);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(p[0].description, "Data team, EU");
        assert_eq!(p[0].kind, "Group");
        assert_eq!(p[1].role, "Viewer");
        assert_eq!(p[1].description, "Says \"hi\", twice");
        assert_eq!(p[1].kind, "ServicePrincipal");
    }

    #[test]
    fn an_unquoted_comma_in_the_description_is_reported_not_shifted_into_the_type() {
        let text = "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0,Admin,Data team, EU,Group\n";
        let (p, problems) = parse(Path::new("p.txt"), text, false);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(problems.len(), 1, "{problems:?}");
        let msg = problems[0].headline();
        assert!(
            msg.starts_with("p.txt:1:58: expected at most 4 fields"),
            "{msg}"
        );
        assert!(problems[0].is_error());
        // The column of a field after a quoted comma counts the quoted comma as text.
        assert_eq!(field_column("a,\"b,c\",Robot", 2), 9);
    }

    #[test]
    fn bad_lines_are_errors_with_file_and_line_or_warnings_when_lenient() {
        let text = "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0,Owner,x,User\nalice@contoso.com,Admin\n9117cbfa-f0a7-43b7-846f-96ba66a3c1c1,Admin,x,Robot\njustonefield\n";
        let (p, problems) = parse(Path::new("dev.txt"), text, false);
        assert!(p.is_empty());
        let msgs: Vec<String> = problems.iter().map(|p| p.headline()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert!(
            msgs[0].starts_with("dev.txt:1:38: unknown role 'Owner'"),
            "{msgs:?}"
        );
        assert!(msgs[1].starts_with("dev.txt:2:1: principal id 'alice@contoso.com' is not"));
        assert!(
            msgs[2].starts_with("dev.txt:3:") && msgs[2].contains("unknown principal type 'Robot'")
        );
        assert!(msgs[3].starts_with("dev.txt:4:1:"));
        assert!(problems.iter().all(|p| p.is_error()));

        let (p, problems) = parse(Path::new("dev.txt"), text, true);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].role, "Viewer");
        assert_eq!(p[1].kind, "User");
        // Roles and types become warnings; a non-GUID id stays an error even when lenient.
        assert_eq!(problems.iter().filter(|p| p.is_error()).count(), 1);
    }
}
