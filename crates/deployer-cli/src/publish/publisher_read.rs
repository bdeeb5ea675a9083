//! Reading what a publish compares with: the deployed items, their definitions and value sets.

use std::collections::BTreeMap;

use base64::Engine as _;
use futures::{StreamExt, TryStreamExt};

use super::{Address, DEFINITION_READS_PER_SLOT, ItemType, LiveItem, NAME, PublishKind, key};
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
    /// a new item may be the rename of), several at once; and each VariableLibrary's active
    /// value set.
    pub(super) async fn read_definitions(
        &self,
        cx: &ReadCx<'_>,
        ws: &str,
        items: &mut [LiveItem],
    ) -> Result<(), EngineError> {
        // Definitions of the deployed items the repository publishes with one, several at once.
        let wanted: Vec<(usize, Option<String>)> = items
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
                (!r.item_type.is_shell()).then(|| (i, r.definition_format().map(str::to_string)))
            })
            .collect();
        let read: Vec<(usize, super::Parts)> = futures::stream::iter(wanted)
            .map(|(i, format)| {
                let l = &items[i];
                async move {
                    let d = cx
                        .client
                        .get_item_definition(ws, &l.id, format.as_deref())
                        .await
                        .map_err(ctx(format!(
                            "reading the definition of {} {}",
                            l.item_type.as_str(),
                            l.name
                        )))?;
                    let parts = decode_parts(l.item_type, &l.name, d.parts)?;
                    Ok::<_, EngineError>((i, parts))
                }
            })
            // Most of a definition read is the wait for its operation (Retry-After).
            .buffer_unordered(cx.concurrency.saturating_mul(DEFINITION_READS_PER_SLOT))
            .try_collect()
            .await?;
        for (i, parts) in read {
            items[i].parts = Some(parts);
        }
        for l in items.iter_mut() {
            let selected = self
                .repo
                .find(l.item_type, &l.name)
                .is_some_and(|r| r.selected);
            if l.item_type == ItemType::VariableLibrary && selected {
                l.value_set = cx
                    .client
                    .active_value_set(ws, &l.id)
                    .await
                    .map_err(ctx(format!("reading the active value set of {}", l.name)))?;
            }
        }
        Ok(())
    }
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
    use fabrik_client::models::{DefinitionPart, PayloadType};

    use super::*;

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
