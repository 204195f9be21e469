use serde::{Deserialize, Serialize};

/// The channel id of the in-app inbox (Backstage calls it `Web`).
pub const WEB_CHANNEL: &str = "Web";

/// A user's notification settings in Backstage's shape: channel → origin → topic. An entry
/// that is missing means "enabled" unless the administrator made the origin opt-in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationSettings {
    #[serde(default)]
    pub channels: Vec<ChannelSetting>,
}

/// The settings of one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelSetting {
    pub id: String,
    /// The default for origins of this channel that have no entry of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub origins: Vec<OriginSetting>,
}

/// Whether notifications from one origin reach a channel, with per-topic overrides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OriginSetting {
    pub id: String,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<TopicSetting>>,
}

/// Whether one topic of an origin reaches a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopicSetting {
    pub id: String,
    pub enabled: bool,
}
