//! Rebuild when anything under `sql/` changes: `include_dir!` (the embedded migrations) cannot
//! tell Cargo about files added to its folder on stable Rust, so a new migration would otherwise
//! be silently left out of the binary.
fn main() {
    println!("cargo:rerun-if-changed=sql");
}
