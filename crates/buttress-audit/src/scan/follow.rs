//! The page, following redirects one hop at a time on one host: a loop, too many hops or a
//! request that fails ends the scan with that failure.

use std::collections::HashSet;

use url::Url;

use super::{userinfo, Fetcher};
use crate::observe::{Failure, Hop, Observations, Page};

/// The page `start` leads to, the redirects followed and the last URL asked; or the
/// observations of a scan that ends here.
pub(super) async fn follow(
    f: &mut Fetcher<'_>,
    start: &Url,
    target: &str,
) -> Result<(Page, Vec<Hop>, Url), Box<Observations>> {
    let opts = f.opts;
    // 1. the page, following redirects one hop at a time
    let mut url = start.clone();
    let mut chain: Vec<Hop> = Vec::new();
    let mut visited: HashSet<String> = HashSet::new();
    visited.insert(url.to_string());
    let main = loop {
        let page = match f.send(f.get(&url), url.as_str()).await {
            Ok(p) => p,
            Err(e) => {
                let failure = e.failure(url.as_str(), opts);
                f.bar.finish_and_clear();
                let mut obs = Observations::failed(target, chain, failure);
                obs.requests = f.sent;
                obs.notes = std::mem::take(&mut f.notes);
                return Err(Box::new(obs));
            }
        };
        let location = page.header("location").map(str::to_owned);
        let next = match (&location, (300..400).contains(&page.status)) {
            (Some(l), true) => url.join(l).ok().map(|mut n| {
                userinfo::strip(&mut n);
                n
            }),
            _ => None,
        };
        let Some(next) = next else { break page };
        chain.push(Hop {
            url: url.to_string(),
            status: page.status,
            location: location.clone(),
        });
        if next.host_str() != start.host_str() {
            f.notes.push(format!(
                "redirect from {url} to another host ({next}) recorded, not followed: one host per scan"
            ));
            chain.pop();
            break page;
        }
        if !visited.insert(next.to_string()) {
            let loop_text = format!(
                "redirect loop: {} → {next}",
                chain
                    .iter()
                    .map(|h| h.url.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            );
            f.bar.finish_and_clear();
            let mut obs = Observations::failed(target, chain, Failure::RedirectLoop(loop_text));
            obs.requests = f.sent;
            obs.notes = std::mem::take(&mut f.notes);
            return Err(Box::new(obs));
        }
        if chain.len() as u32 > opts.max_redirects {
            let text = format!(
                "more than {} redirects from {target} (last: {next})",
                opts.max_redirects
            );
            f.bar.finish_and_clear();
            let mut obs = Observations::failed(target, chain, Failure::TooManyRedirects(text));
            obs.requests = f.sent;
            obs.notes = std::mem::take(&mut f.notes);
            return Err(Box::new(obs));
        }
        url = next;
    };
    Ok((main, chain, url))
}
