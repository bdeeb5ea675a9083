//! The command line: clap's definitions of `fabrik`'s options and commands, parsed once by
//! `main` and read by [`crate::command`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Deploy Microsoft Fabric workspaces from configuration — planned, idempotent, transactional.
#[derive(Debug, Parser)]
#[command(name = "fabrik", version, about)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        default_value = "fabrik.yaml",
        env = "FABRIK_CONFIG"
    )]
    pub config: PathBuf,
    /// The environment to deploy.
    #[arg(long = "env", global = true, default_value = "dev", env = "FABRIK_ENV")]
    pub environment: String,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Feature flag overrides, KEY=VALUE (e.g. retry_logic=off); repeatable.
    #[arg(long = "feature", global = true)]
    pub features: Vec<String>,
    /// The Fabric API root.
    #[arg(long, global = true, env = "FABRIC_API_BASE_URL", default_value = fabrik_client::DEFAULT_BASE_URL)]
    pub base_url: String,
    /// Where run journals are kept.
    #[arg(
        long,
        global = true,
        default_value = ".fabrik/runs",
        env = "FABRIK_STATE_DIR"
    )]
    pub state_dir: PathBuf,
    /// Shared state: an Azure Blob container URL for journals and deployment locks
    /// (https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX], SAS in the query or in
    /// FABRIK_STATE_SAS), or a local directory. Default: `state.url` in the config, else
    /// --state-dir.
    #[arg(
        long = "state",
        global = true,
        env = "FABRIK_STATE",
        hide_env_values = true
    )]
    pub state_url: Option<crate::state::StateLocation>,
    /// How long to wait for the deployment locks of the workspaces a command writes, in
    /// seconds, one deadline for all of them (0: fail at once with exit code 3).
    #[arg(long, global = true, default_value_t = 0)]
    pub lock_timeout: u64,
    /// Calls on the wire at once (and workspaces read at once), across and within workspaces;
    /// changes in progress: four times as many, as most of a change's time is waiting for its
    /// long-running operation, which holds no call (with 1: one change at a time, in the
    /// plan's order). 16 keeps a 50 ms long-running operation from setting the pace
    /// (docs/BENCHMARKS.md).
    #[arg(long, global = true, default_value_t = crate::run::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Deadline for one long-running operation, in seconds.
    #[arg(long, global = true, default_value_t = crate::run::DEFAULT_LRO_TIMEOUT_SECS)]
    pub lro_timeout: u64,
    /// Time limit of one API call in seconds, all its attempts (retries and their waits)
    /// included; each attempt is also cut off after 30 s.
    #[arg(long, global = true, default_value_t = crate::run::DEFAULT_CALL_TIMEOUT_SECS)]
    pub call_timeout: u64,
    /// Deadline of a whole apply, in seconds; past it the run stops and rolls back.
    #[arg(long, global = true)]
    pub run_timeout: Option<u64>,
    /// How to authenticate: client-secret, workload-identity, azure-pipelines,
    /// managed-identity, azure-cli or auto (default: FABRIC_TOKEN if set, else FABRIK_AUTH,
    /// else the automatic chain).
    #[arg(long, global = true)]
    pub auth: Option<String>,
    /// An extra CA certificate (PEM) to trust for Entra ID, Key Vault and Fabric.
    #[arg(long, global = true, env = "FABRIK_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Pace requests to at most this many per second per host (client-side GCRA).
    #[arg(long, global = true, env = "FABRIK_RATE_LIMIT")]
    pub rate_limit: Option<u32>,
    #[allow(missing_docs, reason = "clap would show a doc comment as help")]
    #[command(subcommand)]
    pub command: Command,
}

/// The emulator's options, parsed apart from fabrik's so its `--config` stays its own.
#[derive(Debug, Parser)]
#[command(name = "fabrik emulator", about = "Run the local Fabric emulator")]
pub struct EmulatorCli {
    #[allow(missing_docs, reason = "clap would show a doc comment as help")]
    #[command(flatten)]
    pub args: fabrik_emulator::EmulatorArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
/// How results are written (`--output`).
pub enum Output {
    /// For people.
    Text,
    /// For programs.
    Json,
    /// A summary table, the changes per workspace and a Mermaid graph, for a PR comment.
    Markdown,
}

/// `--lenient`, for the commands that read the configuration's principals files.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct Lenient {
    /// Accept principals-file lines with a bad role or type: warn, and give them the role
    /// Viewer or the type User, instead of failing with exit code 4.
    #[arg(long)]
    pub lenient: bool,
}

/// `--prune`, for the commands that plan the configuration.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct Prune {
    /// Plan (and apply) the deletion of items in managed workspaces that the configuration does
    /// not describe. Deletes run last and cannot be rolled back; deleting a data-bearing item
    /// (a lakehouse, a warehouse, …) also needs --allow-data-loss.
    #[arg(long)]
    pub prune: bool,
}

/// `--refresh`, for the commands that plan published content.
#[derive(Debug, Clone, Copy, Args)]
pub struct Refresh {
    /// With --refresh=false, read no deployed definition of an item whose rendered parts have
    /// the digest the last successful run recorded in the state (as Terraform's
    /// -refresh=false): fewer calls, but a change made to such an item outside fabrik since
    /// that run is not seen. Items the record has no digest for are read as usual.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub refresh: bool,
}

impl Refresh {
    /// As the deployed record sees it.
    pub fn mode(self) -> crate::deployed::Refresh {
        if self.refresh {
            crate::deployed::Refresh::Read
        } else {
            crate::deployed::Refresh::TrustRecord
        }
    }
}

/// `--workspace` and `--shard`, for the commands that plan the configuration's workspaces.
#[derive(Debug, Clone, Default, Args)]
pub struct Select {
    /// Work on this workspace only, by its configured `name:` or its deployed name
    /// (repeatable); the run takes only the locks of the workspaces it selects. An unknown
    /// name is exit code 4.
    #[arg(long = "workspace", value_name = "NAME", conflicts_with = "shard")]
    pub workspaces: Vec<String>,
    /// Work on the I-th of N slices of the workspaces (I from 1 to N): the workspaces sorted
    /// by deployed name, the k-th (from 0) in slice k mod N + 1. N runners given 1/N … N/N
    /// cover every workspace exactly once and run at once.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::select::Shard>,
}

impl Select {
    /// What was selected.
    pub fn selection(&self) -> crate::select::Selection {
        use crate::select::Selection;
        match (&self.shard, self.workspaces.is_empty()) {
            (Some(s), _) => Selection::Shard(*s),
            (None, false) => Selection::Named(self.workspaces.clone()),
            (None, true) => Selection::All,
        }
    }
}

/// `--report`, for the commands that apply a plan.
#[derive(Debug, Clone, Default, Args)]
pub struct Report {
    /// Write a JSON report of the run (plan and result, secrets redacted) to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// `--allow-data-loss`, for the commands that may delete stored data.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct AllowDataLoss {
    /// Carry out a plan that deletes data-bearing items (Lakehouse, Warehouse, SQLDatabase,
    /// Eventhouse, KQLDatabase, MirroredDatabase, CosmosDBDatabase, GraphModel) or a workspace
    /// holding them. Without it such a plan is refused with exit code 4 before any write.
    #[arg(long)]
    pub allow_data_loss: bool,
}

/// The global options `fabrik export` has no use for (it reads one workspace: no environment,
/// no plan to print, no journal, lock or apply deadline), by clap id.
const NOT_FOR_EXPORT: &[&str] = &[
    "environment",
    "output",
    "state_dir",
    "state_url",
    "lock_timeout",
    "run_timeout",
];

impl Cli {
    /// The command line as parsed: [`Cli`]'s definitions, with the global options export
    /// ignores shadowed in `export` by hidden copies (same id, type and default). clap copies a
    /// global option into a subcommand only when the subcommand has none of that id, so
    /// `export --help` leaves them out. They are still accepted (and ignored), so a wrapper
    /// that passes `--state-dir` or `--env` to every fabrik command keeps working.
    pub fn command_line() -> clap::Command {
        let cmd = <Self as clap::CommandFactory>::command();
        let shadows: Vec<clap::Arg> = cmd
            .get_arguments()
            .filter(|a| NOT_FOR_EXPORT.contains(&a.get_id().as_str()))
            .map(|a| a.clone().global(false).hide(true))
            .collect();
        cmd.mut_subcommand("export", |export| export.args(shadows))
    }

    /// Parses `args` (the program name first) with [`Cli::command_line`].
    #[allow(
        clippy::print_stderr,
        reason = "export's ignored options are a warning for the person running fabrik"
    )]
    pub fn try_parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut cmd = Self::command_line();
        let mut matches = cmd.try_get_matches_from_mut(args)?;
        if let Some(("export", export)) = matches.subcommand() {
            // Accepted so a wrapper passing them to every command keeps working, but never
            // silently: the user hears that export does without them.
            let longs = cmd.find_subcommand("export").map(|c| {
                c.get_arguments()
                    .map(|a| (a.get_id().to_string(), a.get_long().unwrap_or_default()))
                    .collect::<Vec<_>>()
            });
            for (id, long) in longs.unwrap_or_default() {
                let given =
                    export.value_source(&id) == Some(clap::parser::ValueSource::CommandLine);
                if given && NOT_FOR_EXPORT.contains(&id.as_str()) {
                    eprintln!("warning: export does not use --{long}; it is ignored");
                }
            }
        }
        <Self as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
            .map_err(|e| e.format(&mut cmd))
    }

    /// `--lenient` of the command, where it has one.
    pub fn lenient(&self) -> bool {
        match &self.command {
            Command::Validate { lenient }
            | Command::Plan { lenient, .. }
            | Command::Apply { lenient, .. }
            | Command::Destroy { lenient, .. }
            | Command::Serve { lenient, .. } => lenient.lenient,
            _ => false,
        }
    }

    /// `--report` of the command, where it has one.
    pub fn report(&self) -> Option<&std::path::Path> {
        match &self.command {
            Command::Apply { report, .. }
            | Command::Publish { report, .. }
            | Command::Destroy { report, .. } => report.report.as_deref(),
            _ => None,
        }
    }

    /// `--workspace`/`--shard` of the command; every workspace where it has none.
    pub fn selection(&self) -> crate::select::Selection {
        match &self.command {
            Command::Plan { select, .. }
            | Command::Apply { select, .. }
            | Command::Destroy { select, .. } => select.selection(),
            _ => crate::select::Selection::All,
        }
    }

    /// `--refresh` of the command (reading every definition where it has none).
    pub fn refresh(&self) -> crate::deployed::Refresh {
        match &self.command {
            Command::Plan { refresh, .. }
            | Command::Apply { refresh, .. }
            | Command::Publish { refresh, .. } => refresh.mode(),
            _ => crate::deployed::Refresh::Read,
        }
    }

    /// `--prune` of the command, where it has one.
    pub fn prune(&self) -> bool {
        match &self.command {
            Command::Plan { prune, .. } | Command::Apply { prune, .. } => prune.prune,
            _ => false,
        }
    }
}

#[derive(Debug, Subcommand)]
/// The commands.
pub enum Command {
    /// Check the configuration, principals and names; send no request. Exit 4 on problems.
    Validate {
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        lenient: Lenient,
    },
    /// Show the effective feature flags and where each value came from.
    Flags,
    /// Print the JSON Schema of the configuration file.
    Schema,
    /// Show what apply would change. Exit 0; with --detailed-exitcode 2 when changes are pending.
    Plan {
        /// 0: no changes, 2: changes pending, 1: error (as Terraform does).
        #[arg(long)]
        detailed_exitcode: bool,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        prune: Prune,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        refresh: Refresh,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        select: Select,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        lenient: Lenient,
    },
    /// Publish the items of a git-format repository (Fabric Git integration's layout, as
    /// fabric-cicd publishes it) into a workspace: plan, skip what did not change, roll back on
    /// failure. Parts are rendered for `--env` as fabric-cicd renders them (logicalIds,
    /// `parameter.yml`, the zero workspace id).
    Publish {
        /// The repository folder (or `core.repository_directory` of --cicd-config).
        #[arg(long, required_unless_present = "cicd_config")]
        repository: Option<PathBuf>,
        /// The target workspace's id (or `core.workspace_id`/`core.workspace` of --cicd-config).
        #[arg(long, required_unless_present = "cicd_config")]
        workspace_id: Option<String>,
        /// fabric-cicd's `config.yml`, resolved for --env: workspace, repository, item types,
        /// parameter file, publish/unpublish filters and skips, features. Flags given beside it
        /// win.
        #[arg(long)]
        cicd_config: Option<PathBuf>,
        /// The `parameter.yml` (default: the repository's, when it has one).
        #[arg(long)]
        parameter: Option<PathBuf>,
        /// Only these item types, comma-separated (default: all 31 fabric-cicd publishes).
        #[arg(long, value_delimiter = ',')]
        item_types: Vec<String>,
        /// A fabric-cicd feature flag (`enable_environment_variable_replacement`,
        /// `disable_workspace_folder_publish`); repeatable.
        #[arg(long)]
        cicd_feature: Vec<String>,
        /// Write creates and updates with bulk imports (`bulkImportDefinitions`, at most 1000
        /// items each, ordered by references) instead of one request per item; types the
        /// API refuses (Warehouse, DataBuildToolJob, shell items) and renames or moves still
        /// go one by one. The plan, the journal and rollback are the same.
        #[arg(long)]
        bulk: bool,
        /// Only show the plan.
        #[arg(long)]
        plan: bool,
        /// Delete deployed items of the repository's types that it no longer holds. Items of
        /// data-bearing types (Lakehouse, Warehouse, …) only with their fabric-cicd
        /// `enable_<type>_unpublish` flag (--cicd-feature or config.yml `features`), which is
        /// also the consent --allow-data-loss otherwise gives.
        #[arg(long)]
        unpublish: bool,
        /// With --plan: 0 no changes, 2 changes pending.
        #[arg(long)]
        detailed_exitcode: bool,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        refresh: Refresh,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        allow_data_loss: AllowDataLoss,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        report: Report,
    },
    /// Write a workspace's items as a git-format repository (folders as directories,
    /// `.platform` with the deployed ids as logicalIds, definition parts, the workspace's own
    /// id as the zero GUID), ready for `fabrik publish` into another workspace.
    Export {
        /// The workspace to export.
        #[arg(long)]
        workspace_id: String,
        /// A new or empty directory to write into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Force-release the deployment locks held by a run that is dead, or with --all every
    /// lock of the environment (shared state only). Asks first unless --yes.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["run_id", "all"])))]
    Unlock {
        /// The run whose locks to release.
        run_id: Option<String>,
        /// Release every deployment lock of the environment (--env), whoever holds it: each
        /// workspace's lock and the journal leases of the runs that held them.
        #[arg(long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Apply the configuration; roll back what this run created if it fails.
    Apply {
        /// Leave what was done in place on failure.
        #[arg(long)]
        no_rollback: bool,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        prune: Prune,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        refresh: Refresh,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        allow_data_loss: AllowDataLoss,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        report: Report,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        select: Select,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        lenient: Lenient,
    },
    /// Keep the deployment reconciled: apply on an interval and when the config file changes;
    /// serve /health/live, /health/ready and /metrics; stop on SIGTERM after the run in flight.
    Serve {
        /// Seconds between reconciliations.
        #[arg(long, default_value_t = 300)]
        interval: u64,
        /// Address for the health and metrics endpoints.
        #[arg(long, default_value = "127.0.0.1:9464")]
        listen: String,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        lenient: Lenient,
    },
    /// Remove what the configuration describes (asks first unless --yes): a plan of deletes,
    /// journaled like every run. Data-bearing items published from a workspace's
    /// `repository:` are kept unless their fabric-cicd `enable_<type>_unpublish` flag is given;
    /// deleting a configured lakehouse, or a workspace that holds data-bearing items, needs
    /// --allow-data-loss.
    Destroy {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// A fabric-cicd feature flag (`enable_lakehouse_unpublish`, …); repeatable.
        #[arg(long)]
        cicd_feature: Vec<String>,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        allow_data_loss: AllowDataLoss,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        report: Report,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        select: Select,
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(flatten)]
        lenient: Lenient,
    },
    /// Undo a failed or crashed run from its journal.
    Rollback {
        /// The run id (see `fabrik status`).
        run_id: String,
    },
    /// List runs and their state.
    Status,
    /// Run the local Fabric emulator (`fabrik emulator --help` lists its options).
    #[command(disable_help_flag = true)]
    Emulator {
        /// The emulator's own options, passed through (its `--config` is its own config file).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check the credentials: get a token for the Fabric API the way every command does, and
    /// make one read with it. Exit 0 when both work.
    Auth {
        #[allow(missing_docs, reason = "clap would show a doc comment as help")]
        #[command(subcommand)]
        what: AuthCommand,
    },
    /// Start the emulator in-process, apply examples/ to it, and show that a second plan is empty.
    Demo {
        /// The example configuration.
        #[arg(long, default_value = "examples/fabrik.yaml")]
        example: PathBuf,
    },
}

/// Exit codes (docs/CLI.md): 0 success; 1 an error while running; 2 changes pending (only
/// `plan --detailed-exitcode`); 3 locked by another run; 4 invalid input (command line,
/// configuration, principals or flags; nothing was sent). Invalid input has its own code so a
/// CI gate on `plan --detailed-exitcode` never reads a typo as "changes pending".
pub const INVALID_INPUT: u8 = 4;

#[derive(Debug, Subcommand)]
/// `fabrik auth` subcommands.
pub enum AuthCommand {
    /// Get a token (FABRIC_TOKEN, --auth / FABRIK_AUTH, or the automatic chain) and list the
    /// workspaces it can see; print which credential answered, never the token.
    Check,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parsed_command_line_never_shows_a_sas() {
        let sas = "sv=2024-08-04&sig=Zm9vYmFyc2VjcmV0";
        let url = format!("https://acct.blob.core.windows.net/state?{sas}");
        let cli = Cli::try_parse_args(["fabrik", "status", "--state", &url]).unwrap();
        let shown = format!("{cli:?}");
        assert!(!shown.contains("Zm9vYmFyc2VjcmV0"), "{shown}");
        assert!(
            shown.contains("acct.blob.core.windows.net/state?[redacted]"),
            "{shown}"
        );
        // The value itself is kept for the state backend.
        assert_eq!(
            cli.state_url.as_ref().map(|s| s.as_str()),
            Some(url.as_str())
        );
    }
}
