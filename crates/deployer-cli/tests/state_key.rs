//! `FABRIK_STATE_KEY`: the `fabrik` binary encrypts run journals, lists them without the key,
//! refuses a rollback without the right key, rolls back with a rotated-out key listed in
//! `FABRIK_STATE_OLD_KEYS`, warns once when journals are not encrypted, and reads a key given
//! as `${secret:NAME}` from Key Vault (the emulator's, over TLS).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fabrik_emulator::{Emulator, EmulatorConfig};

const PLANTED: &str = "conn Server=db;Password=PlantedSecret123!";
const OLD_KEY: &str = "the passphrase before rotation";
const NEW_KEY: &str = "the passphrase after rotation";

fn fabrik(state: &Path, token: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fabrik"));
    c.env_remove("FABRIC_API_BASE_URL")
        .env_remove("FABRIK_STATE_KEY")
        .env_remove("FABRIK_STATE_OLD_KEYS")
        .env("FABRIK_LOG", "warn")
        .env("NO_COLOR", "1")
        .env("FABRIC_TOKEN", token)
        .arg("--state-dir")
        .arg(state)
        .stdin(Stdio::null());
    c
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn emulator_state(emu: &Emulator) -> String {
    reqwest::get(format!("{}/_emulator/state", emu.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn write_config(dir: &Path, description: &str) -> std::path::PathBuf {
    let config = dir.join("fabrik.yaml");
    std::fs::write(
        &config,
        format!(
            "project: {{name: s, prefix: s}}\nworkspaces:\n  - name: one\n    description: \"{description}\"\n"
        ),
    )
    .unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journals_are_encrypted_listed_without_the_key_and_rolled_back_only_with_it() {
    // The first workspace update is carried out, then answered 400: the run fails after it.
    let emu = Emulator::start(EmulatorConfig {
        faults: "PATCH /v1/workspaces/*#1=apply-then-400".parse().unwrap(),
        ..Default::default()
    })
    .await
    .unwrap();
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(3600),
    );
    let base = format!("{}/v1", emu.base_url());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("runs");

    // 1. No key: the workspace is created with a secret-looking description; one warning.
    let config = write_config(dir.path(), PLANTED);
    let out = fabrik(&state, &token)
        .args(["apply", "--base-url", &base, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let warnings = text(&out).matches("run journals are not encrypted").count();
    assert_eq!(warnings, 1, "{}", text(&out));

    // 2. With a key: the update journals the previous (planted) description, then fails and
    //    is left in place.
    let config = write_config(dir.path(), "the new description");
    let out = fabrik(&state, &token)
        .env("FABRIK_STATE_KEY", OLD_KEY)
        .args(["apply", "--no-rollback", "--base-url", &base, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("not encrypted"), "{}", text(&out));
    assert!(emulator_state(&emu).await.contains("the new description"));
    let journals: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let encrypted: Vec<&String> = journals
        .iter()
        .filter(|j| j.contains("\"encryption\""))
        .collect();
    assert_eq!(encrypted.len(), 1);
    assert!(encrypted[0].contains("\"sealed\""), "{}", encrypted[0]);
    assert!(
        !encrypted[0].contains("PlantedSecret123"),
        "{}",
        encrypted[0]
    );

    // 3. `status` lists it without the key.
    let out = fabrik(&state, &token).arg("status").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let run_id = listing
        .lines()
        .find(|l| l.contains("Failed"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no failed run in:\n{listing}"))
        .to_owned();

    // 4. Rollback without the key, or with a wrong one: refused, naming the run, nothing sent.
    let before = emulator_state(&emu).await;
    let out = fabrik(&state, &token)
        .args(["rollback", &run_id, "--base-url", &base])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains(&run_id) && msg.contains("encrypted") && msg.contains("FABRIK_STATE_KEY"),
        "{msg}"
    );
    let out = fabrik(&state, &token)
        .env("FABRIK_STATE_KEY", "a wrong passphrase, long enough")
        .args(["rollback", &run_id, "--base-url", &base])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let msg = text(&out);
    assert!(
        msg.contains(&run_id) && msg.contains("another key"),
        "{msg}"
    );
    assert!(!msg.contains("a wrong passphrase"), "{msg}");
    assert_eq!(
        emulator_state(&emu).await,
        before,
        "a refused rollback changed something"
    );

    // 5. After rotation, the old key listed in FABRIK_STATE_OLD_KEYS opens it.
    let out = fabrik(&state, &token)
        .env("FABRIK_STATE_KEY", NEW_KEY)
        .env(
            "FABRIK_STATE_OLD_KEYS",
            format!("some retired key,\n{OLD_KEY}"),
        )
        .args(["rollback", &run_id, "--base-url", &base])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let after = emulator_state(&emu).await;
    assert!(after.contains("PlantedSecret123") && !after.contains("the new description"));
    emu.shutdown().await.unwrap();
}

/// The Key Vault secret the state passphrase is kept in, and its value.
const VAULT_SECRET: &str = "fabrik-state-passphrase";
const VAULT_PASSPHRASE: &str = "kv-Passphrase-9e41c07b-state";

/// The journals in `state`: (run id, text).
fn journals(state: &Path) -> Vec<(String, String)> {
    std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            let id = p.file_stem().unwrap().to_string_lossy().into_owned();
            (id, std::fs::read_to_string(p).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_key_given_as_a_secret_reference_is_read_from_key_vault() {
    use fabrik_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID};
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let emu = Emulator::start(EmulatorConfig {
        faults: "PATCH /v1/workspaces/*#1=apply-then-400".parse().unwrap(),
        tls: Some(fabrik_emulator::TlsConfig {
            port: 0,
            ca_out: Some(ca.clone()),
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    emu.put_secret(VAULT_SECRET, VAULT_PASSPHRASE);
    let token = emu.mint_token_as(
        "6f1e0d4c-2b3a-4c5d-8e9f-0a1b2c3d4e5f",
        "ServicePrincipal",
        Duration::from_secs(3600),
    );
    let base = format!("{}/v1", emu.base_url());
    let vault = emu.tls_base_url().unwrap().to_owned();
    let state = dir.path().join("runs");
    // Fabric through FABRIC_TOKEN; Key Vault as the emulator's service principal, over TLS.
    let with_vault = |reference: Option<&str>| {
        let mut c = fabrik(&state, &token);
        c.env("FEATURE_USE_AZURE_KEYVAULT", "true")
            .env("KEY_VAULT_URL", &vault)
            .env("AZURE_AUTHORITY_HOST", &vault)
            .env("AZURE_TENANT_ID", DEFAULT_TENANT_ID)
            .env("AZURE_CLIENT_ID", DEFAULT_CLIENT_ID)
            .env("AZURE_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
            .env("FABRIK_CA_CERT", &ca)
            .env("FABRIK_LOG", "debug");
        if let Some(r) = reference {
            c.env("FABRIK_STATE_KEY", r);
        }
        c
    };
    let config = write_config(dir.path(), PLANTED);
    let out = with_vault(None)
        .args(["apply", "--base-url", &base, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // The update journals the previous (planted) description under the key from the vault,
    // then fails and is left in place.
    let config = write_config(dir.path(), "the new description");
    let reference = format!("${{secret:{VAULT_SECRET}}}");
    let out = with_vault(Some(&reference))
        .args(["apply", "--no-rollback", "--base-url", &base, "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("not encrypted"), "{}", text(&out));
    assert!(!text(&out).contains(VAULT_PASSPHRASE), "{}", text(&out));
    let all = journals(&state);
    let sealed: Vec<&(String, String)> = all
        .iter()
        .filter(|(_, j)| j.contains("\"sealed\""))
        .collect();
    assert_eq!(sealed.len(), 1, "{all:?}");
    let (run_id, journal) = sealed[0];
    assert!(!journal.contains("PlantedSecret123"), "{journal}");
    assert!(!journal.contains(VAULT_PASSPHRASE), "{journal}");
    let run_id = run_id.clone();

    // A reference to a secret the vault does not hold: an error naming the variable and the
    // secret, and nothing is sent.
    let before = emulator_state(&emu).await;
    let out = with_vault(Some("${secret:no-such-passphrase}"))
        .args(["rollback", &run_id, "--base-url", &base])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("FABRIK_STATE_KEY") && msg.contains("no-such-passphrase"),
        "{msg}"
    );
    // Without a key the journal stays closed.
    let out = with_vault(None)
        .args(["rollback", &run_id, "--base-url", &base])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("FABRIK_STATE_KEY"), "{}", text(&out));
    assert_eq!(
        emulator_state(&emu).await,
        before,
        "a refused rollback changed something"
    );

    // A new process with the same reference opens it and restores the description.
    let out = with_vault(Some(&reference))
        .args(["rollback", &run_id, "--base-url", &base])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(VAULT_PASSPHRASE), "{}", text(&out));
    let after = emulator_state(&emu).await;
    assert!(after.contains("PlantedSecret123") && !after.contains("the new description"));
    // The passphrase came from the vault (the environment does not hold it).
    let log: serde_json::Value = reqwest::get(format!("{}/_emulator/requests", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reads = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["path"].as_str().unwrap_or_default().trim_end_matches('/')
                == format!("/secrets/{VAULT_SECRET}")
                && r["status"] == 200
        })
        .count();
    assert!(reads >= 2, "{log}");
    emu.shutdown().await.unwrap();
}
