use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How urgent a notification is. Ordered from least to most severe, so `a < b` means `b` is
/// more urgent and `minimumSeverity=high` keeps `high` and `critical`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

impl Severity {
    /// Every severity, most urgent first (the order menus show them in).
    pub const ALL: [Severity; 4] = [Severity::Critical, Severity::High, Severity::Normal, Severity::Low];

    /// The stored rank: 1 (low) to 4 (critical). Integers sort and index better than names.
    pub fn rank(self) -> i16 {
        match self {
            Severity::Low => 1,
            Severity::Normal => 2,
            Severity::High => 3,
            Severity::Critical => 4,
        }
    }

    /// The inverse of [`Severity::rank`]; unknown ranks fall back to normal.
    pub fn from_rank(rank: i16) -> Self {
        match rank {
            1 => Severity::Low,
            3 => Severity::High,
            4 => Severity::Critical,
            _ => Severity::Normal,
        }
    }

    /// The lowercase name used in JSON and query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Normal => "normal",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "low" => Ok(Severity::Low),
            "normal" => Ok(Severity::Normal),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            other => Err(format!("unknown severity '{other}': expected one of critical, high, normal, low")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_round_trip_and_order_by_urgency() {
        for s in Severity::ALL {
            assert_eq!(Severity::from_rank(s.rank()), s);
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), s);
        }
        assert!(Severity::Critical > Severity::High && Severity::Normal > Severity::Low);
        assert!("urgent".parse::<Severity>().is_err());
    }
}
