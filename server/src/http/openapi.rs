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
    doc
}
