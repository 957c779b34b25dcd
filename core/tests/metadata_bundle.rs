//! The committed metadata bundle: it verifies under the pinned development key, and the
//! bundle tool's build from the vendored sources gives it back byte for byte.

use std::path::Path;

use sunstorm_core::metadata::{build_body, open_bundle, read_manifest, read_seed_hex, seal, DEV_METADATA_PUBLIC_KEY};

fn metadata_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../metadata")
}

#[test]
fn the_dev_seed_is_the_pinned_dev_key() {
    let seed = std::fs::read_to_string(metadata_dir().join("dev-metadata-key.hex")).unwrap();
    let key = read_seed_hex(&seed).unwrap();
    assert_eq!(key.verifying_key().to_bytes(), DEV_METADATA_PUBLIC_KEY);
}

#[test]
fn the_committed_bundle_is_rebuilt_byte_for_byte() {
    let (input, out) = read_manifest(&metadata_dir().join("bundle.json")).unwrap();
    let seed = std::fs::read_to_string(metadata_dir().join("dev-metadata-key.hex")).unwrap();
    let built = build_body(&input).unwrap();
    let bytes = seal(&built.body, &read_seed_hex(&seed).unwrap()).unwrap();
    let committed = std::fs::read(out).unwrap();
    assert!(bytes == committed, "metadata/bundle.cbor is stale: run `sunstorm metadata build`");
    let loaded = open_bundle(&committed, &DEV_METADATA_PUBLIC_KEY, None).unwrap();
    assert_eq!(loaded.version, 2);
    assert!(loaded.set.len() > 300);
}
