//! A workspace's Spark settings (`spark_settings:` in `fabrik.yaml`). Only the settings the
//! configuration names are managed: the others stay as they are, and a rollback puts back the
//! previous values of the ones a run changed. The default pool is named like any pool, so
//! its change waits for that pool's create.

use async_trait::async_trait;
use fabrik_client::models::{
    AutomaticLog, HighConcurrency, InstancePool, SparkEnvironment, SparkJobSettings,
    SparkPoolsSettings, StarterPool, WorkspaceSparkSettings,
};
use fabrik_core::resource::{ResourceKind, ResourceRef, Undo, UndoError, UndoOutcome};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::spark_pool;
use crate::config::{DesiredWorkspace, Finding, Section};
use crate::engine::{
    ApplyCx, Diff, DiffCx, EngineError, Kind, Need, Outcome, Planned, ReadCx, UndoCx, ctx, settle,
    workspace_address,
};
use crate::plan::Action;

/// The kind's name in addresses and journals.
pub const NAME: &str = "spark_settings";
/// The workspace key of `fabrik.yaml` the kind owns.
pub const KEY: &str = "spark_settings";
/// The journal's and the metrics' kind (`spark_settings`).
const KIND: ResourceKind = ResourceKind::new("SparkSettings");
/// The built-in pool every workspace has.
const STARTER: &str = "Starter Pool";

/// The Spark settings a workspace manages; those left out are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsConfig {
    /// Automatic logging of Spark runs.
    #[serde(default)]
    pub automatic_log: Option<bool>,
    /// High concurrency for interactive notebook runs.
    #[serde(default)]
    pub high_concurrency_interactive: Option<bool>,
    /// High concurrency for notebooks run by pipelines.
    #[serde(default)]
    pub high_concurrency_pipeline: Option<bool>,
    /// Whether items may choose their own pool.
    #[serde(default)]
    pub customize_compute: Option<bool>,
    /// The pool items run on by default: `Starter Pool`, or a Spark pool of the workspace by
    /// name (one of `spark_pools`, created first).
    #[serde(default)]
    pub default_pool: Option<String>,
    /// The starter pool's most nodes (at least 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub starter_pool_max_nodes: Option<u32>,
    /// The starter pool's most executors (at least 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub starter_pool_max_executors: Option<u32>,
    /// The default environment, by name.
    #[serde(default)]
    pub environment: Option<String>,
    /// The Spark runtime version (`1.3`).
    #[serde(default)]
    pub runtime_version: Option<String>,
    /// Conservative job admission.
    #[serde(default)]
    pub conservative_job_admission: Option<bool>,
    /// Minutes before an idle session ends (at least 1).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub session_timeout_minutes: Option<u32>,
}

impl SettingsConfig {
    /// The update that sets exactly the named settings.
    pub fn update(&self) -> WorkspaceSparkSettings {
        let any = |xs: &[bool]| xs.iter().any(|x| *x);
        WorkspaceSparkSettings {
            automatic_log: self
                .automatic_log
                .map(|e| AutomaticLog { enabled: Some(e) }),
            high_concurrency: any(&[
                self.high_concurrency_interactive.is_some(),
                self.high_concurrency_pipeline.is_some(),
            ])
            .then_some(HighConcurrency {
                notebook_interactive_run_enabled: self.high_concurrency_interactive,
                notebook_pipeline_run_enabled: self.high_concurrency_pipeline,
            }),
            pool: any(&[
                self.customize_compute.is_some(),
                self.default_pool.is_some(),
                self.starter_pool_max_nodes.is_some(),
                self.starter_pool_max_executors.is_some(),
            ])
            .then(|| SparkPoolsSettings {
                customize_compute_enabled: self.customize_compute,
                default_pool: self.default_pool.as_ref().map(|n| InstancePool {
                    name: Some(n.clone()),
                    kind: Some("Workspace".into()),
                    id: None,
                }),
                starter_pool: any(&[
                    self.starter_pool_max_nodes.is_some(),
                    self.starter_pool_max_executors.is_some(),
                ])
                .then_some(StarterPool {
                    max_node_count: self.starter_pool_max_nodes,
                    max_executors: self.starter_pool_max_executors,
                }),
            }),
            environment: any(&[self.environment.is_some(), self.runtime_version.is_some()]).then(
                || SparkEnvironment {
                    name: self.environment.clone(),
                    runtime_version: self.runtime_version.clone(),
                },
            ),
            job: any(&[
                self.conservative_job_admission.is_some(),
                self.session_timeout_minutes.is_some(),
            ])
            .then_some(SparkJobSettings {
                conservative_job_admission_enabled: self.conservative_job_admission,
                session_timeout_in_minutes: self.session_timeout_minutes,
            }),
        }
    }
}

/// Checks beyond the type, each at the value it is about.
fn check(c: &SettingsConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    for (k, n) in [
        ("starter_pool_max_nodes", c.starter_pool_max_nodes),
        ("starter_pool_max_executors", c.starter_pool_max_executors),
        ("session_timeout_minutes", c.session_timeout_minutes),
    ] {
        if n == Some(0) {
            out.push(Finding::at(
                format!(".{k}"),
                format!("{k} must be at least 1"),
            ));
        }
    }
    if let Some(p) = c.default_pool.as_deref().filter(|p| p.trim().is_empty()) {
        out.push(Finding::at(
            ".default_pool",
            format!("default_pool '{p}' names no pool"),
        ));
    }
    out
}

/// Every set leaf of `v` as (JSON pointer, value); `defaultPool.id` is the service's to fill.
fn leaves(v: &Value, at: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if at == "/pool/defaultPool" && k == "id" {
                    continue;
                }
                leaves(x, format!("{at}/{k}"), out);
            }
        }
        Value::Null => {}
        other => out.push((at, other.clone())),
    }
}

/// The settings of `update` that `live` does not have already, as (pointer, live, wanted).
/// Names compare without case, as the service compares pool names.
fn differing(
    update: &WorkspaceSparkSettings,
    live: Option<&WorkspaceSparkSettings>,
) -> Vec<(String, Value, Value)> {
    let want = serde_json::to_value(update).unwrap_or(Value::Null);
    let have = live
        .and_then(|l| serde_json::to_value(l).ok())
        .unwrap_or(Value::Null);
    let mut out = Vec::new();
    let mut wanted = Vec::new();
    leaves(&want, String::new(), &mut wanted);
    for (at, w) in wanted {
        let h = have.pointer(&at).cloned().unwrap_or(Value::Null);
        let same = match (&h, &w) {
            (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        };
        if !same {
            out.push((at, h, w));
        }
    }
    out
}

/// The settings at `pointers` as `from` has them: what an update of those must put back.
fn project(from: &WorkspaceSparkSettings, pointers: &[String]) -> WorkspaceSparkSettings {
    let src = serde_json::to_value(from).unwrap_or(Value::Null);
    let mut out = serde_json::json!({});
    for p in pointers {
        let Some(v) = src.pointer(p) else { continue };
        let mut cur = &mut out;
        let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if i + 1 == parts.len() {
                cur[*part] = v.clone();
            } else {
                if !cur[*part].is_object() {
                    cur[*part] = serde_json::json!({});
                }
                cur = &mut cur[*part];
            }
        }
    }
    // The default pool is named by name and type together.
    if let Some(t) = src.pointer("/pool/defaultPool/type")
        && out.pointer("/pool/defaultPool/name").is_some()
    {
        out["pool"]["defaultPool"]["type"] = t.clone();
    }
    serde_json::from_value(out).unwrap_or_default()
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Workspace Spark settings.
#[derive(Debug, Clone, Copy)]
pub struct SparkSettingsKind;

/// Change the named settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSettings {
    /// The settings to send (only those that differ).
    pub update: WorkspaceSparkSettings,
}

/// How a settings change is undone (the kind's journaled payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum SettingsUndo {
    /// Put back the previous values of the settings a run changed.
    Restore {
        /// The workspace.
        workspace_id: String,
        /// The previous values, of those settings only.
        settings: WorkspaceSparkSettings,
    },
}

#[async_trait]
impl Kind for SparkSettingsKind {
    /// The workspace's settings; `None` when it does not exist yet.
    type Live = Option<WorkspaceSparkSettings>;
    type Op = UpdateSettings;

    fn name(&self) -> &'static str {
        NAME
    }

    fn resource_kind(&self) -> ResourceKind {
        KIND
    }

    fn section(&self) -> Option<Section> {
        Some(Section::new::<SettingsConfig>(KEY, check))
    }

    fn validate(&self, desired: &DesiredWorkspace) -> Vec<String> {
        match desired.section::<SettingsConfig>(KEY) {
            Ok(Some(c)) => check(&c)
                .into_iter()
                .map(|f| format!("workspace {}: {KEY}{}: {}", desired.name, f.path, f.message))
                .collect(),
            Ok(None) => vec![],
            Err(e) => vec![e],
        }
    }

    async fn read(&self, cx: &ReadCx<'_>) -> Result<Self::Live, EngineError> {
        let Some(id) = cx.workspace_id() else {
            return Ok(None);
        };
        if !cx.desired.sections.contains_key(KEY) {
            return Ok(None);
        }
        cx.client
            .get_spark_settings(id)
            .await
            .map(Some)
            .map_err(ctx(format!(
                "reading the Spark settings of {}",
                cx.desired.name
            )))
    }

    fn diff(
        &self,
        desired: &DesiredWorkspace,
        live: &Self::Live,
        _: &DiffCx,
    ) -> Diff<UpdateSettings> {
        let mut d = Diff::default();
        // An unreadable value never gets here: `validate`, which the engine runs before any
        // diff, refuses it. A workspace that names no setting leaves them all alone.
        let Ok(Some(config)) = desired.section::<SettingsConfig>(KEY) else {
            return d;
        };
        let update = config.update();
        let changed = differing(&update, live.as_ref());
        if changed.is_empty() {
            return d;
        }
        let ws = &desired.name;
        let mut needs = vec![Need::At(workspace_address(ws))];
        if let Some(pool) = config
            .default_pool
            .as_deref()
            .filter(|p| !p.eq_ignore_ascii_case(STARTER))
        {
            needs.push(Need::At(spark_pool::address(ws, pool)));
        }
        let pointers: Vec<String> = changed.iter().map(|(p, _, _)| p.clone()).collect();
        let detail = changed
            .iter()
            .map(|(p, h, w)| format!("{}: {} → {}", &p[1..].replace('/', "."), show(h), show(w)))
            .collect::<Vec<_>>()
            .join(", ");
        d.changes.push(Planned {
            action: Action::Update,
            key: "settings".into(),
            target: "spark settings".into(),
            detail: Some(detail),
            needs,
            op: UpdateSettings {
                update: project(&update, &pointers),
            },
        });
        d
    }

    async fn apply(&self, op: &UpdateSettings, cx: &ApplyCx<'_>) -> Result<Outcome, EngineError> {
        let ws = cx.workspace_id()?;
        // The values to put back are read now, so a new workspace's defaults are restored too.
        let current = cx
            .client
            .get_spark_settings(&ws)
            .await
            .map_err(cx.fabric(&format!("reading {}", cx.target)))?;
        let mut pointers = Vec::new();
        leaves(
            &serde_json::to_value(&op.update).unwrap_or(Value::Null),
            String::new(),
            &mut pointers,
        );
        let pointers: Vec<String> = pointers.into_iter().map(|(p, _)| p).collect();
        let undo = SettingsUndo::Restore {
            workspace_id: ws.clone(),
            settings: project(&current, &pointers),
        };
        cx.track(
            ResourceRef::in_workspace(KIND, &ws, &ws, Some("spark settings".into())),
            Undo::new(NAME, &undo),
        )
        .await?;
        cx.client
            .update_spark_settings(&ws, &op.update)
            .await
            .map_err(cx.fabric(&format!("updating {}", cx.target)))?;
        Ok(Outcome::Updated)
    }

    async fn undo(&self, undo: &Undo, cx: &UndoCx<'_>) -> Result<UndoOutcome, UndoError> {
        let SettingsUndo::Restore {
            workspace_id,
            settings,
        } = undo.payload_as()?;
        settle(
            cx.client
                .update_spark_settings(&workspace_id, &settings)
                .await
                .map(drop),
            &[],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::kinds::tests::desired;

    fn with(settings: Value) -> DesiredWorkspace {
        let mut d = desired();
        d.sections.insert(KEY.into(), settings);
        d
    }

    fn live() -> WorkspaceSparkSettings {
        serde_json::from_value(serde_json::json!({
            "automaticLog": {"enabled": true},
            "highConcurrency": {"notebookInteractiveRunEnabled": true, "notebookPipelineRunEnabled": false},
            "pool": {"customizeComputeEnabled": true,
                     "defaultPool": {"name": "Starter Pool", "type": "Workspace", "id": "0"},
                     "starterPool": {"maxNodeCount": 1, "maxExecutors": 1}},
            "environment": {"runtimeVersion": "1.3"},
            "job": {"conservativeJobAdmissionEnabled": false, "sessionTimeoutInMinutes": 20},
        }))
        .unwrap()
    }

    #[test]
    fn only_the_named_settings_that_differ_are_sent() {
        let d = with(serde_json::json!({"automatic_log": true, "session_timeout_minutes": 45}));
        let c = SparkSettingsKind
            .diff(&d, &Some(live()), &DiffCx::default())
            .changes;
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].detail.as_deref(),
            Some("job.sessionTimeoutInMinutes: 20 → 45")
        );
        let sent = serde_json::to_value(&c[0].op.update).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"job": {"sessionTimeoutInMinutes": 45}})
        );
        let same = with(serde_json::json!({"automatic_log": true, "default_pool": "starter pool"}));
        assert!(
            SparkSettingsKind
                .diff(&same, &Some(live()), &DiffCx::default())
                .changes
                .is_empty()
        );
        // Nothing named, nothing managed.
        assert!(
            SparkSettingsKind
                .diff(&desired(), &Some(live()), &DiffCx::default())
                .changes
                .is_empty()
        );
    }

    #[test]
    fn a_custom_default_pool_waits_for_that_pool() {
        let d = with(serde_json::json!({"default_pool": "gold-builds"}));
        let c = SparkSettingsKind
            .diff(&d, &None, &DiffCx::default())
            .changes;
        assert_eq!(c.len(), 1);
        assert!(
            c[0].needs
                .contains(&Need::At(spark_pool::address("p-a-dev", "gold-builds")))
        );
        let sent = serde_json::to_value(&c[0].op.update).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"pool": {"defaultPool": {"name": "gold-builds", "type": "Workspace"}}})
        );
    }

    #[test]
    fn the_undo_holds_the_previous_values_of_the_changed_settings_only() {
        let pointers = vec![
            "/job/sessionTimeoutInMinutes".to_string(),
            "/pool/defaultPool/name".to_string(),
        ];
        let before = serde_json::to_value(project(&live(), &pointers)).unwrap();
        assert_eq!(
            before,
            serde_json::json!({"job": {"sessionTimeoutInMinutes": 20},
                               "pool": {"defaultPool": {"name": "Starter Pool", "type": "Workspace"}}})
        );
    }

    #[test]
    fn bad_settings_are_found_at_their_values() {
        let bad = SettingsConfig {
            session_timeout_minutes: Some(0),
            default_pool: Some(" ".into()),
            ..Default::default()
        };
        let paths: Vec<String> = check(&bad).into_iter().map(|f| f.path).collect();
        assert_eq!(paths, vec![".session_timeout_minutes", ".default_pool"]);
        let d = with(serde_json::json!({"automatic_logs": true}));
        assert!(SparkSettingsKind.validate(&d)[0].contains("unknown field `automatic_logs`"));
    }
}
