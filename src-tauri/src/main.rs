// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    // SAFETY: first thing in `main`, before any thread is started.
    unsafe { beep_host_gui::webview::prepare() };
    beep_host_gui::run()
}
