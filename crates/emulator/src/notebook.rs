//! Notebook definitions in both of the service's formats: the git source
//! (`notebook-content.py`, `fabricGitSource`) and Jupyter (`notebook-content.ipynb`,
//! `ipynb`). `getDefinition?format=` converts between them as the service does.
//!
//! The git source is `# Fabric notebook source`, then blocks opened by marker lines:
//! `# METADATA` (a JSON object on `# META ` lines; the first is the notebook's, later ones
//! belong to the cell before them), `# CELL` (code), `# MARKDOWN` (lines prefixed `# `) and
//! `# PARAMETERS` (a code cell tagged `parameters`).

use serde_json::{Map, Value, json};

use crate::store::Definition;

const HEADER: &str = "# Fabric notebook source";
const STARS: &str = " ********************";

/// One cell: kind (`code`/`markdown`), whether it is the parameters cell, source lines,
/// metadata.
struct Cell {
    markdown: bool,
    parameters: bool,
    lines: Vec<String>,
    metadata: Map<String, Value>,
}

/// Drops the blank lines the format puts around each block.
fn trimmed(lines: &[String]) -> Vec<String> {
    let start = lines.iter().position(|l| !l.trim().is_empty());
    let end = lines.iter().rposition(|l| !l.trim().is_empty());
    match (start, end) {
        (Some(s), Some(e)) => lines[s..=e].to_vec(),
        _ => Vec::new(),
    }
}

/// The git source as Jupyter JSON, or `None` when it is not the git source format.
pub(crate) fn py_to_ipynb(source: &str) -> Option<String> {
    let mut lines = source.lines();
    if lines.next()?.trim_end() != HEADER {
        return None;
    }
    let mut notebook_meta = Map::new();
    let mut cells: Vec<Cell> = Vec::new();
    // (marker, lines) for each block in order.
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    for line in lines {
        match line.strip_prefix("# ").and_then(|l| l.strip_suffix(STARS)) {
            Some(marker) if marker.chars().all(|c| c.is_ascii_uppercase()) => {
                blocks.push((marker.to_string(), Vec::new()));
            }
            _ => match blocks.last_mut() {
                Some(b) => b.1.push(line.to_string()),
                // Before the first block: blank lines only.
                None if line.trim().is_empty() => {}
                None => return None,
            },
        }
    }
    for (marker, body) in blocks {
        let body = trimmed(&body);
        match marker.as_str() {
            "METADATA" => {
                let json: String = body
                    .iter()
                    .map(|l| l.strip_prefix("# META").unwrap_or(l).trim_start())
                    .collect::<Vec<_>>()
                    .join("\n");
                let meta = match serde_json::from_str::<Value>(&json).ok()? {
                    Value::Object(m) => m,
                    _ => return None,
                };
                match cells.last_mut() {
                    Some(c) => c.metadata = meta,
                    None => notebook_meta = meta,
                }
            }
            "CELL" | "PARAMETERS" => cells.push(Cell {
                markdown: false,
                parameters: marker == "PARAMETERS",
                lines: body,
                metadata: Map::new(),
            }),
            "MARKDOWN" => cells.push(Cell {
                markdown: true,
                parameters: false,
                lines: body
                    .iter()
                    .map(|l| {
                        l.strip_prefix("# ")
                            .unwrap_or(l.trim_start_matches('#'))
                            .to_string()
                    })
                    .collect(),
                metadata: Map::new(),
            }),
            _ => return None,
        }
    }
    let cells: Vec<Value> = cells
        .into_iter()
        .map(|c| {
            let n = c.lines.len();
            let source: Vec<String> = c
                .lines
                .into_iter()
                .enumerate()
                .map(|(i, l)| if i + 1 < n { format!("{l}\n") } else { l })
                .collect();
            let mut metadata = c.metadata;
            if c.parameters {
                metadata.insert("tags".into(), json!(["parameters"]));
            }
            if c.markdown {
                json!({"cell_type": "markdown", "source": source, "metadata": metadata})
            } else {
                json!({"cell_type": "code", "source": source, "metadata": metadata, "outputs": [], "execution_count": null})
            }
        })
        .collect();
    let nb = json!({"nbformat": 4, "nbformat_minor": 5, "metadata": notebook_meta, "cells": cells});
    serde_json::to_string_pretty(&nb).ok()
}

/// Jupyter JSON as the git source, or `None` when it is not a notebook.
pub(crate) fn ipynb_to_py(ipynb: &str) -> Option<String> {
    let nb: Value = serde_json::from_str(ipynb).ok()?;
    let meta_block = |m: &Value| -> String {
        let pretty = serde_json::to_string_pretty(m).unwrap_or_else(|_| "{}".into());
        let lines: Vec<String> = pretty.lines().map(|l| format!("# META {l}")).collect();
        format!("# METADATA{STARS}\n\n{}\n\n", lines.join("\n"))
    };
    let mut out = format!("{HEADER}\n\n");
    if let Some(m) = nb
        .get("metadata")
        .filter(|m| m.as_object().is_some_and(|m| !m.is_empty()))
    {
        out.push_str(&meta_block(m));
    }
    for cell in nb.get("cells")?.as_array()? {
        let source = match &cell["source"] {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect::<String>(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        };
        let mut meta = cell.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let parameters = meta["tags"]
            .as_array()
            .is_some_and(|t| t.iter().any(|x| x == "parameters"));
        if let Some(m) = meta.as_object_mut() {
            m.remove("tags");
        }
        match cell["cell_type"].as_str()? {
            "markdown" => {
                let body: Vec<String> = source.lines().map(|l| format!("# {l}")).collect();
                out.push_str(&format!("# MARKDOWN{STARS}\n\n{}\n\n", body.join("\n")));
            }
            _ => {
                let marker = if parameters { "PARAMETERS" } else { "CELL" };
                out.push_str(&format!("# {marker}{STARS}\n\n{}\n\n", source.trim_end()));
                if meta.as_object().is_some_and(|m| !m.is_empty()) {
                    out.push_str(&meta_block(&meta));
                }
            }
        }
    }
    Some(out.trim_end().to_string() + "\n")
}

/// Rewrites a notebook definition's content part into `format` (`ipynb` or
/// `fabricGitSource`) when it is in the other one; anything it cannot read stays as stored.
pub(crate) fn convert(def: &mut Definition, format: &str) {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    type Converter = fn(&str) -> Option<String>;
    let (from, to, f): (&str, &str, Converter) = match format {
        "ipynb" => ("notebook-content.py", "notebook-content.ipynb", py_to_ipynb),
        "fabricGitSource" => ("notebook-content.ipynb", "notebook-content.py", ipynb_to_py),
        _ => return,
    };
    for part in def.parts.iter_mut().filter(|p| p.path == from) {
        let converted = engine
            .decode(part.payload.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|text| f(&text));
        if let Some(text) = converted {
            part.path = to.to_string();
            part.payload = engine.encode(text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PY: &str = "# Fabric notebook source\n\n# METADATA ********************\n\n# META {\n# META   \"kernel_info\": {\n# META     \"name\": \"synapse_pyspark\"\n# META   }\n# META }\n\n# MARKDOWN ********************\n\n# # Title\n# text\n\n# PARAMETERS ********************\n\nx = 1\n\n# CELL ********************\n\ndf = spark.sql(\"select 1\")\ndisplay(df)\n\n# METADATA ********************\n\n# META {\n# META   \"language\": \"python\"\n# META }\n";

    #[test]
    fn git_source_and_ipynb_convert_both_ways() {
        let nb: Value = serde_json::from_str(&py_to_ipynb(PY).unwrap()).unwrap();
        assert_eq!(nb["metadata"]["kernel_info"]["name"], "synapse_pyspark");
        let cells = nb["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 3);
        assert_eq!(cells[0]["cell_type"], "markdown");
        assert_eq!(cells[0]["source"], json!(["# Title\n", "text"]));
        assert_eq!(cells[1]["metadata"]["tags"], json!(["parameters"]));
        assert_eq!(
            cells[2]["source"],
            json!(["df = spark.sql(\"select 1\")\n", "display(df)"])
        );
        assert_eq!(cells[2]["metadata"]["language"], "python");
        // And back, to the same source.
        assert_eq!(ipynb_to_py(&nb.to_string()).unwrap(), PY);
        assert!(py_to_ipynb("print(1)\n").is_none());
        assert!(ipynb_to_py("not json").is_none());
    }
}
