//! The WebAssembly entry point: hydrates the page the server rendered.

/// Called by the hydration script once the bundle has loaded.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    herald_app::hydrate();
}
