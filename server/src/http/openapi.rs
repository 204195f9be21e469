//! The OpenAPI 3.1 description served at `/api/openapi.json`. Its paths come from the same
//! registrations that build the router (utoipa-axum), so the two cannot drift apart.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Deprecated, OpenApi as Document};
use utoipa::{Modify, OpenApi};

use super::notifications::LEGACY_ALIASES;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald",
        description = "A self-hosted notification hub. The notifications API is shape-compatible with Backstage's notifications REST API; Herald's additions are optional fields and parameters.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&Security),
    tags(
        (name = "publish", description = "For publishers with a service token"),
        (name = "inbox", description = "A user's notifications (session or personal token)"),
        (name = "settings", description = "A user's channel, origin and topic settings"),
        (name = "live", description = "The live event stream"),
        (name = "operations", description = "Probes, metrics and the delivery outbox"),
    ),
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A service token (hrld_s_…) to publish, or a personal token (hrld_p_…) to read"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                herald_core::auth::SESSION_COOKIE,
                "The browser session after signing in",
            ))),
        );
    }
}

/// Assembles the document from the API's and the operations' route registrations.
pub fn document(api: Document, deliveries: Document, operations: Document) -> Document {
    let mut doc = ApiDoc::openapi().nest("/api/notifications", api);
    doc.merge(deliveries);
    doc.merge(operations);
    // Backstage's legacy aliases: the same operations at the mount root, marked deprecated.
    for (alias, target) in LEGACY_ALIASES {
        let target = format!("/api/notifications{target}");
        let alias = format!("/api/notifications{}", alias.trim_end_matches('/'));
        let Some(mut item) = doc.paths.paths.get(&target).cloned() else { continue };
        for op in [&mut item.get, &mut item.post].into_iter().flatten() {
            op.deprecated = Some(Deprecated::True);
            op.operation_id = op.operation_id.take().map(|id| format!("{id}_legacy"));
            op.summary = Some(format!("Legacy alias of {target}"));
        }
        doc.paths.paths.insert(alias, item);
    }
    document_common_errors(&mut doc);
    doc
}

/// Answers every API route can give besides its own: 403 (credentials that do not allow it,
/// such as a service token on a user's route), 429 from the rate limits, and for a route with
/// a body 413 (too large) and 415 (not JSON).
fn document_common_errors(doc: &mut Document) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
                )
                .build(),
        )
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/api/") {
            continue;
        }
        for op in [&mut item.get, &mut item.post].into_iter().flatten() {
            let has_body = op.request_body.is_some();
            let responses = &mut op.responses.responses;
            responses.entry("403".into()).or_insert_with(|| error("These credentials do not allow this"));
            responses.entry("429".into()).or_insert_with(|| error("Rate limit exceeded; see Retry-After"));
            if has_body {
                responses.entry("413".into()).or_insert_with(|| error("Body over 256 KiB"));
                responses.entry("415".into()).or_insert_with(|| error("Body is not JSON"));
            }
        }
    }
}
