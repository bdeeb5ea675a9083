//! Reading what a publish compares with: the deployed items, their definitions and value sets.

use std::collections::BTreeMap;

use base64::Engine as _;
use fabrik_client::FabricError;
use fabrik_client::models::{BulkExportRequest, BulkExportResponse};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::{
    Address, DEFINITION_READS_PER_SLOT, ItemType, LiveItem, NAME, PublishKind, RepoItem, key,
};
use crate::engine::{EngineError, ReadCx, ctx};

impl PublishKind {
    /// The workspace's items of the types fabric-cicd publishes, each made known to the run
    /// by `Type:Name` (`folders`: folder id → path).
    pub(super) async fn live_items(
        &self,
        cx: &ReadCx<'_>,
        folders: &BTreeMap<String, String>,
    ) -> Result<Vec<LiveItem>, EngineError> {
        let mut items = Vec::new();
        for it in cx.items().await? {
            let Ok(t) = it.kind.as_str().parse::<ItemType>() else {
                continue;
            };
            cx.know(
                Address::new(&cx.desired.name, NAME, key(t, &it.display_name)),
                it.id.clone(),
            );
            items.push(LiveItem {
                id: it.id.clone(),
                item_type: t,
                name: it.display_name.clone(),
                description: it.description.clone(),
                folder: it
                    .folder_id
                    .as_ref()
                    .and_then(|f| Some((folders.get(f)?.clone(), f.clone()))),
                parts: None,
                value_set: None,
            });
        }
        Ok(items)
    }

    /// The definitions of the deployed items the repository publishes with one (and of orphans
    /// a new item may be the rename of), by bulk export where the service allows it, else one
    /// by one — all but the `trusted` ones (by index into `items`: `--refresh=false` took their
    /// parts from the deployed record); and each VariableLibrary's active value set. How they
    /// were read is made known to the plan ([`DefinitionReads`]).
    pub(super) async fn read_definitions(
        &self,
        cx: &ReadCx<'_>,
        ws: &str,
        items: &mut [LiveItem],
        trusted: &std::collections::BTreeSet<usize>,
    ) -> Result<(), EngineError> {
        let mut wanted = self.definitions_wanted(items);
        wanted.retain(|(i, _)| !trusted.contains(i));
        let mut reads = DefinitionReads {
            trusted: trusted.len(),
            refresh: !cx.trusts_record(),
            ..DefinitionReads::default()
        };
        let libraries = items.iter().any(|l| {
            l.item_type == ItemType::VariableLibrary
                && self
                    .repo
                    .find(l.item_type, &l.name)
                    .is_some_and(|r| r.selected)
        });
        // The value sets are listed while the definitions' operations run.
        let value_sets = async {
            if !libraries {
                return Ok(None);
            }
            // One list gives every library's active value set, however many there are.
            cx.client
                .active_value_sets(ws)
                .await
                .map(Some)
                .map_err(ctx("listing the workspace's variable libraries"))
        };
        let (read, sets) =
            futures::join!(read_parts(cx, ws, &*items, wanted, &mut reads), value_sets);
        for (i, parts) in read? {
            items[i].parts = Some(parts);
        }
        if reads.bulk_exports > 0 || !reads.one_by_one.is_empty() || !reads.refresh {
            reads.report(cx);
        }
        if let Some(mut sets) = sets? {
            for l in items.iter_mut() {
                if l.item_type == ItemType::VariableLibrary {
                    l.value_set = sets.remove(&l.id).flatten();
                }
            }
        }
        Ok(())
    }

    /// The deployed items whose definitions a publish compares (by index into `items`), each
    /// with the repository item it is compared with: the item of its type and name, or for an
    /// orphan, a new item of its type it may be the rename of.
    fn definitions_wanted(&self, items: &[LiveItem]) -> Wanted<'_> {
        items
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let r = match self.repo.find(l.item_type, &l.name) {
                    Some(r) => Some(r).filter(|r| r.selected)?,
                    // An orphan may be an item the repository renamed: read it when a new item
                    // of its type could be that item.
                    None => self.repo.selected().find(|r| {
                        r.item_type == l.item_type
                            && !items
                                .iter()
                                .any(|o| o.item_type == r.item_type && o.name == r.display_name)
                    })?,
                };
                (!r.item_type.is_shell()).then_some((i, r))
            })
            .collect()
    }
}

/// The parts of the `wanted` items (indexes into `items`): by bulk export, and one by one
/// where it cannot.
async fn read_parts(
    cx: &ReadCx<'_>,
    ws: &str,
    items: &[LiveItem],
    wanted: Wanted<'_>,
    reads: &mut DefinitionReads,
) -> Result<Vec<(usize, super::Parts)>, EngineError> {
    let (mut out, one_by_one) = bulk_read(cx, ws, items, wanted, reads).await?;
    let read: Vec<(usize, super::Parts)> = futures::stream::iter(one_by_one)
        .map(|(i, format)| {
            let l = &items[i];
            async move {
                let d = cx
                    .definition(l.item_type.as_str(), &l.name, &l.id, format.as_deref())
                    .await?;
                let parts = decode_parts(l.item_type, &l.name, d.parts)?;
                Ok::<_, EngineError>((i, parts))
            }
        })
        // Most of a definition read is the wait for its operation (Retry-After).
        .buffer_unordered(cx.concurrency.saturating_mul(DEFINITION_READS_PER_SLOT))
        .try_collect()
        .await?;
    out.extend(read);
    Ok(out)
}

/// How a publish read the deployed definitions it compares, for the plan: by bulk export, and
/// which items one by one (`getDefinition`) and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionReads {
    /// Bulk export requests sent (refused ones included).
    pub bulk_exports: usize,
    /// Items whose definitions a bulk export gave.
    pub exported: usize,
    /// Items read one by one.
    pub one_by_one: Vec<OneByOne>,
    /// Whether every definition compared was read (false with `--refresh=false`).
    #[serde(default = "yes")]
    pub refresh: bool,
    /// With `--refresh=false`: items not read, their rendering being the one the deployed
    /// record's digest says was deployed.
    #[serde(default)]
    pub trusted: usize,
}

fn yes() -> bool {
    true
}

/// An item whose definition was read with its own `getDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneByOne {
    /// `Type:Name`.
    pub item: String,
    /// Why not by bulk export.
    pub why: String,
}

/// The key the reads are reported under (see [`ReadCx::report_read`]).
const READS_KEY: &str = "definitionReads";

impl DefinitionReads {
    /// Reports the reads to the plan, where its text and JSON find them
    /// ([`of_plan`](Self::of_plan)).
    fn report(&self, cx: &ReadCx<'_>) {
        // A struct of strings and numbers always serializes.
        cx.report_read(READS_KEY, serde_json::to_value(self).unwrap_or_default());
    }

    /// The reads a publish reported while planning `w`, if it read any definition.
    pub fn of_plan(w: &crate::plan::WorkspacePlan) -> Option<Self> {
        w.reads
            .get(READS_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// One line for people: `1 bulk export (12 items)`, then the items read one by one,
    /// grouped by why.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{} bulk export(s) ({} item(s))",
            self.bulk_exports, self.exported
        );
        if !self.refresh {
            out.push_str(&format!(
                "; not refreshed (--refresh=false): {} item(s) not read, unchanged since the \
                 deployed record of the last successful run",
                self.trusted
            ));
        }
        let mut whys: Vec<&str> = self.one_by_one.iter().map(|o| o.why.as_str()).collect();
        whys.sort_unstable();
        whys.dedup();
        for why in whys {
            let names: Vec<&str> = self
                .one_by_one
                .iter()
                .filter(|o| o.why == why)
                .map(|o| o.item.as_str())
                .collect();
            out.push_str(&format!(
                "; {} read one by one, {why}: {}",
                names.len(),
                names.join(", ")
            ));
        }
        out
    }
}

/// Whether the service refused a bulk export in a way per-item reads may not be refused: a
/// 4xx other than 429 (the API not enabled, a type it does not export, …). Throttling, 5xx
/// and transport failures are errors as for any read.
fn refused(e: &FabricError) -> bool {
    e.status()
        .is_some_and(|s| (400..500).contains(&s) && s != 429)
}

/// Reads the definitions of `wanted` by bulk export: the spec sets no per-request item limit
/// (unlike `bulkMove`'s 50), so one request covers them all. Returns the decoded parts of the
/// exported items, and the items to read one by one with their `format` (each recorded in
/// `reads` with why): all of them when the service refuses the export; the items of a type it
/// does not export (the export is asked again without them); items the result leaves out; and
/// items the repository sends with a `format` whose exported parts are not the repository's
/// (bulk export has no format choice, so they are read in theirs).
async fn bulk_read(
    cx: &ReadCx<'_>,
    ws: &str,
    items: &[LiveItem],
    wanted: Wanted<'_>,
    reads: &mut DefinitionReads,
) -> Result<(Vec<(usize, super::Parts)>, Vec<(usize, Option<String>)>), EngineError> {
    let mut pending = wanted;
    let mut one_by_one = Vec::new();
    let by_one =
        |i: usize, r: &RepoItem, why: String, reads: &mut DefinitionReads, to: &mut Vec<_>| {
            let l = &items[i];
            reads.one_by_one.push(OneByOne {
                item: key(l.item_type, &l.name),
                why,
            });
            to.push((i, r.definition_format().map(str::to_string)));
        };
    while !pending.is_empty() {
        let request =
            BulkExportRequest::selective(pending.iter().map(|(i, _)| items[*i].id.as_str()));
        reads.bulk_exports += 1;
        let e = match cx.client.bulk_export_definitions(ws, &request).await {
            Ok(result) => {
                let mut exported = Vec::new();
                for (i, r) in pending {
                    match exported_parts(&items[i], r, &result)? {
                        Ok(parts) => exported.push((i, parts)),
                        Err(why) => by_one(i, r, why, reads, &mut one_by_one),
                    }
                }
                reads.exported = exported.len();
                return Ok((exported, one_by_one));
            }
            Err(e) if refused(&e) => e,
            Err(e) => {
                return Err(ctx(format!(
                    "reading the deployed definitions in {} by bulk export",
                    cx.desired.name
                ))(e));
            }
        };
        let (out, rest, why) = after_refusal(&e, items, pending);
        tracing::warn!(
            workspace = %cx.desired.name,
            items = out.len(),
            "reading deployed definitions one by one: {why}"
        );
        for (i, r) in out {
            by_one(i, r, why.clone(), reads, &mut one_by_one);
        }
        pending = rest;
    }
    Ok((Vec::new(), one_by_one))
}

/// Items of a refused bulk export of `pending`: those to read one by one, those to ask again,
/// and why. A type the service does not export refuses the whole request naming the item
/// (`OperationNotSupportedForItem`): that type is read one by one and the rest asked again, so
/// each retry drops a type. Any other refusal: every item one by one.
fn after_refusal<'r>(
    e: &FabricError,
    items: &[LiveItem],
    pending: Wanted<'r>,
) -> (Wanted<'r>, Wanted<'r>, String) {
    let unsupported = e
        .is_not_supported()
        .then(|| e.api()?.related_resource.as_ref())
        .flatten()
        .and_then(|rel| {
            pending
                .iter()
                .find(|(i, _)| items[*i].id == rel.resource_id)
        })
        .map(|(i, _)| items[*i].item_type);
    match unsupported {
        Some(t) => {
            let (out, rest) = pending
                .into_iter()
                .partition(|(i, _)| items[*i].item_type == t);
            let why = format!("bulk export does not export {} items ({e})", t.as_str());
            (out, rest, why)
        }
        None => (pending, Vec::new(), format!("bulk export refused ({e})")),
    }
}

/// Deployed items (by index) with the repository item each is compared with.
type Wanted<'r> = Vec<(usize, &'r RepoItem)>;

/// An item's exported parts, or why it is read one by one instead.
type Exported = Result<super::Parts, String>;

/// The decoded parts the bulk export `result` gave for `l` (compared with `r`), or why `l` is
/// to be read one by one. A part that is not base64 is an error, as from `getDefinition`.
fn exported_parts(
    l: &LiveItem,
    r: &RepoItem,
    result: &BulkExportResponse,
) -> Result<Exported, EngineError> {
    if !result.item_definitions_index.iter().any(|e| e.id == l.id) {
        return Ok(Err("the bulk export's result left it out".into()));
    }
    let parts = decode_parts(l.item_type, &l.name, result.parts_of(&l.id))?;
    if let Some(format) = r.definition_format() {
        let paths = |ps: Vec<&str>| -> Vec<String> {
            let mut v: Vec<String> = ps
                .into_iter()
                .filter(|p| *p != ".platform")
                .map(str::to_string)
                .collect();
            v.sort();
            v
        };
        let exported = paths(parts.iter().map(|(p, _)| p.as_str()).collect());
        let repository = paths(r.parts.iter().map(|p| p.path.as_str()).collect());
        if exported != repository {
            return Ok(Err(format!(
                "its exported parts are not the repository's {format} ones (bulk export has no \
                 format choice)"
            )));
        }
    }
    Ok(Ok(parts))
}

/// A deployed definition's parts, decoded. A part that is not base64 is an error naming the
/// item and the part: read as empty, it would be compared, journaled as the previous
/// definition and restored by a rollback as nothing.
fn decode_parts(
    item_type: ItemType,
    name: &str,
    parts: Vec<fabrik_client::models::DefinitionPart>,
) -> Result<super::Parts, EngineError> {
    parts
        .into_iter()
        .map(
            |p| match base64::engine::general_purpose::STANDARD.decode(p.payload.as_bytes()) {
                Ok(bytes) => Ok((p.path, bytes)),
                Err(e) => Err(EngineError::Invalid(format!(
                    "the deployed definition of {} {}: part {} is not valid base64 ({e}); \
                     fix or redeploy that item before publishing over it",
                    item_type.as_str(),
                    name,
                    p.path
                ))),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use fabrik_client::models::{DefinitionPart, ItemDefinitionIndexEntry, PayloadType};

    use super::*;
    use crate::publish::repo::{Part, PartKind};

    fn live(id: &str, item_type: ItemType, name: &str) -> LiveItem {
        LiveItem {
            id: id.into(),
            item_type,
            name: name.into(),
            description: String::new(),
            folder: None,
            parts: None,
            value_set: None,
        }
    }

    fn repo_item(item_type: ItemType, name: &str, paths: &[&str]) -> RepoItem {
        RepoItem {
            item_type,
            display_name: name.into(),
            description: String::new(),
            logical_id: String::new(),
            platform_creation_payload: None,
            dir: format!("{name}.{}", item_type.as_str()),
            folder: None,
            parts: paths
                .iter()
                .map(|p| Part {
                    path: p.to_string(),
                    bytes: b"{}".to_vec(),
                    kind: PartKind::Text,
                })
                .collect(),
            selected: true,
        }
    }

    /// A bulk export result holding item `id` at `/Name.Notebook` with parts at `paths`.
    fn exported(id: &str, paths: &[&str]) -> BulkExportResponse {
        BulkExportResponse {
            item_definitions_index: vec![ItemDefinitionIndexEntry {
                id: id.into(),
                root_path: "/Name.Notebook".into(),
            }],
            definition_parts: paths
                .iter()
                .map(|p| part(&format!("/Name.Notebook/{p}"), "e30="))
                .collect(),
        }
    }

    #[test]
    fn exported_parts_are_used_unless_left_out_or_not_in_the_format_the_repository_sends() {
        let l = live("1", ItemType::Notebook, "Name");
        let py = repo_item(
            ItemType::Notebook,
            "Name",
            &[".platform", "notebook-content.py"],
        );
        let result = exported("1", &[".platform", "notebook-content.py"]);
        assert_eq!(
            exported_parts(&l, &py, &result).unwrap().unwrap(),
            vec![
                (".platform".to_string(), b"{}".to_vec()),
                ("notebook-content.py".to_string(), b"{}".to_vec())
            ]
        );
        // The repository sends ipynb; bulk export gave the git source: read in ipynb instead.
        let ipynb = repo_item(
            ItemType::Notebook,
            "Name",
            &[".platform", "notebook-content.ipynb"],
        );
        let why = exported_parts(&l, &ipynb, &result).unwrap().unwrap_err();
        assert!(why.contains("ipynb"), "{why}");
        let same = exported("1", &[".platform", "notebook-content.ipynb"]);
        assert!(exported_parts(&l, &ipynb, &same).unwrap().is_ok());
        // An item the result does not index is read one by one, not taken as empty.
        let other = live("2", ItemType::Notebook, "Other");
        let why = exported_parts(&other, &py, &result).unwrap().unwrap_err();
        assert!(why.contains("left it out"), "{why}");
        // A part that is not base64 is an error naming the item and the part.
        let mut bad = exported("1", &["notebook-content.py"]);
        bad.definition_parts[0].payload = "not base64!".into();
        let e = exported_parts(&l, &py, &bad).unwrap_err().to_string();
        assert!(
            e.contains("Notebook Name") && e.contains("part notebook-content.py"),
            "{e}"
        );
    }

    #[test]
    fn reads_describe_the_items_read_one_by_one_grouped_by_why() {
        let reads = DefinitionReads {
            bulk_exports: 2,
            exported: 5,
            refresh: true,
            trusted: 0,
            one_by_one: vec![
                OneByOne {
                    item: "Notebook:A".into(),
                    why: "w1".into(),
                },
                OneByOne {
                    item: "Report:R".into(),
                    why: "w2".into(),
                },
                OneByOne {
                    item: "Notebook:B".into(),
                    why: "w1".into(),
                },
            ],
        };
        assert_eq!(
            reads.describe(),
            "2 bulk export(s) (5 item(s)); 2 read one by one, w1: Notebook:A, Notebook:B; \
             1 read one by one, w2: Report:R"
        );
    }

    /// An API error of `status` and `code`, naming the item `related` when given.
    fn api(status: u16, code: &str, related: Option<&str>) -> FabricError {
        FabricError::Api(Box::new(fabrik_client::ApiError {
            status,
            error_code: code.into(),
            message: "m".into(),
            request_id: None,
            client_request_id: None,
            more_details: Vec::new(),
            related_resource: related.map(|id| fabrik_client::models::ErrorRelatedResource {
                resource_id: id.into(),
                resource_type: "Item".into(),
            }),
            is_retriable: None,
            retry_after: None,
            operation: "bulk export".into(),
            attempt: 1,
        }))
    }

    #[test]
    fn only_a_4xx_other_than_429_is_a_refusal_to_fall_back_from() {
        let api = |status| api(status, "X", None);
        assert!(refused(&api(400)) && refused(&api(403)) && refused(&api(404)));
        assert!(!refused(&api(429)) && !refused(&api(500)) && !refused(&api(503)));
    }

    #[test]
    fn a_type_bulk_export_refuses_is_read_one_by_one_and_the_rest_asked_again() {
        let items = [
            live("n1", ItemType::Notebook, "A"),
            live("r1", ItemType::Report, "R"),
            live("n2", ItemType::Notebook, "B"),
            live("r2", ItemType::Report, "S"),
        ];
        let repo: Vec<RepoItem> = items
            .iter()
            .map(|l| repo_item(l.item_type, &l.name, &[".platform"]))
            .collect();
        let pending = || -> Vec<(usize, &RepoItem)> { repo.iter().enumerate().collect() };
        let indices = |v: &[(usize, &RepoItem)]| v.iter().map(|(i, _)| *i).collect::<Vec<_>>();

        let e = api(400, "OperationNotSupportedForItem", Some("r2"));
        let (out, rest, why) = after_refusal(&e, &items, pending());
        assert_eq!((indices(&out), indices(&rest)), (vec![1, 3], vec![0, 2]));
        assert!(why.contains("does not export Report items"), "{why}");

        // Without an item it names (or for any other refusal), every item one by one.
        let e = api(400, "OperationNotSupportedForItem", None);
        let (out, rest, _) = after_refusal(&e, &items, pending());
        assert_eq!((out.len(), rest.len()), (4, 0));
        let e = api(403, "FeatureNotAvailable", Some("r2"));
        let (out, rest, why) = after_refusal(&e, &items, pending());
        assert_eq!((out.len(), rest.len()), (4, 0));
        assert!(why.starts_with("bulk export refused"), "{why}");
    }

    fn part(path: &str, payload: &str) -> DefinitionPart {
        DefinitionPart {
            path: path.into(),
            payload: payload.into(),
            payload_type: PayloadType::InlineBase64,
        }
    }

    #[test]
    fn a_part_that_is_not_base64_is_an_error_naming_the_item_and_the_part() {
        let good = decode_parts(
            ItemType::Notebook,
            "Utils",
            vec![part("notebook-content.py", "eA==")],
        )
        .unwrap();
        assert_eq!(
            good,
            vec![("notebook-content.py".to_string(), b"x".to_vec())]
        );

        let e = decode_parts(
            ItemType::Notebook,
            "Utils",
            vec![
                part(".platform", "e30="),
                part("notebook-content.py", "not base64!"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("Notebook Utils") && e.contains("part notebook-content.py"),
            "{e}"
        );
    }
}
