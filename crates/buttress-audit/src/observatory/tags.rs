//! Minimal HTML tag scanning (enough for `<meta>` and `<script>` attributes) and the two
//! retrievers' readings of `<meta http-equiv>` tags.

pub(super) const HTML_TYPES: [&str; 2] = ["text/html", "application/xhtml+xml"];

pub(super) struct Tag {
    pub(super) name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Start tags of `html`, from the scanner's one tokenizer ([`crate::html`]).
pub(super) fn scan_tags(html: &str) -> Vec<Tag> {
    crate::html::start_tags(html)
        .into_iter()
        .map(|(name, attrs)| Tag { name, attrs })
        .collect()
}

pub(super) fn is_html_mime(content_type: Option<&str>) -> bool {
    let mime = content_type.unwrap_or("").split(';').next().unwrap_or("");
    HTML_TYPES.contains(&mime)
}

#[derive(Default)]
pub(super) struct ClassicEquiv {
    pub(super) csp: Option<String>,
    pub(super) referrer: Option<String>,
}

/// utils.py parse_http_equiv_headers
pub(super) fn classic_http_equiv(html: &str) -> ClassicEquiv {
    let mut eq = ClassicEquiv::default();
    for tag in scan_tags(html).iter().filter(|t| t.name == "meta") {
        match (tag.attr("http-equiv"), tag.attr("content")) {
            (Some(he), Some(content)) => match he.trim().to_lowercase().as_str() {
                "content-security-policy" => match &mut eq.csp {
                    Some(prev) => {
                        prev.push_str("; ");
                        prev.push_str(content);
                    }
                    None => eq.csp = Some(content.to_string()),
                },
                "referrer-policy" => eq.referrer = Some(content.to_string()),
                _ => {}
            },
            _ => {
                if let (Some(name), Some(content)) = (tag.attr("name"), tag.attr("content")) {
                    if name.trim().eq_ignore_ascii_case("referrer") {
                        eq.referrer = Some(content.to_string());
                    }
                }
            }
        }
    }
    eq
}

#[derive(Default)]
pub(super) struct MdnEquiv {
    pub(super) csp: Vec<String>,
    pub(super) referrer: Option<String>,
}

/// src/retriever/utils.js parseHttpEquivHeaders
pub(super) fn mdn_http_equiv(html: &str) -> MdnEquiv {
    let mut eq = MdnEquiv::default();
    for tag in scan_tags(html).iter().filter(|t| t.name == "meta") {
        match (tag.attr("http-equiv"), tag.attr("content")) {
            (Some(he), Some(content)) => {
                if he.trim().to_lowercase() == "content-security-policy" {
                    eq.csp.push(content.to_string());
                }
            }
            _ => {
                if let (Some(name), Some(content)) = (tag.attr("name"), tag.attr("content")) {
                    if name.trim().to_lowercase() == "referrer" {
                        eq.referrer = Some(content.to_string());
                    }
                }
            }
        }
    }
    eq
}

#[cfg(test)]
mod tests {
    use crate::observatory::tests::{hdrs, result_of, BOTH};
    use crate::observatory::{score, Input};

    #[test]
    fn meta_http_equiv_csp_counts_for_html() {
        let h = hdrs(&[("Content-Type", "text/html")]);
        let html = "<head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\"></head>";
        for rules in BOTH {
            let s = score(
                rules,
                &Input {
                    headers: &h,
                    https: true,
                    http_redirects_to_https: None,
                    html: Some(html),
                },
            );
            assert_eq!(
                result_of(&s, "content-security-policy").result,
                "csp-implemented-with-no-unsafe-default-src-none",
                "{rules:?}\n{s}"
            );
        }
    }
}
