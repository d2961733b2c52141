//! The engine's floor under the app's memory (a benchmark anchor, not part of the app): one
//! GTK window with one WebKitGTK view, tuned as the app tunes its own (`webview.rs`), showing
//! a static page about the size of the Environments list. No Tauri, no core, no IPC.
//!
//! `ui/e2e/bench.mjs` starts it next to the app and sums the PSS of its process tree the
//! same way, so the app's own share is the difference.
#![allow(clippy::print_stderr)]

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("webview_floor measures WebKitGTK; it runs on Linux only");
}

#[cfg(target_os = "linux")]
mod linux {
    use gtk::prelude::*;
    use webkit2gtk::{WebView, WebViewExt};

    pub fn main() {
        // SAFETY: no other thread exists yet.
        unsafe { beep_host_gui::webview::prepare() };
        gtk::init().expect("GTK starts (is DISPLAY set?)");
        let window = gtk::Window::new(gtk::WindowType::Toplevel);
        window.set_title("webview floor");
        window.set_default_size(1200, 800);
        let view = WebView::new();
        beep_host_gui::webview::tune_view(&view);
        view.load_html(&page(), None);
        window.add(&view);
        window.connect_destroy(|_| gtk::main_quit());
        window.show_all();
        gtk::main();
    }

    /// A table of ten environments, styled like the app's list.
    fn page() -> String {
        let rows: String = (0..10)
            .map(|i| {
                format!(
                    "<tr><td>env{i}</td><td>3.11.7</td><td>{}</td><td>{} MB</td><td>ok</td></tr>",
                    i * 3,
                    20 + i
                )
            })
            .collect();
        format!(
            "<!doctype html><html><head><meta charset=utf-8><style>\
             body{{font:14px system-ui,sans-serif;margin:0;display:flex}}\
             nav{{width:180px;background:#f3f4f6;height:100vh;padding:12px}}\
             main{{padding:16px;flex:1}}table{{border-collapse:collapse;width:100%}}\
             td,th{{border-bottom:1px solid #ddd;padding:6px;text-align:left}}\
             </style></head><body><nav>Runtimes<br>Environments<br>Backends<br>Settings</nav>\
             <main><h1>Environments</h1><table><thead><tr><th>Name</th><th>Python</th>\
             <th>Packages</th><th>Size</th><th>Health</th></tr></thead><tbody>{rows}</tbody>\
             </table></main></body></html>"
        )
    }
}
