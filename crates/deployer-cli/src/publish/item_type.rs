//! The 31 item types fabric-cicd 1.4.0 publishes and, for each, the facts a publisher needs:
//! its place in fabric-cicd's publish order, whether it is a shell item and how its
//! `creationPayload` is built, its definition `format`, the part paths excluded from its
//! definition, the parts fabrik requires, and whether unpublish must leave it alone unless a
//! feature flag allows deleting it (the data-bearing types).
//!
//! The facts are data (one [`TypeFacts`] per type in [`ALL`]), not code spread over
//! publishers, so the planner, the publisher and the docs read one table.

use std::fmt;
use std::str::FromStr;

/// The type of a Fabric item, as `.platform` `metadata.type` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // Each variant is the Fabric type of the same name.
pub enum ItemType {
    VariableLibrary,
    Warehouse,
    MirroredDatabase,
    Lakehouse,
    SQLDatabase,
    CosmosDBDatabase,
    Environment,
    UserDataFunction,
    Eventhouse,
    SparkJobDefinition,
    Notebook,
    SemanticModel,
    Report,
    PaginatedReport,
    CopyJob,
    DataBuildToolJob,
    KQLDatabase,
    KQLQueryset,
    Dataflow,
    DataPipeline,
    Reflex,
    Eventstream,
    KQLDashboard,
    GraphQLApi,
    ApacheAirflowJob,
    MountedDataFactory,
    Ontology,
    DataAgent,
    MLExperiment,
    Map,
    GraphModel,
}

/// How a shell item's `creationPayload` is built from the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellPayload {
    /// Created with no payload (SQLDatabase, MLExperiment).
    None,
    /// `{"enableSchemas": true}` when the text of `lakehouse.metadata.json` contains
    /// `defaultSchema` (fabric-cicd tests the text, not a parsed key).
    LakehouseSchemas,
    /// `.platform` `metadata.creationPayload`, as written (Warehouse: `defaultCollation`).
    PlatformCreationPayload,
}

/// The `format` a definition is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatRule {
    /// No `format` field.
    None,
    /// Always this format.
    Always(&'static str),
    /// `ipynb` when any part ends in `.ipynb`, otherwise none (Notebook).
    IpynbWhenIpynbPart,
}

/// Which steps of fabric-cicd's text pipeline (§2.3) apply to the item's text parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextPipeline {
    /// Type step, logicalId → deployed id, parameters, zero workspace id → target.
    Full,
    /// Parameters only (VariableLibrary).
    ParametersOnly,
}

/// What a publisher needs to know about one item type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeFacts {
    /// The type.
    pub item_type: ItemType,
    /// 1-based position in fabric-cicd's `SERIAL_ITEM_PUBLISH_ORDER`; unpublish runs in reverse.
    /// fabrik orders by references and uses this only to break ties.
    pub order: usize,
    /// `Some` for shell items: created without a definition, from this payload.
    pub shell: Option<ShellPayload>,
    /// The definition's `format`.
    pub format: FormatRule,
    /// Item-relative paths excluded from the definition (fabric-cicd's
    /// `EXCLUDE_PATH_REGEX_MAPPING`, matched from the start of the path).
    pub exclude_path: Option<&'static str>,
    /// Parts fabrik requires (any one of each inner list), checked at discovery. fabric-cicd
    /// checks none and lets Fabric reject the definition; fabrik reports it before any request.
    pub required_parts: &'static [&'static [&'static str]],
    /// For data-bearing types: the feature flag without which unpublish skips the type.
    pub unpublish_flag: Option<&'static str>,
    /// The text pipeline.
    pub text_pipeline: TextPipeline,
    /// fabric-cicd publishes the type's items one at a time (pipelines and dataflows in
    /// dependency order, paginated reports sequentially) rather than 8 in parallel.
    pub sequential: bool,
    /// fabric-cicd's bulk mode refuses the type (`BULK_UNSUPPORTED_ITEM_TYPES`).
    pub bulk_unsupported: bool,
}

const PBI: Option<&str> = Some(r".*\.pbi[/\\].*");

const fn std(item_type: ItemType, order: usize) -> TypeFacts {
    TypeFacts {
        item_type,
        order,
        shell: None,
        format: FormatRule::None,
        exclude_path: None,
        required_parts: &[],
        unpublish_flag: None,
        text_pipeline: TextPipeline::Full,
        sequential: false,
        bulk_unsupported: false,
    }
}

const fn shell(item_type: ItemType, order: usize, payload: ShellPayload) -> TypeFacts {
    TypeFacts {
        shell: Some(payload),
        ..std(item_type, order)
    }
}

const fn guarded(mut f: TypeFacts, flag: &'static str) -> TypeFacts {
    f.unpublish_flag = Some(flag);
    f
}

const fn needs(mut f: TypeFacts, parts: &'static [&'static [&'static str]]) -> TypeFacts {
    f.required_parts = parts;
    f
}

const fn sequential(mut f: TypeFacts) -> TypeFacts {
    f.sequential = true;
    f
}

const fn excluding(mut f: TypeFacts, regex: Option<&'static str>) -> TypeFacts {
    f.exclude_path = regex;
    f
}

use ItemType as T;

/// Every type, in fabric-cicd's publish order (`SERIAL_ITEM_PUBLISH_ORDER`).
pub const ALL: [TypeFacts; 31] = [
    TypeFacts {
        text_pipeline: TextPipeline::ParametersOnly,
        ..needs(std(T::VariableLibrary, 1), &[&["variables.json"]])
    },
    TypeFacts {
        bulk_unsupported: true,
        ..guarded(
            shell(T::Warehouse, 2, ShellPayload::PlatformCreationPayload),
            "enable_warehouse_unpublish",
        )
    },
    needs(std(T::MirroredDatabase, 3), &[&["mirroring.json"]]),
    guarded(
        shell(T::Lakehouse, 4, ShellPayload::LakehouseSchemas),
        "enable_lakehouse_unpublish",
    ),
    guarded(
        shell(T::SQLDatabase, 5, ShellPayload::None),
        "enable_sqldatabase_unpublish",
    ),
    guarded(
        std(T::CosmosDBDatabase, 6),
        "enable_cosmosdbdatabase_unpublish",
    ),
    std(T::Environment, 7),
    std(T::UserDataFunction, 8),
    guarded(
        excluding(std(T::Eventhouse, 9), Some(r".*\.children[/\\].*")),
        "enable_eventhouse_unpublish",
    ),
    TypeFacts {
        format: FormatRule::Always("SparkJobDefinitionV2"),
        ..std(T::SparkJobDefinition, 10)
    },
    TypeFacts {
        format: FormatRule::IpynbWhenIpynbPart,
        ..needs(
            std(T::Notebook, 11),
            &[&["notebook-content.py", "notebook-content.ipynb"]],
        )
    },
    needs(
        excluding(std(T::SemanticModel, 12), PBI),
        &[&["definition.pbism"]],
    ),
    needs(excluding(std(T::Report, 13), PBI), &[&["definition.pbir"]]),
    sequential(std(T::PaginatedReport, 14)),
    std(T::CopyJob, 15),
    TypeFacts {
        bulk_unsupported: true,
        ..std(T::DataBuildToolJob, 16)
    },
    guarded(
        needs(std(T::KQLDatabase, 17), &[&["DatabaseProperties.json"]]),
        "enable_kqldatabase_unpublish",
    ),
    std(T::KQLQueryset, 18),
    sequential(needs(
        std(T::Dataflow, 19),
        &[&["mashup.pq"], &["queryMetadata.json"]],
    )),
    sequential(needs(
        std(T::DataPipeline, 20),
        &[&["pipeline-content.json"]],
    )),
    std(T::Reflex, 21),
    std(T::Eventstream, 22),
    std(T::KQLDashboard, 23),
    std(T::GraphQLApi, 24),
    std(T::ApacheAirflowJob, 25),
    std(T::MountedDataFactory, 26),
    std(T::Ontology, 27),
    excluding(std(T::DataAgent, 28), PBI),
    shell(T::MLExperiment, 29, ShellPayload::None),
    std(T::Map, 30),
    guarded(std(T::GraphModel, 31), "enable_graphmodel_unpublish"),
];

impl ItemType {
    /// Every type, in fabric-cicd's publish order.
    pub fn all() -> impl Iterator<Item = ItemType> {
        ALL.iter().map(|f| f.item_type)
    }

    /// The type's publish facts.
    pub fn facts(self) -> &'static TypeFacts {
        // ALL is in enum declaration order, so the discriminant is the index.
        &ALL[self as usize]
    }

    /// The name `.platform` and the REST API use.
    pub fn as_str(self) -> &'static str {
        NAMES[self as usize]
    }

    /// Whether the item is created without a definition.
    pub fn is_shell(self) -> bool {
        self.facts().shell.is_some()
    }

    /// The definition's `format` for an item whose parts have these paths.
    pub fn definition_format<'a>(
        self,
        part_paths: impl IntoIterator<Item = &'a str>,
    ) -> Option<&'static str> {
        match self.facts().format {
            FormatRule::None => None,
            FormatRule::Always(f) => Some(f),
            FormatRule::IpynbWhenIpynbPart => part_paths
                .into_iter()
                .any(|p| p.ends_with(".ipynb"))
                .then_some("ipynb"),
        }
    }
}

/// The type names, in fabric-cicd's publish order (the one list: `parameter::ITEM_TYPES`).
const NAMES: [&str; 31] = super::parameter::ITEM_TYPES;

impl fmt::Display for ItemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A type name that is not one of the 31.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an item type fabric-cicd 1.4.0 publishes")]
pub struct UnknownItemType(pub String);

impl FromStr for ItemType {
    type Err = UnknownItemType;

    /// Exact and case-sensitive, as fabric-cicd compares type names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| ALL[i].item_type)
            .ok_or_else(|| UnknownItemType(s.to_string()))
    }
}

/// The feature flags fabric-cicd 1.4.0 knows (`FeatureFlag`).
pub const FEATURE_FLAGS: [&str; 19] = [
    "enable_lakehouse_unpublish",
    "enable_warehouse_unpublish",
    "enable_sqldatabase_unpublish",
    "enable_eventhouse_unpublish",
    "enable_kqldatabase_unpublish",
    "enable_cosmosdbdatabase_unpublish",
    "enable_graphmodel_unpublish",
    "enable_shortcut_publish",
    "disable_workspace_folder_publish",
    "continue_on_shortcut_failure",
    "enable_environment_variable_replacement",
    "enable_experimental_features",
    "enable_items_to_include",
    "enable_exclude_folder",
    "enable_include_folder",
    "enable_shortcut_exclude",
    "enable_response_collection",
    "enable_hard_delete",
    "enable_bulk_publish",
];

/// Orders a Notebook's parts as fabric-cicd sends them: `.platform`, then `.py`/`.ipynb`,
/// then other files, then `.json`; by file name within each group. Other types keep the
/// order they are given in.
pub fn sort_parts_for_publish<P>(item_type: ItemType, parts: &mut [P], path: impl Fn(&P) -> &str) {
    if item_type != ItemType::Notebook {
        return;
    }
    fn key(path: &str) -> (u8, &str) {
        let name = path.rsplit('/').next().unwrap_or(path);
        let rank = if name == ".platform" {
            0
        } else if name.ends_with(".py") || name.ends_with(".ipynb") {
            1
        } else if name.ends_with(".json") {
            3
        } else {
            2
        };
        (rank, name)
    }
    parts.sort_by(|a, b| key(path(a)).cmp(&key(path(b))));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_publish_order_and_indexed_by_discriminant() {
        for (i, f) in ALL.iter().enumerate() {
            assert_eq!(f.order, i + 1, "{:?}", f.item_type);
            assert_eq!(f.item_type as usize, i);
            assert_eq!(f.item_type.as_str().parse::<ItemType>(), Ok(f.item_type));
        }
        assert_eq!(
            "notebook".parse::<ItemType>(),
            Err(UnknownItemType("notebook".into())),
            "type names are case-sensitive"
        );
    }

    #[test]
    fn fabric_cicd_order_of_the_fixture_types() {
        let order: Vec<_> = [
            T::DataPipeline,
            T::Report,
            T::SemanticModel,
            T::Notebook,
            T::Environment,
            T::Lakehouse,
            T::Warehouse,
            T::VariableLibrary,
        ]
        .iter()
        .map(|t| t.facts().order)
        .collect();
        assert_eq!(order, [20, 13, 12, 11, 7, 4, 2, 1]);
    }

    #[test]
    fn shells_guards_and_formats() {
        let shells: Vec<_> = ItemType::all().filter(|t| t.is_shell()).collect();
        assert_eq!(
            shells,
            [T::Warehouse, T::Lakehouse, T::SQLDatabase, T::MLExperiment]
        );
        assert_eq!(
            T::Lakehouse.facts().shell,
            Some(ShellPayload::LakehouseSchemas)
        );
        assert_eq!(
            T::Warehouse.facts().shell,
            Some(ShellPayload::PlatformCreationPayload)
        );
        let guarded: Vec<_> = ALL
            .iter()
            .filter_map(|f| f.unpublish_flag.map(|fl| (f.item_type, fl)))
            .collect();
        assert_eq!(
            guarded,
            [
                (T::Warehouse, "enable_warehouse_unpublish"),
                (T::Lakehouse, "enable_lakehouse_unpublish"),
                (T::SQLDatabase, "enable_sqldatabase_unpublish"),
                (T::CosmosDBDatabase, "enable_cosmosdbdatabase_unpublish"),
                (T::Eventhouse, "enable_eventhouse_unpublish"),
                (T::KQLDatabase, "enable_kqldatabase_unpublish"),
                (T::GraphModel, "enable_graphmodel_unpublish"),
            ]
        );
        for (_, flag) in guarded {
            assert!(FEATURE_FLAGS.contains(&flag));
        }
        assert_eq!(
            T::Notebook.definition_format([".platform", "notebook-content.py"]),
            None
        );
        assert_eq!(
            T::Notebook.definition_format([".platform", "notebook-content.ipynb"]),
            Some("ipynb")
        );
        assert_eq!(
            T::SparkJobDefinition.definition_format([]),
            Some("SparkJobDefinitionV2")
        );
        assert_eq!(T::Report.definition_format(["x.ipynb"]), None);
        assert_eq!(
            T::VariableLibrary.facts().text_pipeline,
            TextPipeline::ParametersOnly
        );
        assert_eq!(T::Notebook.facts().text_pipeline, TextPipeline::Full);
        assert!(T::DataPipeline.facts().sequential && !T::Notebook.facts().sequential);
    }

    #[test]
    fn notebook_parts_are_sorted_like_fabric_cicd() {
        let mut parts = vec![
            "b.json",
            "notebook-content.py",
            "z.txt",
            ".platform",
            "a.json",
        ];
        sort_parts_for_publish(T::Notebook, &mut parts, |p| p);
        assert_eq!(
            parts,
            [
                ".platform",
                "notebook-content.py",
                "z.txt",
                "a.json",
                "b.json"
            ]
        );
        let mut other = vec!["b", "a"];
        sort_parts_for_publish(T::Report, &mut other, |p| p);
        assert_eq!(other, ["b", "a"]);
    }
}
