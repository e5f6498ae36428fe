//! The crawl's queue: same-origin links in the order they were found, each once, and never
//! more than [`MAX_QUEUE`] waiting.

use std::collections::{HashSet, VecDeque};

use url::Url;

/// Links waiting to be read, at most. A site can put [`crate::html::MAX_LINKS`] links on every
/// page it serves, and the scan reads only `--max-pages` of them, so links found when the queue
/// is full are dropped.
pub const MAX_QUEUE: usize = 500;

/// Same-origin links to read, first found first.
pub(super) struct Crawl {
    origin: Url,
    queue: VecDeque<Url>,
    seen: HashSet<String>,
}

impl Crawl {
    /// A crawl from `page` (already read, so never queued).
    pub(super) fn new(page: &Url) -> Crawl {
        let mut first = page.clone();
        first.set_fragment(None);
        Crawl {
            origin: page.clone(),
            queue: VecDeque::new(),
            seen: HashSet::from([first.to_string()]),
        }
    }

    /// Queues `link` (without its fragment or user name and password) unless it is on another origin, its path looks
    /// like signing out or deleting, it was queued before, or the queue is full. Says whether
    /// it was queued.
    pub(super) fn offer(&mut self, mut link: Url) -> bool {
        link.set_fragment(None);
        super::userinfo::strip(&mut link);
        let path = link.path().to_ascii_lowercase();
        if !super::same_origin(&link, &self.origin)
            || ["logout", "signout", "delete"]
                .iter()
                .any(|w| path.contains(w))
            || self.queue.len() >= MAX_QUEUE
            || !self.seen.insert(link.to_string())
        {
            return false;
        }
        self.queue.push_back(link);
        true
    }

    /// The next link to read.
    pub(super) fn next(&mut self) -> Option<Url> {
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn queue_is_fifo_same_origin_once_and_bounded() {
        let mut c = Crawl::new(&url("http://a.example/#top"));
        assert!(!c.offer(url("http://a.example/")), "the page itself");
        assert!(!c.offer(url("https://a.example/x")), "another scheme");
        assert!(!c.offer(url("http://a.example:81/x")), "another port");
        assert!(!c.offer(url("http://b.example/x")), "another host");
        assert!(!c.offer(url("http://a.example/LogOut")));
        assert!(!c.offer(url("http://a.example/items/1/delete")));
        assert!(c.offer(url("http://a.example/0#frag")));
        assert!(!c.offer(url("http://a.example/0")), "seen");
        // Ten thousand links (ten pages of MAX_LINKS): only MAX_QUEUE wait, the first ones.
        let queued = (1..10_000)
            .filter(|i| c.offer(url(&format!("http://a.example/{i}"))))
            .count();
        assert_eq!(queued, MAX_QUEUE - 1);
        let order: Vec<String> = std::iter::from_fn(|| c.next())
            .map(|u| u.path().to_owned())
            .collect();
        assert_eq!(order.len(), MAX_QUEUE);
        assert_eq!((order[0].as_str(), order[1].as_str()), ("/0", "/1"));
        assert_eq!(order[MAX_QUEUE - 1], format!("/{}", MAX_QUEUE - 1));
        assert!(c.offer(url("http://a.example/fresh")), "room again");
    }
}
