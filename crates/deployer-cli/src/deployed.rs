//! The deployed record: what the last successful run of a workspace rendered from secret
//! references, kept in the state backend beside the journals (`deployed/KEY.json`, KEY the
//! workspace's lock key) so that a later run — a new process, after the reference or the
//! secret's value changed — still treats those deployed values as secret.
//!
//! A record lists, per resource address, the fields and definition parts whose value came
//! from secrets, each as a *template*: the rendered text with every secret value replaced by
//! its reference (`${secret:NAME}`, or `${fabrik-secret:NAME}` inside a definition). It never
//! holds a value. A later run matches each template against what it reads: the values that
//! fill its references are learned ([`crate::secrets::learn`]), so plans, reports and logs
//! show them as `(sensitive)` and journals keep the references, which a rollback resolves
//! again.
//!
//! A record also keeps, per published item, a digest of the definition parts the run rendered
//! for it (only when that rendering was final: no id of an item the run was about to create
//! in it). `--refresh=false` trusts it: an item whose parts render to the same digest is taken
//! as deployed as recorded, and its definition is not read.
//!
//! Format: JSON, `format` 1. Readers ignore fields they do not know, so a later version may
//! add fields without a new format number.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The version of the record's layout this fabrik writes and reads.
pub const FORMAT: u32 = 1;

/// One workspace's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// [`FORMAT`].
    pub format: u32,
    /// The workspace's display name.
    pub workspace: String,
    /// By resource address (`workspace/kind/key`).
    #[serde(default)]
    pub resources: BTreeMap<String, Resource>,
}

/// What one resource holds that was rendered from secret references.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Fields (`description`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Rendered>,
    /// Definition parts, by path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<String, Rendered>,
    /// The digest ([`digest_of`]) of the definition parts the run rendered, when final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The digest of rendered definition parts (BLAKE2s-256, hex): each part's path and bytes,
/// length-prefixed, in path order, so no two different sets of parts share a stream.
pub fn digest_of(parts: &[(String, Vec<u8>)]) -> String {
    use blake2::Digest as _;
    let mut sorted: Vec<&(String, Vec<u8>)> = parts.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = blake2::Blake2s256::new();
    for (path, bytes) in sorted {
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One rendered value: its template and the references in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    /// The references it was rendered from, in order of first appearance.
    pub references: Vec<String>,
    /// The value with each secret replaced by its reference.
    pub template: String,
}

impl Record {
    /// An empty record of `workspace`.
    pub fn new(workspace: &str) -> Self {
        Self {
            format: FORMAT,
            workspace: workspace.to_string(),
            resources: BTreeMap::new(),
        }
    }

    /// Reads a record; `what` names it in the error (a record of a newer format is one).
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, String> {
        let record: Self = serde_json::from_slice(bytes)
            .map_err(|e| format!("deployed record {what} cannot be read: {e}"))?;
        if record.format != FORMAT {
            return Err(format!(
                "deployed record {what} has format {}, this fabrik reads format {FORMAT}: \
                 upgrade fabrik",
                record.format
            ));
        }
        Ok(record)
    }

    /// The record as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The template of `field` of the resource at `address`.
    pub fn field(&self, address: &str, field: &str) -> Option<&Rendered> {
        self.resources.get(address)?.fields.get(field)
    }

    /// The digest of the parts the resource at `address` was rendered with.
    pub fn digest(&self, address: &str) -> Option<&str> {
        self.resources.get(address)?.digest.as_deref()
    }

    /// The template of part `path` of the resource at `address`.
    pub fn part(&self, address: &str, path: &str) -> Option<&Rendered> {
        self.resources.get(address)?.parts.get(path)
    }
}

/// Digests of the definitions an apply sent, by resource address (filled while it runs).
#[derive(Debug, Default)]
pub struct Sent(std::sync::Mutex<BTreeMap<String, String>>);

impl Sent {
    /// Records that the definition with `digest` was sent for the resource at `address`.
    pub fn insert(&self, address: String, digest: String) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(address, digest);
    }

    /// What was recorded.
    pub fn take(&self) -> BTreeMap<String, String> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The records a run planned with, by workspace display name (lower-cased, as Fabric
/// compares names).
pub type Previous = Arc<BTreeMap<String, Record>>;

tokio::task_local! {
    static PREVIOUS: (Previous, Refresh);
}

/// Whether a plan reads every deployed definition it compares (`--refresh`, the default) or
/// trusts the digests of the deployed record (`--refresh=false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Read every definition compared.
    Read,
    /// Read only those whose rendering differs from the record's digest.
    TrustRecord,
}

/// Runs `f` (a plan) with `records` visible to the kinds' reads ([`previous`]), refreshing
/// as `refresh` says ([`refresh`]).
pub async fn with_previous<F: Future>(records: Previous, refresh: Refresh, f: F) -> F::Output {
    PREVIOUS.scope((records, refresh), f).await
}

/// How the current plan refreshes ([`Refresh::Read`] outside [`with_previous`]).
pub fn refresh() -> Refresh {
    PREVIOUS.try_with(|(_, r)| *r).unwrap_or(Refresh::Read)
}

/// The record of `workspace` the current plan runs with, if any.
pub fn previous(workspace: &str) -> Option<Record> {
    PREVIOUS
        .try_with(|(r, _)| r.get(&workspace.to_lowercase()).cloned())
        .ok()
        .flatten()
}

/// The references (`{opening}NAME}`) in `text`, in order of first appearance.
pub fn references(text: &str, opening: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(opening) {
        let after = &rest[start + opening.len()..];
        let Some(end) = after.find('}') else { break };
        let reference = format!("{opening}{}}}", &after[..end]);
        if !out.contains(&reference) {
            out.push(reference);
        }
        rest = &after[end + 1..];
    }
    out
}

/// The values of the references (`{opening}NAME}`) of `template` that make it `text`, by
/// name; `None` when `text` is not the template filled in (it was changed since).
pub fn match_template(template: &str, opening: &str, text: &str) -> Option<Vec<(String, String)>> {
    let mut pattern = String::from("(?s)^");
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find(opening) {
        let after = &rest[start + opening.len()..];
        let Some(end) = after.find('}') else { break };
        pattern.push_str(&regex::escape(&rest[..start]));
        pattern.push_str("(.+?)");
        names.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    pattern.push_str(&regex::escape(rest));
    pattern.push('$');
    let re = regex::RegexBuilder::new(&pattern)
        .size_limit(64 << 20)
        .build()
        .ok()?;
    let caps = re.captures(text)?;
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let value = caps.get(i + 1)?.as_str().to_string();
        match out.iter().find(|(n, _)| *n == name) {
            // One name filled with two values: not what the template rendered.
            Some((_, v)) if *v != value => return None,
            Some(_) => {}
            None => out.push((name, value)),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_matched_against_what_is_deployed_gives_the_values_it_was_rendered_with() {
        let o = "${secret:";
        assert_eq!(
            match_template("owner ${secret:A} of ${secret:B}.", o, "owner v1 x of w2."),
            Some(vec![("A".into(), "v1 x".into()), ("B".into(), "w2".into())])
        );
        assert_eq!(
            match_template("a ${secret:A} b ${secret:A}", o, "a v b v"),
            Some(vec![("A".into(), "v".into())])
        );
        assert_eq!(
            match_template("a ${secret:A} b ${secret:A}", o, "a v b w"),
            None
        );
        assert_eq!(match_template("owner ${secret:A}", o, "someone else"), None);
        assert_eq!(
            match_template("x.*${secret:A}(", o, "x.*[v\n]("),
            Some(vec![("A".into(), "[v\n]".into())])
        );
        assert_eq!(
            references("${secret:A} ${secret:B} ${secret:A}", o),
            vec!["${secret:A}", "${secret:B}"]
        );
    }

    #[test]
    fn a_record_round_trips_and_a_newer_format_is_refused_by_name() {
        let mut r = Record::new("ws");
        r.resources
            .entry("ws/workspace/ws".into())
            .or_default()
            .fields
            .insert(
                "description".into(),
                Rendered {
                    references: vec!["${secret:A}".into()],
                    template: "owner ${secret:A}".into(),
                },
            );
        let back = Record::parse(&r.to_bytes(), "x").unwrap();
        assert_eq!(back, r);
        assert_eq!(
            back.field("ws/workspace/ws", "description")
                .unwrap()
                .template,
            "owner ${secret:A}"
        );
        // Fields a later version adds are ignored.
        let later = br#"{"format":1,"workspace":"ws","resources":{"a":{"digest":"x"}}}"#;
        assert!(Record::parse(later, "x").is_ok());
        let newer = br#"{"format":2,"workspace":"ws"}"#;
        assert!(
            Record::parse(newer, "deployed/k.json")
                .unwrap_err()
                .contains("deployed/k.json has format 2")
        );
    }
}
