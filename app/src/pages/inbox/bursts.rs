//! Bursts: several notifications with the same origin and topic (or scope) arriving close
//! together show as one row with "+N more".

use super::InboxItem;

/// Two neighbours at most this far apart belong to the same burst.
const WINDOW_MS: i64 = 15 * 60 * 1000;

/// What makes notifications one burst: the origin and the topic, or the scope without one.
fn key(item: &InboxItem) -> Option<(&str, &str)> {
    let what = item.topic.as_deref().or(item.scope.as_deref())?;
    Some((item.origin.as_str(), what))
}

/// Groups a page sorted by time into bursts of neighbours, keeping the order.
pub fn group(items: Vec<InboxItem>) -> Vec<Vec<InboxItem>> {
    let mut groups: Vec<Vec<InboxItem>> = Vec::new();
    for item in items {
        let joins = groups.last().and_then(|g| g.last()).is_some_and(|prev| {
            key(prev).is_some() && key(prev) == key(&item) && (prev.created - item.created).abs() <= WINDOW_MS
        });
        match groups.last_mut() {
            Some(g) if joins => g.push(item),
            _ => groups.push(vec![item]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_model::Severity;

    fn item(origin: &str, topic: Option<&str>, minute: i64) -> InboxItem {
        InboxItem {
            id: format!("{origin}-{minute}"),
            origin: origin.into(),
            title: "t".into(),
            description_html: None,
            link: None,
            severity: Severity::Normal,
            topic: topic.map(Into::into),
            scope: None,
            created: 1_800_000_000_000 - minute * 60_000,
            updated: None,
            unread: true,
            saved: false,
            archived: false,
            snoozed_until: None,
        }
    }

    #[test]
    fn neighbours_with_the_same_origin_and_topic_form_a_burst() {
        let groups = group(vec![
            item("ci", Some("build"), 0),
            item("ci", Some("build"), 2),
            item("ci", Some("build"), 10),
            item("ci", Some("deploy"), 11),
            item("ci", None, 12),
            item("ci", None, 13),
            item("ci", Some("build"), 60),
        ]);
        let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 1, 1, 1, 1], "no topic or scope: never grouped; a gap ends a burst");
    }
}
