//! The running instance as the request handlers see it: the database and the configuration
//! that the core's rules depend on. Built once at start-up and shared by the REST API and the
//! server functions.

use std::net::IpAddr;
use std::sync::Arc;

use herald_model::EntityRef;

use crate::Result;
use crate::bus::Bus;
use crate::db::Db;
use crate::directory;
use crate::notifications::PublishContext;
use crate::settings::SettingsPolicy;

/// How people sign in.
#[derive(Clone, Debug)]
pub struct AuthPolicy {
    /// Whether the built-in password login is offered.
    pub password_login: bool,
    /// Trusted-proxy single sign-on, when configured.
    pub proxy: Option<ProxyAuth>,
    /// Users who are administrators.
    pub admin_users: Vec<EntityRef>,
    /// Members of this group (and its subgroups) are administrators.
    pub admin_group: Option<EntityRef>,
    /// How long a sign-in lasts, in milliseconds.
    pub session_ttl_ms: i64,
    /// Whether the session cookie is marked `Secure` (the base URL is https).
    pub secure_cookie: bool,
}

/// Single sign-on through a reverse proxy that authenticates users and passes who they are in
/// a header. The header is believed only on connections from the listed proxy addresses.
#[derive(Clone, Debug)]
pub struct ProxyAuth {
    /// The header naming the user, e.g. `X-Forwarded-Email` or `X-Forwarded-User`.
    pub header: String,
    /// Addresses (or networks) of the proxies.
    pub trusted: Vec<ipnet::IpNet>,
}

impl ProxyAuth {
    /// Whether a connection from `peer` may assert a user.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&peer))
    }
}

/// Everything the core needs to serve a request.
#[derive(Clone, Debug)]
pub struct Hub {
    pub db: Db,
    /// Fans committed events out to live streams.
    pub bus: Arc<Bus>,
    pub publish: Arc<PublishContext>,
    pub auth: Arc<AuthPolicy>,
    /// Failed sign-ins, to slow password guessing.
    pub sign_in_throttle: Arc<crate::auth::SignInThrottle>,
    /// Bearer tokens verified a moment ago.
    pub tokens: Arc<crate::auth::TokenCache>,
}

impl Hub {
    /// Revokes a token by id (with `owner`, only that user's personal tokens) and stops
    /// trusting it at once on this instance.
    pub async fn revoke_token(&self, id: &str, owner: Option<&EntityRef>) -> Result<()> {
        let revoked = crate::auth::revoke_token(&self.db, id, owner).await;
        // Also when the database failed, which may have revoked it all the same; not when no
        // such token was found, or anyone could empty the cache at will.
        if !matches!(revoked, Err(crate::Error::NotFound(_))) {
            self.tokens.clear();
        }
        revoked
    }

    /// The settings policy (channels and administrator defaults).
    pub fn policy(&self) -> &SettingsPolicy {
        &self.publish.policy
    }

    /// Whether `user` is an administrator: named in the configuration, or a member (directly
    /// or through nested groups) of the admin group.
    pub async fn is_admin(&self, user: &EntityRef) -> Result<bool> {
        if self.auth.admin_users.contains(user) {
            return Ok(true);
        }
        match &self.auth.admin_group {
            None => Ok(false),
            Some(group) => Ok(directory::groups_of(&self.db, user).await?.contains(group)),
        }
    }
}
