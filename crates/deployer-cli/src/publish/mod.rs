//! Publishing Fabric items from git-format repositories, the way fabric-cicd 1.4.0 does.
//!
//! `parameter` reads `parameter.yml` and renders item parts for one environment.

pub mod parameter;
