//! The built-in resource kinds, one file each; [`Registry::builtin`](super::Registry::builtin)
//! lists them.

pub mod capacity;
pub mod folder;
pub mod git;
pub mod item;
pub mod item_undo;
pub mod role;
pub mod spark_pool;
pub mod spark_settings;
pub mod workspace;

#[cfg(test)]
pub(crate) mod tests {
    use crate::config::{DesiredItem, DesiredPrincipal, DesiredWorkspace};

    /// One workspace with two folders, a lakehouse, a notebook in a folder and a principal.
    pub(crate) fn desired() -> DesiredWorkspace {
        DesiredWorkspace {
            name: "p-a-dev".into(),
            description: "d".into(),
            capacity: None,
            folders: vec!["raw".into(), "raw/x".into()],
            items: vec![
                DesiredItem {
                    name: "BRONZE_L".into(),
                    item_type: "Lakehouse".into(),
                    description: "".into(),
                    folder: None,
                    definition: None,
                },
                DesiredItem {
                    name: "01_N".into(),
                    item_type: "Notebook".into(),
                    description: "n".into(),
                    folder: Some("raw".into()),
                    definition: Some(vec![("notebook-content.py".into(), "cHJpbnQ=".into())]),
                },
            ],
            principals: vec![DesiredPrincipal {
                id: "9117cbfa-f0a7-43b7-846f-96ba66a3c1c0".into(),
                kind: "User".into(),
                role: "Admin".into(),
            }],
            git: None,
            publish: None,
            sections: Default::default(),
        }
    }
}
