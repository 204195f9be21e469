//! The publish payload, as the API receives it: any bytes parsed as a publish request, then
//! validated as Herald does before storing. Validation may refuse, never panic; what it accepts
//! keeps the promises the rest of Herald relies on, and its description renders to HTML with
//! nothing executable left.
#![no_main]

use herald_model::PublishRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<PublishRequest>(data) else { return };
    let base = url::Url::parse("https://herald.example/base").unwrap();
    let Ok(payload) = herald_core::notifications::validate_payload(&request.payload, &base) else { return };
    assert!(!payload.title.is_empty() && payload.title.trim() == payload.title, "title {:?}", payload.title);
    if let Some(link) = &payload.link {
        assert!(link.starts_with("http://") || link.starts_with("https://"), "link {link:?}");
    }
    if let Some(description) = &payload.description {
        let html = herald_core::markdown::render(description).to_ascii_lowercase();
        assert!(!html.contains("<script"), "script in {html:?}");
        assert!(!html.contains("javascript:"), "javascript: in {html:?}");
        assert!(!html.contains("<iframe") && !html.contains("<style"), "embedded content in {html:?}");
        for attr in html.split(|c: char| c.is_whitespace() || c == '<').skip(1) {
            assert!(!(attr.starts_with("on") && attr.contains('=')), "event handler {attr:?} in {html:?}");
        }
    }
});
