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
    for w in plan
        .workspaces
        .iter()
        .filter(|w| !w.changes.is_empty() || !w.unmanaged.is_empty())
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
/// trace ids, what was rolled back or left in place (stdout), and the errors (stderr).
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
    let width = rows.keys().map(|k| k.len()).max().unwrap_or(9).max(9);
    let _ = writeln!(
        out,
        "{:<width$}  {:>7}  {:>7}  {:>7}  {:>7}",
        "WORKSPACE", "CREATED", "UPDATED", "DELETED", "EXISTED"
    );
    for (ws, [c, u, d, e]) in &rows {
        let _ = writeln!(out, "{ws:<width$}  {c:>7}  {u:>7}  {d:>7}  {e:>7}");
    }
    let total = |i: usize| rows.values().map(|r| r[i]).sum::<usize>();
    let deleted = total(2);
    let _ = writeln!(
        out,
        "applied: {} created, {} updated{} (run {}, trace {trace_id})",
        total(0),
        total(1),
        if deleted > 0 {
            format!(", {deleted} deleted")
        } else {
            String::new()
        },
        report.run_id.as_deref().unwrap_or("-"),
    );
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
