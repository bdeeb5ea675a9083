//! Tests for flag resolution: precedence, spellings, errors, suggestions, readiness.

use super::*;
use proptest::prelude::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn file(pairs: &[(&str, FileValue)]) -> Option<(PathBuf, FileSection)> {
    Some((
        PathBuf::from("fabrik.yaml"),
        FileSection(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ),
    ))
}

#[test]
fn defaults_turn_resilience_on_and_key_vault_off() {
    let flags = Flags::resolve(&Inputs::default()).unwrap();
    for f in [
        Flag::RetryLogic,
        Flag::CircuitBreaker,
        Flag::Rollback,
        Flag::Telemetry,
        Flag::HealthChecks,
    ] {
        assert!(flags.is_on(f), "{f}");
        assert_eq!(flags.source(f), &Source::Default);
    }
    assert!(!flags.is_on(Flag::AzureKeyVault));
    assert_eq!(flags, Flags::defaults());
}

#[test]
fn precedence_is_command_line_then_env_then_file_then_default() {
    let e = env(&[
        ("FEATURE_USE_RETRY_LOGIC", "false"),
        ("FEATURE_USE_ROLLBACK", "false"),
    ]);
    let cli = vec!["retry_logic=on".to_string()];
    let inputs = Inputs {
        env: &e,
        file: file(&[
            ("retry_logic", FileValue::Bool(false)),
            ("rollback", FileValue::Bool(true)),
            ("telemetry", FileValue::Text("no".into())),
        ]),
        cli: &cli,
    };
    let flags = Flags::resolve(&inputs).unwrap();
    // cli beats env and file
    assert!(flags.is_on(Flag::RetryLogic));
    assert_eq!(flags.source(Flag::RetryLogic), &Source::CommandLine);
    // env beats file
    assert!(!flags.is_on(Flag::Rollback));
    assert_eq!(
        flags.source(Flag::Rollback),
        &Source::Env("FEATURE_USE_ROLLBACK".into())
    );
    // file beats default
    assert!(!flags.is_on(Flag::Telemetry));
    assert_eq!(
        flags.source(Flag::Telemetry),
        &Source::File("fabrik.yaml".into())
    );
    // default
    assert_eq!(flags.source(Flag::HealthChecks), &Source::Default);
}

#[test]
fn every_accepted_spelling_in_any_case_with_whitespace() {
    let on = [
        "true", "1", "yes", "on", "TRUE", "Yes", "ON", " true ", "\ton\n",
    ];
    let off = ["false", "0", "no", "off", "FALSE", "No", "Off", "  0  "];
    for v in on {
        let e = env(&[("FEATURE_USE_CIRCUIT_BREAKER", v)]);
        let flags = Flags::resolve(&Inputs {
            env: &e,
            ..Default::default()
        })
        .unwrap();
        assert!(flags.is_on(Flag::CircuitBreaker), "{v:?}");
    }
    for v in off {
        let e = env(&[("FEATURE_USE_CIRCUIT_BREAKER", v)]);
        let flags = Flags::resolve(&Inputs {
            env: &e,
            ..Default::default()
        })
        .unwrap();
        assert!(!flags.is_on(Flag::CircuitBreaker), "{v:?}");
    }
}

#[test]
fn invalid_values_are_errors_naming_variable_and_value_all_at_once() {
    // The seed read "ture" as false without a word.
    let e = env(&[
        ("FEATURE_USE_RETRY_LOGIC", "ture"),
        ("FEATURE_USE_TELEMETRY", ""),
    ]);
    let cli = vec!["rollback=maybe".to_string(), "nonsense".to_string()];
    let errs = Flags::resolve(&Inputs {
        env: &e,
        file: file(&[("health_checks", FileValue::Text("enabled".into()))]),
        cli: &cli,
    })
    .unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 5, "{text:#?}");
    assert!(
        text.iter()
            .any(|t| t.contains("FEATURE_USE_RETRY_LOGIC") && t.contains("'ture'"))
    );
    assert!(
        text.iter()
            .any(|t| t.contains("FEATURE_USE_TELEMETRY") && t.contains("''"))
    );
    assert!(
        text.iter()
            .any(|t| t.contains("rollback") && t.contains("'maybe'") && t.contains("command line"))
    );
    assert!(
        text.iter()
            .any(|t| t.contains("health_checks") && t.contains("file fabrik.yaml"))
    );
    assert!(
        text.iter()
            .any(|t| t.contains("'nonsense'") && t.contains("KEY=VALUE"))
    );
}

#[test]
fn unknown_feature_variables_warn_with_a_suggestion() {
    let e = env(&[
        ("FEATURE_USE_RETRY_LOGC", "true"),
        ("FEATURE_USE_SECRET_MANAGER", "true"),
        ("PATH", "/bin"),
    ]);
    let flags = Flags::resolve(&Inputs {
        env: &e,
        ..Default::default()
    })
    .unwrap();
    let w = flags.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w.iter().any(|m| m.contains("FEATURE_USE_RETRY_LOGC")
        && m.contains("did you mean FEATURE_USE_RETRY_LOGIC?")));
    // Not close to anything: a warning without a guess.
    assert!(
        w.iter()
            .any(|m| m.contains("FEATURE_USE_SECRET_MANAGER") && !m.contains("did you mean"))
    );
}

#[test]
fn unknown_keys_in_file_and_cli_are_errors_with_suggestions() {
    let cli = vec!["circuit_braker=off".to_string()];
    let errs = Flags::resolve(&Inputs {
        file: file(&[("rollbak", FileValue::Bool(true))]),
        cli: &cli,
        ..Default::default()
    })
    .unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("'rollbak'") && t.contains("did you mean 'rollback'")),
        "{text:?}"
    );
    assert!(text.iter().any(|t| t.contains("'circuit_braker'") && t.contains("did you mean 'circuit_breaker'")));
}

#[test]
fn key_vault_alias_is_honoured_and_canonical_name_wins() {
    let e = env(&[("FEATURE_USE_KEY_VAULT", "yes")]);
    let flags = Flags::resolve(&Inputs {
        env: &e,
        ..Default::default()
    })
    .unwrap();
    assert!(flags.is_on(Flag::AzureKeyVault));
    assert_eq!(
        flags.source(Flag::AzureKeyVault),
        &Source::Env("FEATURE_USE_KEY_VAULT".into())
    );

    let e = env(&[
        ("FEATURE_USE_KEY_VAULT", "yes"),
        ("FEATURE_USE_AZURE_KEYVAULT", "no"),
    ]);
    let flags = Flags::resolve(&Inputs {
        env: &e,
        ..Default::default()
    })
    .unwrap();
    assert!(!flags.is_on(Flag::AzureKeyVault));
    assert!(flags.warnings().iter().any(|w| w.contains("disagree")));
    // The CLI accepts variable names too.
    let cli = vec!["FEATURE_USE_KEY_VAULT=on".to_string()];
    let flags = Flags::resolve(&Inputs {
        cli: &cli,
        ..Default::default()
    })
    .unwrap();
    assert!(flags.is_on(Flag::AzureKeyVault));
}

#[test]
fn production_readiness_requires_the_seeds_five_flags_but_not_the_breaker() {
    let flags = Flags::defaults();
    let r = flags.readiness();
    assert!(!r.ready);
    assert_eq!(r.missing, vec![Flag::AzureKeyVault]);

    let e = env(&[
        ("FEATURE_USE_AZURE_KEYVAULT", "1"),
        ("FEATURE_USE_CIRCUIT_BREAKER", "0"),
    ]);
    let flags = Flags::resolve(&Inputs {
        env: &e,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        flags.readiness(),
        Readiness {
            ready: true,
            missing: vec![]
        }
    );

    let e = env(&[
        ("FEATURE_USE_AZURE_KEYVAULT", "1"),
        ("FEATURE_USE_TELEMETRY", "off"),
        ("FEATURE_USE_ROLLBACK", "off"),
    ]);
    let flags = Flags::resolve(&Inputs {
        env: &e,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        flags.readiness().missing,
        vec![Flag::Rollback, Flag::Telemetry]
    );
}

#[test]
fn report_lists_every_flag_with_value_and_source() {
    let e = env(&[("FEATURE_USE_HEALTH_CHECKS", "off")]);
    let flags = Flags::resolve(&Inputs {
        env: &e,
        ..Default::default()
    })
    .unwrap();
    let report = flags.report();
    assert_eq!(report.len(), Flag::ALL.len());
    let h = report
        .iter()
        .find(|r| r.flag == Flag::HealthChecks)
        .unwrap();
    assert!(!h.enabled);
    assert_eq!(h.source, Source::Env("FEATURE_USE_HEALTH_CHECKS".into()));
    let table = flags.to_string();
    assert!(
        table.contains(
            "health_checks    FEATURE_USE_HEALTH_CHECKS    off   env FEATURE_USE_HEALTH_CHECKS"
        ),
        "{table}"
    );
    assert!(table.contains("retry_logic      FEATURE_USE_RETRY_LOGIC      on    default"));
}

#[test]
fn file_section_deserializes_from_yaml_shaped_json() {
    let section: FileSection =
        serde_json::from_str(r#"{"retry_logic": false, "FEATURE_USE_TELEMETRY": "off"}"#).unwrap();
    let flags = Flags::resolve(&Inputs {
        file: Some(("f.yaml".into(), section)),
        ..Default::default()
    })
    .unwrap();
    assert!(!flags.is_on(Flag::RetryLogic));
    assert!(!flags.is_on(Flag::Telemetry));
}

/// Every accepted spelling written out: the eight words in every mix of upper and lower case,
/// with the value each means. The oracle for the properties below, independent of how
/// `parse_bool` normalizes its input.
fn accepted() -> BTreeMap<String, bool> {
    let words = [
        ("true", true),
        ("1", true),
        ("yes", true),
        ("on", true),
        ("false", false),
        ("0", false),
        ("no", false),
        ("off", false),
    ];
    let mut out = BTreeMap::new();
    for (word, value) in words {
        for mask in 0..1u32 << word.len() {
            let spelling: String = word
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if mask >> i & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            out.insert(spelling, value);
        }
    }
    out
}

/// Padding that surrounds a value without changing it.
fn padding() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![" ", "\t", "\n", "\r\n", "\u{a0}", "\u{2003}"]),
        0..3,
    )
    .prop_map(|v| v.concat())
}

/// Strings without whitespace: random ones, and accepted spellings with one character
/// replaced, inserted or removed (near misses random strings would almost never hit).
fn candidates() -> impl Strategy<Value = String> {
    let spellings: Vec<String> = accepted().into_keys().collect();
    let near_miss = (
        prop::sample::select(spellings),
        any::<prop::sample::Index>(),
        "\\S",
        0..3u8,
    )
        .prop_map(|(s, at, c, edit)| {
            let mut chars: Vec<String> = s.chars().map(String::from).collect();
            let i = at.index(chars.len() + 1);
            match edit {
                0 if i < chars.len() => chars[i] = c,
                1 => chars.insert(i, c),
                _ if i < chars.len() => {
                    chars.remove(i);
                }
                _ => chars.push(c),
            }
            chars.concat()
        });
    prop_oneof!["\\S{0,8}", near_miss]
}

proptest! {
    /// Every accepted spelling parses to its value, whatever whitespace surrounds it.
    #[test]
    fn accepted_spellings_parse_in_any_case_and_padding(
        pick in any::<prop::sample::Index>(),
        before in padding(),
        after in padding(),
    ) {
        let all: Vec<(String, bool)> = accepted().into_iter().collect();
        let (spelling, value) = pick.get(&all);
        prop_assert_eq!(parse_bool(&format!("{before}{spelling}{after}")), Some(*value));
    }

    /// Anything that is not an accepted spelling is rejected, never read as false.
    #[test]
    fn only_the_listed_spellings_parse(s in candidates(), before in padding(), after in padding()) {
        let expected = accepted().get(&s).copied();
        prop_assert_eq!(parse_bool(&format!("{before}{s}{after}")), expected, "{:?}", s);
    }
}
