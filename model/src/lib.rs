//! Types shared by Herald's server and browser.
//!
//! Everything here is plain data with serde derives and no I/O, so the same definitions serve
//! the REST API, the server functions and the WebAssembly front end. JSON shapes follow
//! Backstage's notifications API; Herald's additions are optional fields only.

mod entity_ref;
mod notification;
mod recipients;
mod settings;
mod severity;
mod timestamp;

pub use entity_ref::{EntityKind, EntityRef, EntityRefError};
pub use notification::{
    ListResponse, Notification, NotificationPayload, NotificationStatus, PublishRequest, TopicsResponse, UpdateRequest,
};
pub use recipients::{OneOrMany, Recipients};
pub use settings::{ChannelSetting, NotificationSettings, OriginSetting, TopicSetting, WEB_CHANNEL};
pub use severity::Severity;
