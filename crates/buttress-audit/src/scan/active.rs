//! The probes that change state or load the site, each only where [`guard`](super::guard)
//! allows it: one tokenless cross-site POST per form (`--active`) and the bounded burst of
//! `--probe-rate-limit`.

use std::collections::HashSet;

use reqwest::Method;
use url::Url;

use super::{guard, same_origin, userinfo, Fetcher, Site, ATTACKER};
use crate::html;
use crate::observe::{CsrfAttempt, Observations, Page, Probe, RateProbe};

/// `--active`: one tokenless cross-site POST per same-origin form.
pub(super) async fn csrf(
    f: &mut Fetcher<'_>,
    site: &Site<'_>,
    main: &Page,
    obs: &mut Observations,
) {
    let final_url = site.final_url;
    let reserve = site.reserve;
    let refusal = site.refusal;
    let host = site.host;
    let opts = f.opts;
    if opts.active {
        if let Some(why) = refusal {
            obs.csrf = Probe::Skipped(why.clone());
        } else {
            let mut attempts = Vec::new();
            let mut stopped: Option<String> = None;
            let pages: Vec<(String, String)> = std::iter::once(main)
                .chain(obs.pages.iter())
                .map(|p| (p.url.clone(), p.body.clone()))
                .collect();
            let mut posted: HashSet<String> = HashSet::new();
            'pages: for (page_url, body) in pages {
                let Ok(base) = Url::parse(&page_url) else {
                    continue;
                };
                for form in html::forms(&body)
                    .into_iter()
                    .filter(|x| x.method == "post")
                {
                    let Ok(mut action) = base.join(&form.action) else {
                        continue;
                    };
                    userinfo::strip(&mut action);
                    if !same_origin(&action, final_url) || !posted.insert(action.to_string()) {
                        continue;
                    }
                    if f.left() <= reserve || f.skip("active CSRF probe") {
                        break 'pages;
                    }
                    let fields: Vec<(String, String)> = form
                        .fields
                        .iter()
                        .filter(|x| !html::is_token_name(&x.name))
                        .map(|x| {
                            let v = if x.value.is_empty() {
                                "buttress-audit".to_owned()
                            } else {
                                x.value.clone()
                            };
                            (x.name.clone(), v)
                        })
                        .collect();
                    let req = f
                        .request(Method::POST, &action)
                        .header("origin", ATTACKER)
                        .header("referer", format!("{ATTACKER}/"))
                        .header("sec-fetch-site", "cross-site")
                        .header("sec-fetch-mode", "navigate")
                        .header("sec-fetch-dest", "document")
                        .form(&fields);
                    if let Ok(p) = f.send(req, action.as_str()).await {
                        if let Some(why) = guard::peer_refusal(host, f.peer, opts) {
                            stopped = Some(why);
                            break 'pages;
                        }
                        let loc = p.header("location").unwrap_or("").to_ascii_lowercase();
                        let accepted = (200..300).contains(&p.status)
                            || ((300..400).contains(&p.status)
                                && !loc.contains("login")
                                && !loc.contains("error"));
                        attempts.push(CsrfAttempt {
                            page: page_url.clone(),
                            action: action.to_string(),
                            status: p.status,
                            accepted,
                        });
                    }
                }
            }
            obs.csrf = match stopped {
                Some(why) => Probe::Skipped(format!(
                    "{why} (stopped after {} POST(s))",
                    attempts.len() + 1
                )),
                None => Probe::Done(attempts),
            };
        }
    }
}

/// `--probe-rate-limit`: a bounded burst at the URL chosen (or why it may not run).
pub(super) async fn rate_burst(
    f: &mut Fetcher<'_>,
    site: &Site<'_>,
    rate_target: Option<Result<Url, String>>,
    obs: &mut Observations,
) {
    let host = site.host;
    let opts = f.opts;
    match rate_target {
        None => {}
        Some(Err(why)) => obs.rate = Probe::Skipped(why),
        Some(Ok(u)) => {
            let mut r = RateProbe {
                url: u.to_string(),
                sent: 0,
                limited: 0,
                first_limited_at: None,
                retry_after: None,
            };
            let mut stopped: Option<String> = None;
            for i in 1..=opts.burst {
                if f.skip("rate-limit burst") {
                    break;
                }
                match f.send(f.request(Method::GET, &u), u.as_str()).await {
                    Ok(p) => {
                        r.sent = i;
                        if let Some(why) = guard::peer_refusal(host, f.peer, opts) {
                            stopped = Some(format!("{why} (stopped after {i} request(s))"));
                            break;
                        }
                        if p.status == 429 {
                            r.limited += 1;
                            if r.first_limited_at.is_none() {
                                r.first_limited_at = Some(i);
                                r.retry_after = p.header("retry-after").map(str::to_owned);
                            }
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            obs.rate = match stopped {
                Some(why) => Probe::Skipped(why),
                None => Probe::Done(r),
            };
        }
    }
}
