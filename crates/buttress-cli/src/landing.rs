//! The small landing page `buttress serve` shows until the portal lands.

use axum::extract::DefaultBodyLimit;
use axum::response::Html;
use axum::routing::{get, post};
use axum::Router;
use buttress::headers::{csp_report, CspNonce, REPORT_BODY_LIMIT};

/// `/` the landing page, `/healthz` a health check, `/csp-report` the CSP report endpoint.
pub(crate) fn router() -> Router {
    Router::new()
        .route("/", get(landing))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/csp-report",
            post(csp_report).layer(DefaultBodyLimit::max(REPORT_BODY_LIMIT)),
        )
}

async fn landing(nonce: CspNonce) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Buttress</title>
<style nonce="{nonce}">
body {{ font: 17px/1.6 system-ui, sans-serif; max-width: 42rem; margin: 3rem auto; padding: 0 1rem; color: #1d1d1f; }}
h1 {{ color: #8b0000; }}
code {{ background: #f3f3f3; padding: .1rem .3rem; }}
</style>
</head>
<body>
<h1>Buttress</h1>
<p>This page came through every layer: error pages, secure headers with a per-request CSP
nonce, trusted-proxy resolution, the panic catcher, HTTPS enforcement and request limits.</p>
<p>Run <code>buttress check</code> to see what a deployment still needs.</p>
<p id="js">Scripts are off or blocked.</p>
<script nonce="{nonce}">document.getElementById("js").textContent = "This script ran because it carries this response's nonce.";</script>
</body>
</html>
"#
    ))
}
