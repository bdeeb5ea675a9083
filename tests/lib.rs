//! Workspace-level end-to-end tests of fabrik; the scenarios live in `tests/e2e/`.
