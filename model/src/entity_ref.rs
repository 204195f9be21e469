use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kinds of directory entity a notification can be addressed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntityKind {
    User,
    Group,
}

/// A Backstage-style entity reference, `kind:namespace/name`, kept in normal form: lowercase,
/// with the namespace filled in (`default` when left out). Two refs that differ only in case
/// or in an omitted default namespace are equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityRef(String);

/// Why a string is not a usable entity reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityRefError(pub String);

impl fmt::Display for EntityRefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EntityRefError {}

impl EntityRef {
    /// Parses `kind:[namespace/]name`; `default_kind` is used when the kind is left out
    /// (as catalog files do for `memberOf: [team-a]`).
    pub fn parse_with_default(s: &str, default_kind: Option<EntityKind>) -> Result<Self, EntityRefError> {
        let raw = s.trim();
        let err = |why: &str| EntityRefError(format!("invalid entity ref '{raw}': {why}"));
        if raw.is_empty() {
            return Err(err("it is empty"));
        }
        if raw.len() > 255 {
            return Err(err("it is longer than 255 characters"));
        }
        let lower = raw.to_lowercase();
        let (kind, rest) = match lower.split_once(':') {
            Some((k, rest)) => (k.to_string(), rest),
            None => match default_kind {
                Some(EntityKind::User) => ("user".to_string(), lower.as_str()),
                Some(EntityKind::Group) => ("group".to_string(), lower.as_str()),
                None => return Err(err("expected kind:namespace/name, e.g. user:default/alice")),
            },
        };
        if kind != "user" && kind != "group" {
            return Err(err("the kind must be 'user' or 'group'"));
        }
        let (namespace, name) = match rest.split_once('/') {
            Some((ns, name)) => (ns, name),
            None => ("default", rest),
        };
        let valid = |part: &str| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+'))
        };
        if !valid(namespace) || !valid(name) {
            return Err(err("namespace and name may only hold letters, digits and - _ . @ +"));
        }
        Ok(EntityRef(format!("{kind}:{namespace}/{name}")))
    }

    /// The kind named in the ref.
    pub fn kind(&self) -> EntityKind {
        if self.0.starts_with("group:") { EntityKind::Group } else { EntityKind::User }
    }

    /// The name part, e.g. `alice` for `user:default/alice`.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The normalised text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a string that is already in normal form (as read back from storage).
    pub fn from_normalised(s: String) -> Self {
        EntityRef(s)
    }
}

impl FromStr for EntityRef {
    type Err = EntityRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityRef::parse_with_default(s, None)
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EntityRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EntityRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_normalised_and_compared_case_insensitively() {
        let a: EntityRef = "User:Default/Alice".parse().unwrap();
        let b: EntityRef = "user:alice".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "user:default/alice");
        assert_eq!(a.kind(), EntityKind::User);
        assert_eq!(a.name(), "alice");
    }

    #[test]
    fn kinds_default_only_when_asked() {
        assert!("alice".parse::<EntityRef>().is_err());
        let g = EntityRef::parse_with_default("team-a", Some(EntityKind::Group)).unwrap();
        assert_eq!(g.as_str(), "group:default/team-a");
        assert!("component:default/x".parse::<EntityRef>().is_err());
        assert!("user:default/a b".parse::<EntityRef>().is_err());
    }
}
