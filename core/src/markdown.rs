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

#[cfg(test)]
mod tests {
    use super::render;

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
