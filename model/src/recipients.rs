use serde::{Deserialize, Serialize};

/// A JSON value that may be one string or an array of strings, as Backstage accepts for
/// `entityRef` and `excludeEntityRef`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Who a notification is for: entities (users and groups, with exclusions) or everyone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Recipients {
    Entity {
        #[serde(rename = "entityRef")]
        entity_ref: OneOrMany,
        #[serde(rename = "excludeEntityRef", default, skip_serializing_if = "Option::is_none")]
        exclude_entity_ref: Option<OneOrMany>,
    },
    Broadcast,
}
