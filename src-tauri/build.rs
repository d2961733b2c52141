fn main() {
    // `generate_context!` embeds `ui/dist`, which must exist even when only linting or
    // testing the Rust side: put a page there that says how to build the real UI.
    let dist = std::path::Path::new("../ui/dist");
    if !dist.join("index.html").exists() {
        std::fs::create_dir_all(dist).expect("create ui/dist");
        std::fs::write(
            dist.join("index.html"),
            "<!doctype html><title>Beep Python Host</title><p>The UI is not built: run <code>npm run build</code> in <code>ui/</code>, then rebuild the app.</p>\n",
        )
        .expect("write ui/dist/index.html");
    }
    println!("cargo:rerun-if-changed=../ui/dist");
    tauri_build::build()
}
