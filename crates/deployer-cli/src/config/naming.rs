//! Name generation with the seed's placeholders and its no-double-prefix rule, and the naming
//! rules the service enforces (checked before any request is sent).

/// Values for the placeholders.
#[derive(Debug, Clone)]
pub struct NameContext<'a> {
    /// `{prefix}`.
    pub prefix: &'a str,
    /// `{environment}`.
    pub environment: &'a str,
    /// `{organization}`.
    pub organization: &'a str,
}

/// Applies `pattern`: `{prefix}`, `{prefix_upper}` (upper case, `-` → `_`), `{prefix_clean}`
/// (`-` removed), `{name}`, `{environment}`, `{environment_title}`, `{organization}`.
pub fn apply(pattern: &str, name: &str, cx: &NameContext<'_>) -> String {
    let mut title = cx.environment.to_string();
    if let Some(first) = title.get(0..1) {
        title = first.to_uppercase() + &title[1..];
    }
    pattern
        .replace(
            "{prefix_upper}",
            &cx.prefix.to_uppercase().replace('-', "_"),
        )
        .replace("{prefix_clean}", &cx.prefix.replace('-', ""))
        .replace("{prefix}", cx.prefix)
        .replace("{environment_title}", &title)
        .replace("{environment}", cx.environment)
        .replace("{organization}", cx.organization)
        .replace("{name}", name)
}

/// The seed's workspace naming: a name that already starts with the prefix and ends with
/// `-{env}` is used as is; one that starts with the prefix gets `-{env}` appended; anything
/// else goes through the pattern.
pub fn workspace_name(pattern: &str, name: &str, cx: &NameContext<'_>) -> String {
    let suffix = format!("-{}", cx.environment);
    if !cx.prefix.is_empty() && name.starts_with(cx.prefix) {
        if name.ends_with(&suffix) {
            name.to_string()
        } else {
            format!("{name}{suffix}")
        }
    } else {
        apply(pattern, name, cx)
    }
}

/// Placeholders a pattern may use.
pub const PLACEHOLDERS: [&str; 7] = [
    "prefix",
    "prefix_upper",
    "prefix_clean",
    "name",
    "environment",
    "environment_title",
    "organization",
];

/// Placeholders in `pattern` that are not known (typos such as `{enviroment}`).
pub fn unknown_placeholders(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        if !PLACEHOLDERS.contains(&name) {
            out.push(name.to_string());
        }
        rest = &rest[open + close + 1..];
    }
    out
}

/// Why a workspace name is refused by the service, if it is.
pub fn workspace_name_problem(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        Some("workspace name is empty".into())
    } else if name.chars().count() > 256 {
        Some(format!(
            "workspace name is {} characters; at most 256",
            name.chars().count()
        ))
    } else if name.eq_ignore_ascii_case("Admin monitoring") {
        Some("'Admin monitoring' is a reserved workspace name".into())
    } else {
        None
    }
}

/// Why a lakehouse name is refused by the service (a letter, then letters, digits and
/// underscores, at most 123), with a suggested fix.
pub fn lakehouse_name_problem(name: &str) -> Option<(String, String)> {
    let ok_first = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let ok_rest = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok_first && ok_rest && name.len() <= 123 {
        return None;
    }
    let mut fixed: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !fixed
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
    {
        fixed.insert_str(0, "LH_");
    }
    fixed.truncate(123);
    Some((
        format!(
            "lakehouse name '{name}' must start with a letter and contain only letters, digits and underscores (at most 123)"
        ),
        format!("try '{fixed}'"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> NameContext<'static> {
        NameContext {
            prefix: "usf2-fabric",
            environment: "dev",
            organization: "contoso",
        }
    }

    #[test]
    fn placeholders_as_the_seed_replaced_them() {
        assert_eq!(
            workspace_name("{prefix}-{name}-{environment}", "analytics", &cx()),
            "usf2-fabric-analytics-dev"
        );
        assert_eq!(
            apply("{prefix_upper}_Lakehouse_{environment_title}", "x", &cx()),
            "USF2_FABRIC_Lakehouse_Dev"
        );
        assert_eq!(
            apply("{prefix_clean}-{organization}-{name}", "n", &cx()),
            "usf2fabric-contoso-n"
        );
    }

    #[test]
    fn no_double_prefix() {
        let p = "{prefix}-{name}-{environment}";
        assert_eq!(
            workspace_name(p, "usf2-fabric-sales-dev", &cx()),
            "usf2-fabric-sales-dev"
        );
        assert_eq!(
            workspace_name(p, "usf2-fabric-sales", &cx()),
            "usf2-fabric-sales-dev"
        );
    }

    #[test]
    fn unknown_placeholders_are_found() {
        assert_eq!(
            unknown_placeholders("{prefix}-{enviroment}-{name}"),
            vec!["enviroment"]
        );
        assert!(unknown_placeholders("{prefix}-{name}").is_empty());
    }

    #[test]
    fn service_naming_rules() {
        assert!(workspace_name_problem("Admin monitoring").is_some());
        assert!(workspace_name_problem(&"x".repeat(257)).is_some());
        assert!(workspace_name_problem(&"x".repeat(256)).is_none());
        assert!(lakehouse_name_problem("BRONZE_Sales_Lakehouse").is_none());
        let (msg, fix) = lakehouse_name_problem("bronze-sales").unwrap();
        assert!(msg.contains("'bronze-sales'"));
        assert_eq!(fix, "try 'bronze_sales'");
        assert_eq!(lakehouse_name_problem("1st").unwrap().1, "try 'LH_1st'");
        assert!(lakehouse_name_problem(&format!("a{}", "b".repeat(123))).is_some());
    }
}
