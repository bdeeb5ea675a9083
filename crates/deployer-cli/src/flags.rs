//! The one flag resolution every command uses: command line > environment > the config file's
//! `features:` section > defaults. A `features:` section that is not a map of flag values is an
//! error, never silently skipped.

use std::path::Path;

use fabrik_flags::{FileSection, Flags, Inputs};

/// Resolves the flags for `config` (a missing file contributes nothing; the loader reports it),
/// the environment `env` and the `--feature` overrides `cli`. Errors name the file or variable.
pub fn resolve(
    config: &Path,
    env: &[(String, String)],
    cli: &[String],
) -> Result<Flags, Vec<String>> {
    let file = match std::fs::read_to_string(config) {
        Ok(text) => features_section(config, &text)?,
        Err(_) => None,
    };
    Flags::resolve(&Inputs { env, file, cli })
        .map_err(|errors| errors.into_iter().map(|e| e.to_string()).collect())
}

/// The `features:` section of the config file's text. A file that is not YAML contributes
/// nothing here: the configuration loader reports its syntax error with its position.
fn features_section(
    config: &Path,
    text: &str,
) -> Result<Option<(std::path::PathBuf, FileSection)>, Vec<String>> {
    let Ok(v) = serde_norway::from_str::<serde_norway::Value>(text) else {
        return Ok(None);
    };
    let Some(section) = v.get("features") else {
        return Ok(None);
    };
    if section.is_null() {
        return Ok(None);
    }
    serde_norway::from_value::<FileSection>(section.clone())
        .map(|s| Some((config.to_path_buf(), s)))
        .map_err(|e| {
            vec![format!(
                "{}: features: {e} (expected flag: value pairs such as `retry_logic: off`)",
                config.display()
            )]
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabrik_core::Flag;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn the_file_turns_a_flag_off_and_the_environment_wins_over_it() {
        let f = write("project: {name: a, prefix: a}\nfeatures:\n  telemetry: off\n");
        let flags = resolve(f.path(), &[], &[]).unwrap();
        assert!(!flags.is_on(Flag::Telemetry));
        let env = [("FEATURE_USE_TELEMETRY".to_string(), "on".to_string())];
        assert!(resolve(f.path(), &env, &[]).unwrap().is_on(Flag::Telemetry));
    }

    #[test]
    fn a_malformed_features_section_is_an_error_naming_the_file() {
        let f = write("project: {name: a, prefix: a}\nfeatures: [telemetry, off]\n");
        let errors = resolve(f.path(), &[], &[]).unwrap_err();
        assert!(errors[0].contains("features:"), "{errors:?}");
        assert!(
            errors[0].contains(&f.path().display().to_string()),
            "{errors:?}"
        );
        let bad_value = write("project: {name: a, prefix: a}\nfeatures: {telemetry: maybe}\n");
        assert!(resolve(bad_value.path(), &[], &[]).is_err());
    }

    #[test]
    fn no_file_and_no_section_leave_the_defaults() {
        let missing = Path::new("/nonexistent/fabrik.yaml");
        assert!(resolve(missing, &[], &[]).unwrap().is_on(Flag::Telemetry));
        let f = write("project: {name: a, prefix: a}\n");
        assert!(resolve(f.path(), &[], &[]).unwrap().is_on(Flag::Telemetry));
    }
}
