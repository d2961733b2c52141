//! `ui/src/bindings.ts` is what `specta_builder()` generates: regenerate and compare.
//! `UPDATE_BINDINGS=1 cargo test -p beep-host-gui --test bindings` rewrites it.

use std::path::Path;

#[test]
fn bindings_are_up_to_date() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join(beep_host_gui::BINDINGS);
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        beep_host_gui::export_bindings(&committed);
        return;
    }
    let dir = tempfile_dir();
    let fresh = dir.join("bindings.ts");
    beep_host_gui::export_bindings(&fresh);
    let fresh = std::fs::read_to_string(&fresh).unwrap();
    let old = std::fs::read_to_string(&committed).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        fresh == old,
        "ui/src/bindings.ts is stale: run `UPDATE_BINDINGS=1 cargo test -p beep-host-gui --test bindings` and commit it"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("beep-bindings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
