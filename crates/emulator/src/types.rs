//! What each item type's endpoints serve: its typed REST segment, whether it has a
//! definition (and which parts and formats the service insists on), what it accepts as
//! `creationPayload` and which `properties` its typed GET returns.
//!
//! One table, [`TYPES`], written from the per-type swagger folders of the spec and from
//! the item-definition pages they link to. Types absent from the table (Dashboard, Datamart,
//! …) are served on `/items` only, as before.

/// Which `properties` object a typed GET adds to the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Props {
    /// None: the plain `Item` shape.
    None,
    /// `oneLakeTablesPath`, `oneLakeFilesPath`, `sqlEndpointProperties`, `defaultSchema`.
    Lakehouse,
    /// `connectionString`, `createdDate`, `lastUpdatedTime`, `collationType`.
    Warehouse,
    /// `connectionString`, `databaseName`, `serverFqdn`.
    SqlDatabase,
    /// `oneLakeTablesPath`, `sqlEndpointProperties`.
    MirroredDatabase,
    /// `queryServiceUri`, `ingestionServiceUri`, `databasesItemIds`.
    Eventhouse,
    /// `parentEventhouseItemId`, `queryServiceUri`, `ingestionServiceUri`, `databaseType`.
    KqlDatabase,
    /// `activeValueSetName`.
    VariableLibrary,
    /// `publishDetails`.
    Environment,
}

/// Whether a type has a public definition, and what a valid one must hold.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Def {
    /// No definition API: a definition on create, `getDefinition` and `updateDefinition`
    /// are answered `OperationNotSupportedForItem`.
    Unsupported,
    /// Definitions supported. `required`: each entry is one part that must be present,
    /// given as alternatives (a leading `*` matches a suffix). `formats`: the values of
    /// `format` the service knows for the type (empty: any).
    Parts {
        required: &'static [&'static [&'static str]],
        formats: &'static [&'static str],
    },
}

/// One item type's endpoints.
#[derive(Debug)]
pub(crate) struct TypeInfo {
    /// The `ItemType` value.
    pub(crate) name: &'static str,
    /// The typed collection under `/v1/workspaces/{id}/`.
    pub(crate) segment: &'static str,
    pub(crate) def: Def,
    pub(crate) props: Props,
}

const ANY: Def = Def::Parts {
    required: &[],
    formats: &[],
};

const fn parts(required: &'static [&'static [&'static str]]) -> Def {
    Def::Parts {
        required,
        formats: &[],
    }
}

const fn t(name: &'static str, segment: &'static str, def: Def, props: Props) -> TypeInfo {
    TypeInfo {
        name,
        segment,
        def,
        props,
    }
}

/// The 31 types fabric-cicd publishes, plus the typed APIs of the spec around them.
pub(crate) static TYPES: &[TypeInfo] = &[
    t(
        "VariableLibrary",
        "variableLibraries",
        parts(&[&["variables.json"]]),
        Props::VariableLibrary,
    ),
    t(
        "Warehouse",
        "warehouses",
        Def::Unsupported,
        Props::Warehouse,
    ),
    t(
        "MirroredDatabase",
        "mirroredDatabases",
        parts(&[&["mirroring.json"]]),
        Props::MirroredDatabase,
    ),
    t(
        "Lakehouse",
        "lakehouses",
        Def::Parts {
            required: &[],
            formats: &["LakehouseDefinitionV1"],
        },
        Props::Lakehouse,
    ),
    t("SQLDatabase", "sqlDatabases", ANY, Props::SqlDatabase),
    t("CosmosDBDatabase", "cosmosDbDatabases", ANY, Props::None),
    t("Environment", "environments", ANY, Props::Environment),
    t("UserDataFunction", "userDataFunctions", ANY, Props::None),
    t(
        "Eventhouse",
        "eventhouses",
        parts(&[&["EventhouseProperties.json"]]),
        Props::Eventhouse,
    ),
    t(
        "SparkJobDefinition",
        "sparkJobDefinitions",
        Def::Parts {
            required: &[&["SparkJobDefinitionV1.json"]],
            formats: &["SparkJobDefinitionV1", "SparkJobDefinitionV2"],
        },
        Props::None,
    ),
    t(
        "Notebook",
        "notebooks",
        Def::Parts {
            required: &[&[
                "notebook-content.py",
                "notebook-content.ipynb",
                "notebook-content.sql",
                "notebook-content.scala",
                "notebook-content.r",
            ]],
            formats: &["ipynb", "fabricGitSource"],
        },
        Props::None,
    ),
    t(
        "SemanticModel",
        "semanticModels",
        Def::Parts {
            required: &[&["definition.pbism"]],
            formats: &["TMSL", "TMDL"],
        },
        Props::None,
    ),
    t(
        "Report",
        "reports",
        Def::Parts {
            required: &[&["definition.pbir"]],
            formats: &["PBIR", "PBIR-Legacy"],
        },
        Props::None,
    ),
    t(
        "PaginatedReport",
        "paginatedReports",
        parts(&[&["*.rdl"]]),
        Props::None,
    ),
    t("CopyJob", "copyJobs", ANY, Props::None),
    t("DataBuildToolJob", "dataBuildToolJobs", ANY, Props::None),
    t(
        "KQLDatabase",
        "kqlDatabases",
        parts(&[&["DatabaseProperties.json"]]),
        Props::KqlDatabase,
    ),
    t("KQLQueryset", "kqlQuerysets", ANY, Props::None),
    t(
        "Dataflow",
        "dataflows",
        parts(&[&["queryMetadata.json"], &["mashup.pq"]]),
        Props::None,
    ),
    t(
        "DataPipeline",
        "dataPipelines",
        parts(&[&["pipeline-content.json"]]),
        Props::None,
    ),
    t("Reflex", "reflexes", ANY, Props::None),
    t("Eventstream", "eventstreams", ANY, Props::None),
    t("KQLDashboard", "kqlDashboards", ANY, Props::None),
    t("GraphQLApi", "graphQLApis", ANY, Props::None),
    t("ApacheAirflowJob", "apacheAirflowJobs", ANY, Props::None),
    t(
        "MountedDataFactory",
        "mountedDataFactories",
        ANY,
        Props::None,
    ),
    t("Ontology", "ontologies", ANY, Props::None),
    t("DataAgent", "dataAgents", ANY, Props::None),
    t(
        "MLExperiment",
        "mlExperiments",
        Def::Unsupported,
        Props::None,
    ),
    t("Map", "maps", ANY, Props::None),
    t("GraphModel", "graphModels", ANY, Props::None),
];

/// Types without a public definition that have no typed endpoints here either.
const NO_DEFINITION: &[&str] = &[
    "Dashboard",
    "Datamart",
    "SQLEndpoint",
    "MirroredWarehouse",
    "MLModel",
];

/// The table entry of an item type, if it has typed endpoints.
pub(crate) fn info(item_type: &str) -> Option<&'static TypeInfo> {
    TYPES.iter().find(|t| t.name == item_type)
}

/// Types whose create the spec says "requires a definition".
pub(crate) fn requires_definition(item_type: &str) -> bool {
    item_type == "SemanticModel"
}

/// Does the type have a public definition?
pub(crate) fn has_definition(item_type: &str) -> bool {
    match info(item_type) {
        Some(t) => !matches!(t.def, Def::Unsupported),
        None => !NO_DEFINITION.contains(&item_type),
    }
}

/// The formats the service knows for a type (empty: it does not check).
pub(crate) fn formats(item_type: &str) -> &'static [&'static str] {
    match info(item_type).map(|t| t.def) {
        Some(Def::Parts { formats, .. }) => formats,
        _ => &[],
    }
}

/// The required parts missing from `paths`, one alternative list per missing part.
pub(crate) fn missing_parts<'a>(
    item_type: &str,
    paths: impl Iterator<Item = &'a str> + Clone,
) -> Vec<&'static [&'static str]> {
    let Some(Def::Parts { required, .. }) = info(item_type).map(|t| t.def) else {
        return Vec::new();
    };
    required
        .iter()
        .copied()
        .filter(|alts| {
            !paths.clone().any(|p| {
                alts.iter().any(|a| match a.strip_prefix('*') {
                    Some(suffix) => p.ends_with(suffix),
                    None => p == *a,
                })
            })
        })
        .collect()
}

/// Rewrites `/v1/workspaces/{id}/{segment}/…` to the canonical spelling of `segment`
/// (the service matches paths case-insensitively: fabric-cicd sends `VariableLibraries`)
/// and drops a trailing slash (`GET /environments/`). Returns `None` when nothing changes.
pub(crate) fn canonical_path(path: &str) -> Option<String> {
    if !path.starts_with("/v1/") {
        return None;
    }
    let trimmed = if path.len() > 4 {
        path.trim_end_matches('/')
    } else {
        path
    };
    // ["", "v1", "workspaces", ws, segment, ...]; no allocation on the common path.
    let mut it = trimmed.split('/');
    let is_ws = it.nth(2) == Some("workspaces");
    let seg = it.nth(1).filter(|_| is_ws);
    let canonical = seg.and_then(|seg| {
        TYPES
            .iter()
            .map(|t| t.segment)
            .chain(["items", "folders", "spark", "roleAssignments", "git"])
            .find(|c| c.eq_ignore_ascii_case(seg) && *c != seg)
    });
    match canonical {
        Some(c) => {
            let mut segs: Vec<&str> = trimmed.split('/').collect();
            segs[4] = c;
            Some(segs.join("/"))
        }
        None => (trimmed.len() != path.len()).then(|| trimmed.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_fabric_cicds_31_types_with_unique_segments() {
        assert_eq!(TYPES.len(), 31);
        for t in TYPES {
            assert!(crate::store::ITEM_TYPES.contains(&t.name), "{}", t.name);
            assert_eq!(TYPES.iter().filter(|u| u.segment == t.segment).count(), 1);
        }
    }

    #[test]
    fn required_parts_accept_alternatives_and_suffixes() {
        let ok = ["notebook-content.ipynb", ".platform"];
        assert!(missing_parts("Notebook", ok.iter().copied()).is_empty());
        assert_eq!(
            missing_parts("Notebook", ["x.json"].iter().copied()).len(),
            1
        );
        assert!(missing_parts("PaginatedReport", ["Sales.rdl"].iter().copied()).is_empty());
        assert_eq!(
            missing_parts("Dataflow", ["mashup.pq"].iter().copied()).len(),
            1
        );
        assert!(!has_definition("Warehouse") && !has_definition("MLModel"));
        assert!(has_definition("Notebook") && !has_definition("Dashboard"));
    }

    #[test]
    fn paths_are_matched_case_insensitively_and_without_trailing_slash() {
        assert_eq!(
            canonical_path("/v1/workspaces/w/VariableLibraries/i").as_deref(),
            Some("/v1/workspaces/w/variableLibraries/i")
        );
        assert_eq!(
            canonical_path("/v1/workspaces/w/environments/").as_deref(),
            Some("/v1/workspaces/w/environments")
        );
        assert_eq!(canonical_path("/v1/workspaces/w/items/i"), None);
        assert_eq!(canonical_path("/secrets/x/"), None);
    }
}
