//! Parts of a workspace's configuration that a resource kind owns: a top-level key of a
//! workspace in `fabrik.yaml` (`spark_pools:`), its type, the checks beyond its type, and its
//! JSON Schema fragment. Configuration knows no such key by name: the kinds hand theirs in
//! ([`LoadOptions::sections`](super::LoadOptions::sections)), so a kind's part of the file
//! lives in the kind's own file. A key no section owns is still an error naming it.

use std::fmt;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A problem a section's checks found in its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where, below the section's key, in the positions' path syntax: `""` for the value
    /// itself, `[0].node_size` for a field of its first element.
    pub path: String,
    /// What is wrong, naming the value.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Finding {
    /// A problem at `path` (see [`Finding::path`]).
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// With a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

type Check = Arc<dyn Fn(&Value) -> Vec<Finding> + Send + Sync>;

/// A top-level key of a workspace and the type its value must have.
#[derive(Clone)]
pub struct Section {
    key: &'static str,
    schema: fn(&mut SchemaGenerator) -> Schema,
    check: Check,
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Section").field("key", &self.key).finish()
    }
}

impl Section {
    /// The key `key`, whose value is a `T` (its JSON Schema goes into the file's schema) and
    /// passes `validate`.
    pub fn new<T: DeserializeOwned + JsonSchema + 'static>(
        key: &'static str,
        validate: fn(&T) -> Vec<Finding>,
    ) -> Self {
        Self {
            key,
            schema: |g| g.subschema_for::<T>(),
            check: Arc::new(move |v| match read::<T>(v) {
                Ok(t) => validate(&t),
                Err(f) => vec![f],
            }),
        }
    }

    /// The key.
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// Every problem of `value`: a type error at the value it is about, else `validate`'s.
    pub fn check(&self, value: &Value) -> Vec<Finding> {
        (self.check)(value)
    }

    /// The value's JSON Schema.
    pub fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        (self.schema)(generator)
    }
}

/// `value` as a `T`, or the type error at the value it is about.
pub fn read<T: DeserializeOwned>(value: &Value) -> Result<T, Finding> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut path = String::new();
        for s in e.path() {
            match s {
                serde_path_to_error::Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                serde_path_to_error::Segment::Map { key } => {
                    path.push('.');
                    path.push_str(key);
                }
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        Finding::at(path, e.into_inner().to_string())
    })
}
