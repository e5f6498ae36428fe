//! The passive probes after the page: plain HTTP, CORS, a 404 and directory listings, the
//! same-origin crawl, and malformed parameters. Each spends from the fetcher's budgets and
//! leaves what the burst of the rate-limit probe reserved.

use url::Url;

use super::crawl::Crawl;
use super::{nonce, Fetcher, Site};
use crate::html;
use crate::observatory::CORS_PROBE_ORIGIN;
use crate::observe::{Hop, Observations, Page};

/// Plain HTTP: does the first hop go to HTTPS on the same host?
pub(super) async fn plain_http(
    f: &mut Fetcher<'_>,
    site: &Site<'_>,
    main: &Page,
    obs: &mut Observations,
) {
    let start = site.start;
    let opts = f.opts;
    if start.scheme() == "http" {
        obs.plain_http = Some(Ok(obs.chain.first().cloned().unwrap_or(Hop {
            url: main.url.clone(),
            status: main.status,
            location: main.header("location").map(str::to_owned),
        })));
    } else {
        let port = match (opts.http_port, start.port()) {
            (Some(p), _) => Some(p),
            (None, None) => Some(80),
            (None, Some(_)) => None,
        };
        if let Some(port) = port {
            let mut http = start.clone();
            let ok = http.set_scheme("http").is_ok() && http.set_port(Some(port)).is_ok();
            if ok && !f.skip("plain-HTTP probe") {
                obs.plain_http = Some(match f.send(f.get(&http), http.as_str()).await {
                    Ok(p) => Ok(Hop {
                        url: http.to_string(),
                        status: p.status,
                        location: p.header("location").map(str::to_owned),
                    }),
                    Err(e) => Err(e.text(http.as_str(), opts)),
                });
            }
        }
    }
}

/// CORS: an arbitrary Origin (the Observatory's probe origin) on the page.
pub(super) async fn cors(f: &mut Fetcher<'_>, site: &Site<'_>, obs: &mut Observations) {
    let final_url = site.final_url;
    if !f.skip("CORS probe") {
        let req = f
            .get(final_url)
            .header("origin", CORS_PROBE_ORIGIN)
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "cors")
            .header("sec-fetch-dest", "empty");
        obs.cors = f.send(req, final_url.as_str()).await.ok();
    }
}

/// A 404, and common directories for listings.
pub(super) async fn not_found_and_listings(
    f: &mut Fetcher<'_>,
    site: &Site<'_>,
    obs: &mut Observations,
) {
    let final_url = site.final_url;
    let reserve = site.reserve;
    let tag = nonce();
    if !f.skip("404 probe") {
        if let Ok(u) = final_url.join(&format!("/buttress-audit-{tag}-missing")) {
            obs.not_found = f.send(f.get(&u), u.as_str()).await.ok();
        }
    }
    for dir in ["/static/", "/uploads/", "/files/"] {
        if f.left() <= reserve || f.skip("directory-listing probe") {
            break;
        }
        if let Ok(u) = final_url.join(dir) {
            if let Ok(p) = f.send(f.get(&u), u.as_str()).await {
                obs.listings.push(p);
            }
        }
    }
}

/// The crawl of same-origin links for forms and parameters.
pub(super) async fn crawl(
    f: &mut Fetcher<'_>,
    site: &Site<'_>,
    main: &Page,
    obs: &mut Observations,
) {
    let final_url = site.final_url;
    let reserve = site.reserve;
    let opts = f.opts;
    let mut crawl = Crawl::new(final_url);
    for l in html::links(&main.body) {
        if let Ok(u) = final_url.join(&l) {
            crawl.offer(u);
        }
    }
    while let Some(u) = crawl.next() {
        if obs.pages.len() as u32 >= opts.max_pages {
            break;
        }
        if f.left() <= reserve.saturating_add(3) || f.skip("crawl") {
            break;
        }
        if let Ok(p) = f.send(f.get(&u), u.as_str()).await {
            for l in html::links(&p.body) {
                if let Ok(n) = u.join(&l) {
                    crawl.offer(n);
                }
            }
            obs.pages.push(p);
        }
    }
}

/// Malformed parameters: the page itself and up to two crawled URLs with a query.
pub(super) async fn malformed(f: &mut Fetcher<'_>, site: &Site<'_>, obs: &mut Observations) {
    let final_url = site.final_url;
    let reserve = site.reserve;
    let mut targets: Vec<Url> = vec![final_url.clone()];
    targets.extend(
        obs.pages
            .iter()
            .filter_map(|p| Url::parse(&p.url).ok())
            .filter(|u| u.query().is_some())
            .take(2),
    );
    for mut u in targets {
        if f.left() <= reserve || f.skip("malformed-parameter probe") {
            break;
        }
        let names: Vec<String> = u.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let bad = "'\"><%ff{{7*7}}";
        {
            let mut q = u.query_pairs_mut();
            q.clear();
            if names.is_empty() {
                q.append_pair("id", bad);
                q.append_pair("page", "-1");
            } else {
                for n in &names {
                    q.append_pair(n, bad);
                }
            }
            q.append_pair("q[]", "\u{0}");
        }
        if let Ok(p) = f.send(f.get(&u), u.as_str()).await {
            obs.malformed.push(p);
        }
    }
}
