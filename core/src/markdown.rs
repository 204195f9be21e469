//! Markdown descriptions rendered to HTML that is safe to put in a page or an email: no
//! scripts, no raw HTML that could run, links http(s) only (and opened without a referrer).

use std::collections::HashSet;

use pulldown_cmark::{Event, Options, Parser, html};

/// Renders `markdown` to sanitized HTML.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    // Raw HTML in the source is shown as text, never passed through.
    let events = Parser::new_ext(markdown, options).map(|e| match e {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut unsafe_html = String::new();
    html::push_html(&mut unsafe_html, events);
    ammonia::Builder::default()
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .rm_tags(["img"])
        .clean(&unsafe_html)
        .to_string()
}

/// Renders `markdown` as Slack's mrkdwn: bold, italics, code, lists and http(s) links keep
/// their meaning; everything else becomes escaped text (so `<@U…>` or `<!channel>` written in
/// a description never pings anyone).
pub fn to_mrkdwn(markdown: &str) -> String {
    use pulldown_cmark::{Tag, TagEnd};
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut out = String::new();
    // The destination of the link being written, when it is one Slack may link to.
    let mut link: Option<String> = None;
    let mut list_depth = 0usize;
    for event in Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => out.push_str(&escape(&t)),
            Event::Code(c) => {
                out.push('`');
                out.push_str(&escape(&c));
                out.push('`');
            }
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("\n———\n"),
            Event::Start(Tag::Strong) | Event::End(TagEnd::Strong) => out.push('*'),
            Event::Start(Tag::Emphasis) | Event::End(TagEnd::Emphasis) => out.push('_'),
            Event::Start(Tag::Strikethrough) | Event::End(TagEnd::Strikethrough) => out.push('~'),
            Event::Start(Tag::Heading { .. }) => out.push('*'),
            Event::End(TagEnd::Heading(_)) => out.push_str("*\n"),
            Event::Start(Tag::CodeBlock(_)) => out.push_str("```\n"),
            Event::End(TagEnd::CodeBlock) => out.push_str("```\n"),
            Event::Start(Tag::List(_)) => list_depth += 1,
            Event::End(TagEnd::List(_)) => list_depth = list_depth.saturating_sub(1),
            Event::Start(Tag::Item) => {
                out.push_str(&"  ".repeat(list_depth.saturating_sub(1)));
                out.push_str("• ");
            }
            Event::End(TagEnd::Item) => out.push('\n'),
            Event::End(TagEnd::Paragraph) => out.push_str(if list_depth > 0 { "" } else { "\n\n" }),
            Event::Start(Tag::Link { dest_url, .. }) => {
                let safe = dest_url.starts_with("https://") || dest_url.starts_with("http://");
                if safe && !dest_url.contains(['|', '>', '<']) {
                    out.push('<');
                    out.push_str(&escape(&dest_url));
                    out.push('|');
                    link = Some(dest_url.to_string());
                }
            }
            Event::End(TagEnd::Link) if link.take().is_some() => {
                out.push('>');
            }
            _ => {}
        }
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::{render, to_mrkdwn};

    #[test]
    fn markdown_becomes_slack_mrkdwn() {
        assert_eq!(to_mrkdwn("**bold** and _it_ and `x<y`"), "*bold* and _it_ and `x&lt;y`");
        assert_eq!(to_mrkdwn("[docs](https://example.com/a?b=1&c=2)"), "<https://example.com/a?b=1&amp;c=2|docs>");
        assert_eq!(to_mrkdwn("[bad](javascript:alert(1))"), "bad");
        assert_eq!(to_mrkdwn("<!channel> hi <@U123>"), "&lt;!channel&gt; hi &lt;@U123&gt;");
        assert_eq!(to_mrkdwn("- one\n- two"), "• one\n• two");
    }

    #[test]
    fn markdown_renders() {
        assert_eq!(render("**bold** and `code`"), "<p><strong>bold</strong> and <code>code</code></p>\n");
        assert!(render("[docs](https://example.com)").contains(r#"href="https://example.com""#));
    }

    #[test]
    fn nothing_hostile_survives() {
        for hostile in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[x](javascript:alert(1))",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=https://evil.example></iframe>",
            "![x](https://evil.example/pixel.png)",
        ] {
            let html = render(hostile);
            // Hostile markup may survive as escaped text, never as markup.
            for bad in ["<script", "<img", "<iframe"] {
                assert!(!html.contains(bad), "{hostile} -> {html}");
            }
            for link in html.split("<a ").skip(1) {
                let href = link.split("href=\"").nth(1).map(|h| h.split('"').next().unwrap_or(""));
                assert!(href.is_none_or(|h| h.starts_with("http")), "{hostile} -> {html}");
            }
            let tags: Vec<&str> = html.split('<').skip(1).map(|t| t.split([' ', '>']).next().unwrap_or("")).collect();
            assert!(tags.iter().all(|t| ["p", "/p", "a", "/a"].contains(t)), "{hostile} -> {html}");
        }
    }
}
