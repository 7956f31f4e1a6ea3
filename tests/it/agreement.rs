//! The one place the job and the sandbox are held in agreement. Each states Understory's paths
//! and scopes on its own (the job in `src/streams/`, the sandbox in its `resources/`, both from
//! `docs/understory-api.md`), so a wrong path in the job fails here instead of being mirrored by
//! a sandbox that borrowed it.

use understory_sandbox::resources::served;
use understory_sync::streams;

/// The sandbox serves what the job copies: one resource per stream, in the same order, at the
/// same path and scope, under the same parent.
#[test]
fn every_stream_has_its_resource_and_they_agree() {
    let served = served();
    let resources: Vec<&str> = served.iter().map(|r| r.stream).collect();
    let names: Vec<&str> = streams::ALL.iter().map(|s| s.name).collect();
    assert_eq!(resources, names);
    for (r, s) in served.iter().zip(streams::ALL) {
        assert_eq!(r.scope, s.scope, "{}", s.name);
        match (r.parent, s.parent()) {
            (None, None) => assert_eq!(r.path, format!("/{}", s.path), "{}", s.name),
            (Some(parent), Some(theirs)) => {
                assert_eq!(parent, theirs.name, "{}", s.name);
                assert_eq!(r.path, s.path, "{}", s.name);
            }
            _ => panic!("{}: a list in one and per-parent in the other", s.name),
        }
    }
}
