//! The words and markup of forwarded notifications: email (HTML and plain text) and Slack
//! Block Kit. Descriptions go through the inbox's sanitizer; every other field is escaped.

use herald_model::{Notification, Severity};
use serde_json::{Value, json};

/// An email's subject and its two bodies.
pub struct Email {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The absolute link a reader follows: the notification's own, or its page in Herald.
pub fn link(n: &Notification, base: &url::Url) -> String {
    n.payload.link.clone().unwrap_or_else(|| absolute(base, &format!("notifications/{}", n.id)))
}

fn absolute(base: &url::Url, path: &str) -> String {
    let mut b = base.clone();
    if !b.path().ends_with('/') {
        let p = format!("{}/", b.path());
        b.set_path(&p);
    }
    b.join(path).map(|u| u.to_string()).unwrap_or_else(|_| base.to_string())
}

fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#b42318",
        Severity::High => "#b54708",
        Severity::Normal => "#175cd3",
        Severity::Low => "#475467",
    }
}

fn meta(n: &Notification) -> String {
    let mut parts = vec![format!("{} severity", n.payload.severity), format!("from {}", n.origin)];
    if let Some(t) = &n.payload.topic {
        parts.push(format!("topic {t}"));
    }
    parts.join(" · ")
}

/// The HTML block of one notification.
fn html_block(n: &Notification, base: &url::Url) -> String {
    let description = n.payload.description.as_deref().map(herald_core::markdown::render).unwrap_or_default();
    format!(
        r#"<div style="border-left:4px solid {colour};padding:8px 12px;margin:12px 0">
<h2 style="margin:0 0 4px;font-size:18px"><a href="{link}" style="color:#101828">{title}</a></h2>
<p style="margin:0 0 8px;color:#475467;font-size:13px">{meta}</p>
<div>{description}</div>
<p style="margin:8px 0 0"><a href="{link}" style="color:#175cd3">View</a></p>
</div>"#,
        colour = colour(n.payload.severity),
        link = esc(&link(n, base)),
        title = esc(&n.payload.title),
        meta = esc(&meta(n)),
    )
}

fn text_block(n: &Notification, base: &url::Url) -> String {
    let mut s = format!("{}\n{}\n", n.payload.title, meta(n));
    if let Some(d) = &n.payload.description {
        s.push('\n');
        s.push_str(d.trim());
        s.push('\n');
    }
    s.push_str(&format!("\nView: {}\n", link(n, base)));
    s
}

/// An email for one notification (`updated`: a scope update of one sent before), or a digest
/// listing several.
pub fn email(list: &[Notification], digest: bool, updated: bool, base: &url::Url) -> Email {
    let settings = absolute(base, "settings");
    let footer_html = format!(
        r#"<p style="margin-top:24px;color:#475467;font-size:12px">You receive this because of your Herald settings. <a href="{}">Change what reaches you</a>.</p>"#,
        esc(&settings)
    );
    let footer_text =
        format!("\n--\nYou receive this because of your Herald settings. Change what reaches you: {settings}\n");
    let (subject, intro) = match (digest, list) {
        (true, _) => (
            format!("Herald digest: {} notification{}", list.len(), if list.len() == 1 { "" } else { "s" }),
            format!("{} notifications since your last digest.", list.len()),
        ),
        (false, [n, ..]) => {
            let prefix = match n.payload.severity {
                Severity::Critical => "[critical] ",
                Severity::High => "[high] ",
                _ => "",
            };
            (format!("{prefix}{}{}", if updated { "Updated: " } else { "" }, n.payload.title), String::new())
        }
        (false, []) => ("Herald".to_string(), String::new()),
    };
    let blocks_html: String = list.iter().map(|n| html_block(n, base)).collect();
    let blocks_text: Vec<String> = list.iter().map(|n| text_block(n, base)).collect();
    let intro_html = if intro.is_empty() { String::new() } else { format!("<p>{}</p>", esc(&intro)) };
    let html = format!(
        r#"<!DOCTYPE html><html><body style="font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#101828;max-width:640px">{intro_html}{blocks_html}{footer_html}</body></html>"#
    );
    let intro_text = if intro.is_empty() { String::new() } else { format!("{intro}\n\n") };
    let text = format!("{intro_text}{}{footer_text}", blocks_text.join("\n----\n\n"));
    Email { subject: subject.chars().take(250).collect(), html, text }
}

/// Escapes text for Slack's mrkdwn.
fn mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A Slack message (the body of `chat.postMessage` / `chat.update` without the channel): a
/// coloured attachment with the title, the description, a "View" button and the context.
pub fn slack(n: &Notification, base: &url::Url) -> Value {
    let mut blocks = vec![json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": format!("*{}*", mrkdwn(&n.payload.title))},
    })];
    if let Some(d) = n.payload.description.as_deref().filter(|d| !d.trim().is_empty()) {
        let text: String = herald_core::markdown::to_mrkdwn(d).chars().take(2900).collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    blocks.push(json!({
        "type": "actions",
        "elements": [{"type": "button", "text": {"type": "plain_text", "text": "View"}, "url": link(n, base)}],
    }));
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(&meta(n))}]}));
    json!({
        "text": n.payload.title,
        "attachments": [{"color": colour(n.payload.severity), "blocks": blocks}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_model::NotificationPayload;

    fn note(title: &str, description: Option<&str>) -> Notification {
        Notification {
            id: "n1".into(),
            user: Some("user:default/alice".into()),
            created: chrono::Utc::now(),
            updated: None,
            read: None,
            saved: None,
            archived: None,
            snoozed_until: None,
            origin: "external:ci".into(),
            payload: NotificationPayload {
                title: title.into(),
                description: description.map(Into::into),
                severity: Severity::High,
                topic: Some("builds".into()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn emails_escape_titles_and_sanitize_descriptions() {
        let base = url::Url::parse("https://herald.example/").unwrap();
        let n = note("<b>Build</b> failed", Some("**bold** <script>alert(1)</script>"));
        let e = email(&[n], false, false, &base);
        assert_eq!(e.subject, "[high] <b>Build</b> failed");
        assert!(e.html.contains("&lt;b&gt;Build&lt;/b&gt; failed"));
        assert!(e.html.contains("<strong>bold</strong>"));
        assert!(!e.html.contains("<script>"));
        assert!(e.html.contains("https://herald.example/notifications/n1"), "no link: the page in Herald");
        assert!(e.html.contains("https://herald.example/settings"));
        assert!(e.text.contains("View: https://herald.example/notifications/n1"));
        let d = email(&[note("a", None), note("b", None)], true, false, &base);
        assert_eq!(d.subject, "Herald digest: 2 notifications");
    }

    #[test]
    fn slack_messages_escape_mrkdwn_and_carry_a_view_button() {
        let base = url::Url::parse("https://herald.example/").unwrap();
        let m = slack(&note("a <@U123> & b", None), &base);
        let blocks = &m["attachments"][0]["blocks"];
        assert_eq!(blocks[0]["text"]["text"], "*a &lt;@U123&gt; &amp; b*");
        assert_eq!(blocks[1]["elements"][0]["url"], "https://herald.example/notifications/n1");
        assert_eq!(m["attachments"][0]["color"], "#b54708");
    }
}
