//! Project automation: `cargo xtask ci`, `deny`, `bench`, `release`.

fn main() {}
