//! WebKitGTK settings for this UI: a few small local pages with a live table, no browsing.
//!
//! Measured under Xvfb (bench/gui.sh): with WebKit's default policy the page is composited
//! with OpenGL, which without a GPU is Mesa's llvmpipe, and three quarters of the web
//! process's CPU went to the llvmpipe threads while the Backends page updated. Painting
//! without compositing costs a fraction of that and less memory; the page has no
//! animation, video or WebGL that compositing would help.

/// Before the first webview exists: paint without compositing from the start (the
/// setting in [`tune`] arrives once the page is already loading, and the web process keeps
/// ~7 MB from its composited start). A value the user set is left alone.
///
/// # Safety
/// Call before any other thread runs (it sets an environment variable).
pub unsafe fn prepare() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() {
        // SAFETY: the caller guarantees no other thread reads or writes the environment.
        unsafe { std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1") };
    }
}

/// Apply the settings to the window's webview (a no-op off Linux, where the system webview
/// is not WebKitGTK).
pub fn tune(window: &tauri::WebviewWindow) {
    #[cfg(target_os = "linux")]
    if let Err(e) = window.with_webview(|webview| linux::tune(&webview.inner())) {
        tracing::warn!("Failed to reach the webview to tune it: {e}");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = window;
}

/// The same settings on a WebKitGTK view made without Tauri (the engine's memory floor,
/// `examples/webview_floor.rs`).
#[cfg(target_os = "linux")]
pub fn tune_view(view: &webkit2gtk::WebView) {
    linux::tune(view);
}

#[cfg(target_os = "linux")]
mod linux {
    use webkit2gtk::{
        CacheModel, HardwareAccelerationPolicy, SettingsExt, WebContextExt, WebView, WebViewExt,
    };

    pub fn tune(view: &WebView) {
        if let Some(settings) = WebViewExt::settings(view) {
            // `WEBKIT_DISABLE_COMPOSITING_MODE=0` (a machine with a GPU that wants it) keeps
            // WebKit's own policy.
            if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none_or(|v| v != "0") {
                settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
            }
            // One page that never navigates back: nothing to keep for back/forward.
            settings.set_enable_page_cache(false);
            settings.set_enable_webgl(false);
        }
        if let Some(context) = view.context() {
            // Small in-memory caches: the assets are local and loaded once.
            context.set_cache_model(CacheModel::DocumentViewer);
        }
    }
}
