//! Plans for people: the terminal's text, and Markdown for a pull-request comment (a summary
//! table, the changes per workspace, and a Mermaid diagram of the dependency graph, which
//! GitHub and Azure DevOps render).

use std::fmt::Write as _;

use crate::plan::{Action, Plan};
use crate::run::ApplyReport;

/// The plan as the terminal shows it: `+` create, `~` update, `-` delete, `?` left alone.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    for w in &plan.workspaces {
        if w.changes.is_empty() {
            let _ = writeln!(out, "workspace {}: no changes", w.name);
        } else {
            let _ = writeln!(out, "workspace {}:", w.name);
        }
        for c in &w.changes {
            let loss = c
                .data_loss()
                .map(|l| format!(" [DATA LOSS: {}]", l.reason))
                .unwrap_or_default();
            match &c.detail {
                Some(d) => writeln!(out, "  {} {} ({d}){loss}", c.action.sign(), c.target),
                None => writeln!(out, "  {} {}{loss}", c.action.sign(), c.target),
            }
            .unwrap_or(());
        }
        for u in &w.unmanaged {
            let _ = writeln!(out, "  ? {u} (not in the config; left alone)");
        }
        if let Some(r) = crate::publish::publisher::DefinitionReads::of_plan(w) {
            let _ = writeln!(out, "  deployed definitions read by {}", r.describe());
        }
    }
    let _ = writeln!(out, "{}", summary(plan));
    out
}

/// `plan: 3 to create, 1 to update` (and deletes when there are any, and how many of them
/// destroy data).
pub fn summary(plan: &Plan) -> String {
    let deletes = plan.count(Action::Delete);
    let mut s = format!(
        "plan: {} to create, {} to update",
        plan.count(Action::Create),
        plan.count(Action::Update)
    );
    if deletes > 0 {
        let _ = write!(s, ", {deletes} to delete");
    }
    let losses = plan.data_loss().len();
    if losses > 0 {
        let _ = write!(s, " ({losses} destroying stored data)");
    }
    s
}

/// Markdown text is untrusted in a table cell or a Mermaid label: keep it on one line and
/// escape what would end the cell, the label or start markup.
fn md_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\n', '\r'], " ")
}

fn mermaid_label(s: &str) -> String {
    s.replace('"', "#quot;").replace(['\n', '\r'], " ")
}

/// The plan as Markdown for a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    let mut out = String::from("## fabrik plan\n\n");
    let losses = plan.data_loss();
    if !losses.is_empty() {
        let _ = writeln!(
            out,
            "**⚠️ Data loss: {} change(s) of this plan destroy stored data:**\n",
            losses.len()
        );
        for (w, c, l) in &losses {
            let _ = writeln!(
                out,
                "- **{}: `-` {} — {}**",
                md_escape(&w.name),
                md_escape(&c.target),
                md_escape(&l.reason)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "**{}**\n", summary(plan));
    out.push_str(
        "| workspace | create | update | delete | left alone |\n|---|---:|---:|---:|---:|\n",
    );
    for w in &plan.workspaces {
        let n = |a: Action| w.changes.iter().filter(|c| c.action == a).count();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            md_escape(&w.name),
            n(Action::Create),
            n(Action::Update),
            n(Action::Delete),
            w.unmanaged.len()
        );
    }
    for (w, reads) in plan
        .workspaces
        .iter()
        .map(|w| (w, crate::publish::publisher::DefinitionReads::of_plan(w)))
        .filter(|(w, reads)| !w.changes.is_empty() || !w.unmanaged.is_empty() || reads.is_some())
    {
        let _ = writeln!(out, "\n### {}\n", md_escape(&w.name));
        for c in &w.changes {
            let detail = c
                .detail
                .as_deref()
                .map(|d| format!(" — {}", md_escape(d)))
                .unwrap_or_default();
            let loss = if c.data_loss().is_some() {
                " **(data loss)**"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "- `{}` {}{detail}{loss}",
                c.action.sign(),
                md_escape(&c.target)
            );
        }
        for u in &w.unmanaged {
            let _ = writeln!(
                out,
                "- `?` {} (not in the config; left alone)",
                md_escape(u)
            );
        }
        if let Some(r) = reads {
            let _ = writeln!(
                out,
                "\nDeployed definitions read by {}.",
                md_escape(&r.describe())
            );
        }
    }
    if plan.change_count() > 0 {
        out.push_str("\n### Order\n\nEach change starts once the changes it points from are done; deletes run after everything else.\n\n```mermaid\nflowchart LR\n");
        let mut id = 0;
        for w in &plan.workspaces {
            if w.changes.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  subgraph ws{id}w[\"{}\"]", mermaid_label(&w.name));
            for c in &w.changes {
                let _ = writeln!(
                    out,
                    "    c{id}[\"{} {}\"]",
                    c.action.sign(),
                    mermaid_label(&c.target)
                );
                id += 1;
            }
            out.push_str("  end\n");
        }
        for (from, to) in plan.graph.edges() {
            let _ = writeln!(out, "  c{from} --> c{to}");
        }
        out.push_str("```\n");
    }
    out
}

/// What an apply did, for the terminal: a table per workspace, the totals with the run and
/// trace ids — or, for a failed run, that it failed and what was rolled back or left in
/// place — (stdout), and the errors (stderr).
pub fn apply_report(report: &ApplyReport, trace_id: &str) -> (String, String) {
    let mut out = String::new();
    let mut err = String::new();
    let mut rows: std::collections::BTreeMap<&str, [usize; 4]> = Default::default();
    for a in &report.applied {
        let row = rows.entry(a.workspace.as_str()).or_default();
        match a.outcome {
            "created" => row[0] += 1,
            "updated" => row[1] += 1,
            "deleted" => row[2] += 1,
            _ => row[3] += 1,
        }
    }
    let undone = report.outcome() == "rolled_back";
    // A run whose changes were all undone has nothing to tabulate: the table would read as
    // applied.
    if !undone {
        let width = rows.keys().map(|k| k.len()).max().unwrap_or(9).max(9);
        let _ = writeln!(
            out,
            "{:<width$}  {:>7}  {:>7}  {:>7}  {:>7}",
            "WORKSPACE", "CREATED", "UPDATED", "DELETED", "EXISTED"
        );
        for (ws, [c, u, d, e]) in &rows {
            let _ = writeln!(out, "{ws:<width$}  {c:>7}  {u:>7}  {d:>7}  {e:>7}");
        }
    }
    let total = |i: usize| rows.values().map(|r| r[i]).sum::<usize>();
    let deleted = total(2);
    let counts = format!(
        "{} created, {} updated{}",
        total(0),
        total(1),
        if deleted > 0 {
            format!(", {deleted} deleted")
        } else {
            String::new()
        },
    );
    let ids = format!(
        "(run {}, trace {trace_id})",
        report.run_id.as_deref().unwrap_or("-")
    );
    let errors = report.errors.len();
    let _ = match report.outcome() {
        "succeeded" => writeln!(out, "applied: {counts} {ids}"),
        _ if !report.rollback_errors.is_empty() => writeln!(
            out,
            "failed: {errors} error(s), and the rollback failed too ({} rollback error(s)); what it could not undo is still in place ({counts} before the failure) {ids}",
            report.rollback_errors.len()
        ),
        _ if report.rolled_back.is_empty() && report.left_in_place.is_empty() => writeln!(
            out,
            "failed: {errors} error(s); nothing was left changed {ids}"
        ),
        "rolled_back" => writeln!(
            out,
            "failed: {errors} error(s); all {} change(s) made before the failure were rolled back, nothing is applied {ids}",
            report.rolled_back.len()
        ),
        _ => writeln!(
            out,
            "failed: {errors} error(s); not rolled back: {counts} left in place {ids}"
        ),
    };
    for e in &report.errors {
        let _ = writeln!(err, "error: {e}");
    }
    if !report.rolled_back.is_empty() {
        let _ = writeln!(out, "rolled back {} change(s):", report.rolled_back.len());
        for r in &report.rolled_back {
            let _ = writeln!(out, "  - {r}");
        }
    }
    if !report.left_in_place.is_empty() {
        let _ = writeln!(
            out,
            "left in place ({} change(s)); undo later with `fabrik rollback {}`",
            report.left_in_place.len(),
            report.run_id.as_deref().unwrap_or("RUN_ID")
        );
    }
    for e in &report.rollback_errors {
        let _ = writeln!(err, "rollback error: {e}");
    }
    (out, err)
}

/// The workspaces an apply made or used, `name  id`, for the commands that come next
/// (`fabrik publish --workspace-id`).
pub fn workspace_ids(ids: &[(String, String)]) -> String {
    let mut out = String::new();
    if ids.is_empty() {
        return out;
    }
    let width = ids.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let _ = writeln!(out, "workspaces:");
    for (name, id) in ids {
        let _ = writeln!(out, "  {name:<width$}  {id}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Applied;

    fn report(errors: usize, rolled_back: usize, left: usize, rb_errors: usize) -> ApplyReport {
        let n = |k: usize, what: &str| (0..k).map(|i| format!("{what} {i}")).collect::<Vec<_>>();
        ApplyReport {
            run_id: Some("R".into()),
            applied: vec![
                Applied {
                    workspace: "w".into(),
                    target: "workspace w".into(),
                    outcome: "created",
                },
                Applied {
                    workspace: "w".into(),
                    target: "lakehouse l".into(),
                    outcome: "updated",
                },
            ],
            errors: n(errors, "boom"),
            rolled_back: n(rolled_back, "undo"),
            rollback_errors: n(rb_errors, "stuck"),
            left_in_place: n(left, "kept"),
        }
    }

    #[test]
    fn a_failed_run_never_reads_as_applied() {
        let (out, err) = apply_report(&report(0, 0, 0, 0), "T");
        assert!(
            out.contains("applied: 1 created, 1 updated (run R, trace T)"),
            "{out}"
        );
        assert!(out.contains("WORKSPACE") && err.is_empty(), "{out}");

        let (out, err) = apply_report(&report(1, 2, 0, 0), "T");
        assert!(
            !out.contains("applied:") && !out.contains("WORKSPACE"),
            "{out}"
        );
        assert!(
            out.contains("failed: 1 error(s); all 2 change(s) made before the failure were rolled back, nothing is applied (run R, trace T)"),
            "{out}"
        );
        assert!(out.contains("rolled back 2 change(s):"), "{out}");
        assert_eq!(err, "error: boom 0\n");

        let (out, _) = apply_report(&report(1, 0, 2, 0), "T");
        assert!(
            out.contains("failed: 1 error(s); not rolled back: 1 created, 1 updated left in place"),
            "{out}"
        );
        let (out, err) = apply_report(&report(1, 1, 0, 1), "T");
        assert!(out.contains("the rollback failed too"), "{out}");
        assert!(err.contains("rollback error: stuck 0"), "{err}");
        let (out, _) = apply_report(
            &ApplyReport {
                applied: vec![],
                ..report(1, 0, 0, 0)
            },
            "T",
        );
        assert!(
            out.contains("failed: 1 error(s); nothing was left changed"),
            "{out}"
        );
    }

    #[test]
    fn workspace_ids_are_listed_by_name() {
        assert_eq!(workspace_ids(&[]), "");
        assert_eq!(
            workspace_ids(&[("a-long".into(), "1".into()), ("b".into(), "2".into())]),
            "workspaces:\n  a-long  1\n  b       2\n"
        );
    }
}
