//! Content-Security-Policy: [`Csp`], its [`Directive`]s and [`Source`]s.

use std::fmt::Write as _;

/// A CSP directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Directive {
    DefaultSrc,
    ScriptSrc,
    ScriptSrcElem,
    ScriptSrcAttr,
    StyleSrc,
    StyleSrcElem,
    StyleSrcAttr,
    ImgSrc,
    FontSrc,
    ConnectSrc,
    MediaSrc,
    ObjectSrc,
    FrameSrc,
    ChildSrc,
    WorkerSrc,
    ManifestSrc,
    BaseUri,
    FormAction,
    FrameAncestors,
    Sandbox,
    UpgradeInsecureRequests,
    RequireTrustedTypesFor,
    TrustedTypes,
    ReportUri,
    ReportTo,
}

const DIRECTIVES: &[(Directive, &str)] = &[
    (Directive::DefaultSrc, "default-src"),
    (Directive::ScriptSrc, "script-src"),
    (Directive::ScriptSrcElem, "script-src-elem"),
    (Directive::ScriptSrcAttr, "script-src-attr"),
    (Directive::StyleSrc, "style-src"),
    (Directive::StyleSrcElem, "style-src-elem"),
    (Directive::StyleSrcAttr, "style-src-attr"),
    (Directive::ImgSrc, "img-src"),
    (Directive::FontSrc, "font-src"),
    (Directive::ConnectSrc, "connect-src"),
    (Directive::MediaSrc, "media-src"),
    (Directive::ObjectSrc, "object-src"),
    (Directive::FrameSrc, "frame-src"),
    (Directive::ChildSrc, "child-src"),
    (Directive::WorkerSrc, "worker-src"),
    (Directive::ManifestSrc, "manifest-src"),
    (Directive::BaseUri, "base-uri"),
    (Directive::FormAction, "form-action"),
    (Directive::FrameAncestors, "frame-ancestors"),
    (Directive::Sandbox, "sandbox"),
    (
        Directive::UpgradeInsecureRequests,
        "upgrade-insecure-requests",
    ),
    (
        Directive::RequireTrustedTypesFor,
        "require-trusted-types-for",
    ),
    (Directive::TrustedTypes, "trusted-types"),
    (Directive::ReportUri, "report-uri"),
    (Directive::ReportTo, "report-to"),
];

impl Directive {
    /// The directive's name, e.g. `script-src`.
    pub fn name(self) -> &'static str {
        DIRECTIVES
            .iter()
            .find(|(d, _)| *d == self)
            .map_or("default-src", |(_, n)| n)
    }

    /// Looks a directive up by name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Directive> {
        let lower = name.to_ascii_lowercase();
        DIRECTIVES
            .iter()
            .find(|(_, n)| *n == lower)
            .map(|(d, _)| *d)
    }

    /// Whether the directive lists sources (as opposed to flags, tokens or URLs).
    pub fn takes_sources(self) -> bool {
        !matches!(
            self,
            Directive::Sandbox
                | Directive::UpgradeInsecureRequests
                | Directive::RequireTrustedTypesFor
                | Directive::TrustedTypes
                | Directive::ReportUri
                | Directive::ReportTo
        )
    }
}

/// A source expression.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// `'none'`
    None,
    /// `'self'`
    SelfOrigin,
    /// `'nonce-…'` with this response's nonce.
    Nonce,
    /// `'strict-dynamic'`
    StrictDynamic,
    /// `'unsafe-inline'` (weakens XSS protection; `buttress check` reports it)
    UnsafeInline,
    /// `'unsafe-eval'` (weakens XSS protection; `buttress check` reports it)
    UnsafeEval,
    /// `'unsafe-hashes'`
    UnsafeHashes,
    /// `'wasm-unsafe-eval'`
    WasmUnsafeEval,
    /// `'report-sample'`
    ReportSample,
    /// `'sha256-…'`, `'sha384-…'`, `'sha512-…'`
    Hash(String),
    /// A scheme such as `https:` or `data:`.
    Scheme(String),
    /// A host source such as `cdn.example.org`, `*.example.org` or `https://a.example:8443/path`.
    Host(String),
    /// `*`
    Wildcard,
    /// A raw token for the directives that do not take sources (`sandbox allow-forms`, `report-uri /csp`).
    Token(String),
}

impl Source {
    /// A host source, checked for characters a host source cannot have.
    pub fn host(text: &str) -> Result<Source, CspError> {
        match parse_source(text)? {
            s @ Source::Host(_) => Ok(s),
            _ => Err(CspError::BadSource(text.to_owned())),
        }
    }

    fn write(&self, out: &mut String, nonce: &str) {
        match self {
            Source::None => out.push_str("'none'"),
            Source::SelfOrigin => out.push_str("'self'"),
            Source::Nonce => {
                let _ = write!(out, "'nonce-{nonce}'");
            }
            Source::StrictDynamic => out.push_str("'strict-dynamic'"),
            Source::UnsafeInline => out.push_str("'unsafe-inline'"),
            Source::UnsafeEval => out.push_str("'unsafe-eval'"),
            Source::UnsafeHashes => out.push_str("'unsafe-hashes'"),
            Source::WasmUnsafeEval => out.push_str("'wasm-unsafe-eval'"),
            Source::ReportSample => out.push_str("'report-sample'"),
            Source::Hash(h) => {
                let _ = write!(out, "'{h}'");
            }
            Source::Scheme(s) | Source::Host(s) | Source::Token(s) => out.push_str(s),
            Source::Wildcard => out.push('*'),
        }
    }
}

/// A CSP that does not parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CspError {
    /// An unknown directive name (a typo would otherwise silently weaken the policy).
    #[error("unknown CSP directive {0:?}")]
    UnknownDirective(String),
    /// A directive given twice (browsers ignore the second one).
    #[error("CSP directive {0:?} appears twice")]
    Duplicate(String),
    /// A source expression that is not valid.
    #[error("invalid CSP source expression {0:?}")]
    BadSource(String),
    /// Characters that may not appear in a header value.
    #[error("the CSP contains a control character or comma")]
    BadCharacter,
}

/// A Content-Security-Policy: an ordered list of directives, built with typed directives or
/// parsed, rendered with a fresh nonce per response.
///
/// The default policy ([`Csp::strict`]) starts from `default-src 'none'` and opens only what a server-rendered
/// site needs, with a fresh nonce per response for scripts and styles:
///
/// | directive | default |
/// |---|---|
/// | `default-src` | `'none'` |
/// | `script-src`, `style-src` | `'self' 'nonce-…'` |
/// | `img-src`, `font-src`, `connect-src`, `manifest-src` | `'self'` |
/// | `form-action` | `'self'` |
/// | `frame-ancestors`, `base-uri`, `object-src` | `'none'` |
/// | `upgrade-insecure-requests` | only on HTTPS responses |
///
/// # Example
///
/// ```
/// use buttress::headers::{Csp, Directive, Source};
///
/// let csp = Csp::strict()
///     .directive(Directive::ImgSrc, [Source::SelfOrigin, Source::host("images.example.org")?]);
/// assert!(csp.render("NONCE", true).contains("img-src 'self' images.example.org"));
///
/// let parsed = Csp::parse("default-src 'self'; object-src 'none'")?;
/// assert_eq!(parsed.render("n", false), "default-src 'self'; object-src 'none'");
/// assert!(Csp::parse("script-scr 'self'").is_err(), "typos are refused");
/// # Ok::<(), buttress::headers::CspError>(())
/// ```
///
/// See [MDN: Content-Security-Policy](https://developer.mozilla.org/docs/Web/HTTP/Headers/Content-Security-Policy).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Csp {
    directives: Vec<(Directive, Vec<Source>)>,
    upgrade_on_https: bool,
}

impl Csp {
    /// An empty policy.
    pub fn new() -> Self {
        Csp::default()
    }

    /// The strict default described on [`Csp`].
    pub fn strict() -> Self {
        use Source::*;
        Csp::new()
            .directive(Directive::DefaultSrc, [None])
            .directive(Directive::ScriptSrc, [SelfOrigin, Nonce])
            .directive(Directive::StyleSrc, [SelfOrigin, Nonce])
            .directive(Directive::ImgSrc, [SelfOrigin])
            .directive(Directive::FontSrc, [SelfOrigin])
            .directive(Directive::ConnectSrc, [SelfOrigin])
            .directive(Directive::ManifestSrc, [SelfOrigin])
            .directive(Directive::FormAction, [SelfOrigin])
            .directive(Directive::FrameAncestors, [None])
            .directive(Directive::BaseUri, [None])
            .directive(Directive::ObjectSrc, [None])
            .upgrade_insecure_requests_on_https(true)
    }

    /// Sets a directive's sources, replacing any earlier value.
    pub fn directive(mut self, d: Directive, sources: impl IntoIterator<Item = Source>) -> Self {
        let sources: Vec<Source> = sources.into_iter().collect();
        match self.directives.iter_mut().find(|(x, _)| *x == d) {
            Some(slot) => slot.1 = sources,
            None => self.directives.push((d, sources)),
        }
        self
    }

    /// Removes a directive.
    pub fn remove(mut self, d: Directive) -> Self {
        self.directives.retain(|(x, _)| *x != d);
        self
    }

    /// Adds `upgrade-insecure-requests` to responses sent over HTTPS only.
    pub fn upgrade_insecure_requests_on_https(mut self, on: bool) -> Self {
        self.upgrade_on_https = on;
        self
    }

    /// Adds a `report-uri` directive.
    pub fn report_uri(self, uri: &str) -> Self {
        self.directive(Directive::ReportUri, [Source::Token(uri.to_owned())])
    }

    /// The sources of a directive, if set.
    pub fn get(&self, d: Directive) -> Option<&[Source]> {
        self.directives
            .iter()
            .find(|(x, _)| *x == d)
            .map(|(_, s)| s.as_slice())
    }

    /// Whether any directive uses the per-request nonce.
    pub fn uses_nonce(&self) -> bool {
        self.directives
            .iter()
            .any(|(_, s)| s.contains(&Source::Nonce))
    }

    /// The directives in order.
    pub fn directives(&self) -> impl Iterator<Item = (Directive, &[Source])> {
        self.directives.iter().map(|(d, s)| (*d, s.as_slice()))
    }

    /// Renders the header value with `nonce`; `https` decides `upgrade-insecure-requests`.
    pub fn render(&self, nonce: &str, https: bool) -> String {
        let mut out = String::with_capacity(320);
        for (d, sources) in &self.directives {
            if *d == Directive::UpgradeInsecureRequests && !https && self.upgrade_on_https {
                continue;
            }
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(d.name());
            for s in sources {
                out.push(' ');
                s.write(&mut out, nonce);
            }
        }
        if https && self.upgrade_on_https && self.get(Directive::UpgradeInsecureRequests).is_none()
        {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str("upgrade-insecure-requests");
        }
        out
    }

    /// Parses a policy. Unknown directives, duplicates and malformed sources are errors.
    /// A `'nonce-…'` source in the text becomes [`Source::Nonce`] (a fresh nonce per response).
    pub fn parse(text: &str) -> Result<Csp, CspError> {
        if text.chars().any(|c| c.is_control() || c == ',') {
            return Err(CspError::BadCharacter);
        }
        let mut csp = Csp::new();
        for part in text.split(';') {
            let mut tokens = part.split_ascii_whitespace();
            let Some(name) = tokens.next() else { continue };
            let d = Directive::from_name(name)
                .ok_or_else(|| CspError::UnknownDirective(name.to_owned()))?;
            if csp.get(d).is_some() {
                return Err(CspError::Duplicate(name.to_owned()));
            }
            let sources = if d.takes_sources() {
                tokens.map(parse_source).collect::<Result<Vec<_>, _>>()?
            } else {
                tokens.map(|t| Source::Token(t.to_owned())).collect()
            };
            csp.directives.push((d, sources));
        }
        Ok(csp)
    }
}

fn parse_source(token: &str) -> Result<Source, CspError> {
    let lower = token.to_ascii_lowercase();
    let bad = || CspError::BadSource(token.to_owned());
    let s = match lower.as_str() {
        "'none'" => Source::None,
        "'self'" => Source::SelfOrigin,
        "'strict-dynamic'" => Source::StrictDynamic,
        "'unsafe-inline'" => Source::UnsafeInline,
        "'unsafe-eval'" => Source::UnsafeEval,
        "'unsafe-hashes'" => Source::UnsafeHashes,
        "'wasm-unsafe-eval'" => Source::WasmUnsafeEval,
        "'report-sample'" => Source::ReportSample,
        "*" => Source::Wildcard,
        _ if lower.starts_with("'nonce-") && lower.ends_with('\'') => Source::Nonce,
        _ if ["'sha256-", "'sha384-", "'sha512-"]
            .iter()
            .any(|p| lower.starts_with(p)) =>
        {
            let inner = token.trim_matches('\'');
            let b64 = inner.split_once('-').map_or("", |(_, b)| b);
            if !token.ends_with('\'')
                || b64.is_empty()
                || !b64
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b))
            {
                return Err(bad());
            }
            Source::Hash(inner.to_owned())
        }
        _ if token.starts_with('\'') => return Err(bad()),
        _ if lower.ends_with(':')
            && lower.len() > 1
            && lower[..lower.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            Source::Scheme(lower)
        }
        _ => {
            let ok = token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&()*+=%".contains(&b));
            if !ok {
                return Err(bad());
            }
            Source::Host(token.to_owned())
        }
    };
    Ok(s)
}

/// A policy rendered once and split where the nonce goes, so that a response only joins the
/// pieces around its nonce instead of [`Csp::render`] walking every directive and source each
/// time. The headers layer keeps one for HTTP and one for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<String>,
    /// The length of the pieces together.
    len: usize,
}

/// Where the nonce goes while a template is made: a character no header value may hold.
const HOLE: char = '\0';

impl Template {
    /// The template of `csp` (`https` as for [`Csp::render`]), or `None` if the policy itself
    /// holds the placeholder character (then it cannot be a header value anyway, and the
    /// layer renders it each time, as before).
    pub(crate) fn new(csp: &Csp, https: bool) -> Option<Template> {
        if csp.render("", https).contains(HOLE) {
            return None;
        }
        let pieces: Vec<String> = csp
            .render(HOLE.encode_utf8(&mut [0; 4]), https)
            .split(HOLE)
            .map(str::to_owned)
            .collect();
        let len = pieces.iter().map(String::len).sum();
        Some(Template { pieces, len })
    }

    /// The header value with `nonce`: the same text as `Csp::render(nonce, https)`.
    pub(crate) fn render(&self, nonce: &str) -> String {
        let holes = self.pieces.len().saturating_sub(1);
        let mut out = String::with_capacity(self.len + holes * nonce.len());
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                out.push_str(nonce);
            }
            out.push_str(piece);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::CspNonce;
    use proptest::prelude::*;

    #[test]
    fn strict_default_renders() {
        let csp = Csp::strict();
        let https = csp.render("N", true);
        assert_eq!(
            https,
            "default-src 'none'; script-src 'self' 'nonce-N'; style-src 'self' 'nonce-N'; img-src 'self'; font-src 'self'; connect-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; upgrade-insecure-requests"
        );
        assert!(!csp.render("N", false).contains("upgrade-insecure-requests"));
        assert!(csp.uses_nonce());
    }

    #[test]
    fn parse_errors() {
        let cases = [
            (
                "script-scr 'self'",
                CspError::UnknownDirective("script-scr".into()),
            ),
            (
                "img-src 'self'; img-src *",
                CspError::Duplicate("img-src".into()),
            ),
            (
                "script-src 'unsafe-everything'",
                CspError::BadSource("'unsafe-everything'".into()),
            ),
            (
                "script-src 'sha256-'",
                CspError::BadSource("'sha256-'".into()),
            ),
            ("script-src a,b", CspError::BadCharacter),
            ("script-src <x>", CspError::BadSource("<x>".into())),
        ];
        for (text, want) in cases {
            assert_eq!(Csp::parse(text), Err(want), "{text}");
        }
    }

    #[test]
    fn nonces_are_fresh_and_long() {
        let a = CspNonce::generate();
        assert_eq!(a.as_str().len(), 22);
        assert_ne!(a, CspNonce::generate());
    }

    #[test]
    fn a_policy_holding_the_placeholder_has_no_template() {
        let csp = Csp::new().directive(Directive::ImgSrc, vec![Source::Host("a\0b".into())]);
        assert!(Template::new(&csp, false).is_none());
        assert!(Template::new(&Csp::strict(), true).is_some());
    }

    /// The policy picked by a proptest strategy: directives by index, each with sources by
    /// index into a pool of every kind (tokens for directives that take no sources).
    fn policy_of(picks: Vec<(usize, Vec<usize>)>) -> Csp {
        let pool = [
            Source::None,
            Source::SelfOrigin,
            Source::Nonce,
            Source::UnsafeInline,
            Source::Wildcard,
            Source::Scheme("https:".into()),
            Source::Host("cdn.example.org".into()),
            Source::Hash("sha256-abc=".into()),
            Source::StrictDynamic,
        ];
        let mut csp = Csp::new();
        for (d, srcs) in picks {
            let d = DIRECTIVES[d].0;
            let sources: Vec<Source> = if d.takes_sources() {
                srcs.iter().map(|i| pool[*i].clone()).collect()
            } else {
                srcs.iter()
                    .map(|i| Source::Token(format!("t{i}")))
                    .collect()
            };
            csp = csp.directive(d, sources);
        }
        csp
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,200}") {
            let _ = Csp::parse(&text);
        }

        #[test]
        fn a_template_renders_what_the_policy_renders(
            picks in proptest::collection::vec((0usize..DIRECTIVES.len(), proptest::collection::vec(0usize..9, 0..4)), 0..8),
            nonce in "[A-Za-z0-9_-]{0,30}",
            https in any::<bool>(),
        ) {
            let csp = policy_of(picks);
            let template = Template::new(&csp, https).expect("no NUL in these policies");
            prop_assert_eq!(template.render(&nonce), csp.render(&nonce, https));
        }

        #[test]
        fn render_parse_round_trip(
            picks in proptest::collection::vec((0usize..DIRECTIVES.len(), proptest::collection::vec(0usize..9, 0..4)), 0..8)
        ) {
            let csp = policy_of(picks);
            let text = csp.render("NONCE", false);
            let back = Csp::parse(&text).expect("rendered policies parse");
            prop_assert_eq!(back.render("NONCE", false), text);
        }
    }
}
