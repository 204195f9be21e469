//! Demo data for a first look at Herald: a small directory in nested groups, passwords, and a
//! few notifications published through the normal path. Seeded into an empty database only.

use herald_model::{EntityRef, NotificationPayload, OneOrMany, Recipients, Severity};

use crate::auth::{NewToken, create_service_token};
use crate::notifications::{PublishContext, PublishRequest, publish};
use crate::{Db, Result, directory};

/// The password every demo user signs in with.
pub const DEMO_PASSWORD: &str = "herald-demo";

const CATALOG: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: herald-admins, description: Herald administrators}
spec: {type: team, profile: {displayName: Herald admins}, members: [alice], children: []}
---
kind: Group
metadata: {name: engineering}
spec: {type: department, profile: {displayName: Engineering}, children: [platform, frontend]}
---
kind: Group
metadata: {name: platform, annotations: {slack.com/channel: platform-alerts}}
spec: {type: team, profile: {displayName: Platform team, email: platform@example.com}, parent: engineering, children: []}
---
kind: Group
metadata: {name: frontend}
spec: {type: team, profile: {displayName: Frontend team}, parent: engineering, children: []}
---
kind: User
metadata: {name: alice}
spec: {profile: {displayName: Alice Admin, email: alice@example.com}, memberOf: [platform]}
---
kind: User
metadata: {name: bob}
spec: {profile: {displayName: Bob Builder, email: bob@example.com}, memberOf: [platform]}
---
kind: User
metadata: {name: carol}
spec: {profile: {displayName: Carol Coder, email: carol@example.com}, memberOf: [frontend]}
---
kind: User
metadata: {name: dave}
spec: {profile: {displayName: Dave Designer, email: dave@example.com}, memberOf: [frontend]}
"#;

/// What the demo seeded.
#[derive(Debug)]
pub struct Seeded {
    /// The users, who all sign in with [`DEMO_PASSWORD`].
    pub users: Vec<EntityRef>,
    /// A service token for trying the API (origin `external:demo`).
    pub token: NewToken,
}

/// Seeds the demo when the directory is empty; returns `None` (and changes nothing) otherwise.
pub async fn seed_if_empty(db: &Db, ctx: &PublishContext) -> Result<Option<Seeded>> {
    if directory::count_users(db).await? > 0 {
        return Ok(None);
    }
    directory::import_catalog(db, CATALOG).await?;
    let users: Vec<EntityRef> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| EntityRef::from_normalised(format!("user:default/{n}")))
        .collect();
    for u in &users {
        directory::set_password(db, u, DEMO_PASSWORD).await?;
    }
    let to = |refs: &[&str]| Recipients::Entity {
        entity_ref: OneOrMany::Many(refs.iter().map(|s| s.to_string()).collect()),
        exclude_entity_ref: None,
    };
    let samples = [
        (
            "external:ci",
            to(&["group:default/platform"]),
            "Build failed on main: payments-service",
            Some("Step `cargo test` failed after 4m12s. **3 tests** failed in `ledger::tests`."),
            Severity::High,
            Some("builds"),
        ),
        (
            "external:ci",
            to(&["group:default/engineering"]),
            "Deploy of web-frontend v2.14.0 finished",
            Some("Rolled out to production in 6 minutes."),
            Severity::Normal,
            Some("deploys"),
        ),
        (
            "plugin:scaffolder",
            to(&["user:default/alice"]),
            "Your repository billing-api is ready",
            Some("The template *Rust service* finished. Open the repository to continue."),
            Severity::Low,
            Some("scaffolder"),
        ),
        (
            "external:pagerduty",
            to(&["user:default/alice", "user:default/bob"]),
            "Incident #4312: elevated 5xx on checkout",
            Some("Triggered by the SLO burn-rate alert. You are on call."),
            Severity::Critical,
            Some("incidents"),
        ),
        (
            "plugin:announcements",
            Recipients::Broadcast,
            "Maintenance window on Saturday 02:00–04:00 UTC",
            Some("The build cluster will be upgraded. Pipelines queued during the window start afterwards."),
            Severity::Normal,
            Some("announcements"),
        ),
    ];
    for (origin, recipients, title, description, severity, topic) in samples {
        let payload = NotificationPayload {
            title: title.to_string(),
            description: description.map(str::to_string),
            link: Some("/".to_string()),
            severity,
            topic: topic.map(str::to_string),
            ..NotificationPayload::default()
        };
        publish(db, ctx, origin, &PublishRequest { recipients, payload }).await?;
    }
    let token = create_service_token(db, "external:demo").await?;
    Ok(Some(Seeded { users, token }))
}
