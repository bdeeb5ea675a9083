//! `fabrik`: deploy Microsoft Fabric workspaces from configuration.

fn main() {
    let _ = fabrik_core::Flag::ALL;
}
