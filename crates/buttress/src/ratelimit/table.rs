//! The entries of one shard (or of the overflow table): each (client, limit) pair is one entry,
//! keyed by a 64-bit id, with the step that checks one limit on one entry.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::algorithm::{gcra, gcra_idle, window, window_idle, Outcome, Outcomes, Rule, Strategy};

/// Keys are already uniform random 64-bit values: hash them as themselves.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(super) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// GCRA states and window logs by entry id, and when they were last swept.
#[derive(Default)]
pub(super) struct Maps {
    pub(super) gcra: IdMap<u64>,
    pub(super) window: IdMap<VecDeque<u64>>,
    pub(super) last_sweep: u64,
    pub(super) last_full_sweep: u64,
}

impl Maps {
    pub(super) fn len(&self) -> usize {
        self.gcra.len() + self.window.len()
    }

    /// Drops every entry that no longer matters: forgetting it changes no decision.
    pub(super) fn sweep(&mut self, rules: &[Rule], now: u64) {
        self.gcra.retain(|_, tat| !gcra_idle(*tat, now));
        // Window entries do not know their rule; keep those whose newest stamp is within the
        // longest window period.
        let longest = rules
            .iter()
            .filter(|r| r.strategy == Strategy::MovingWindow)
            .map(|r| r.period)
            .max()
            .unwrap_or(0);
        self.window.retain(|_, log| !window_idle(longest, log, now));
        self.last_sweep = now;
    }

    pub(super) fn approx_bytes(&self) -> usize {
        let ctrl = 1;
        self.gcra.capacity() * (16 + ctrl)
            + self.window.capacity() * (8 + std::mem::size_of::<VecDeque<u64>>() + ctrl)
            + self
                .window
                .values()
                .map(|l| l.capacity() * 8)
                .sum::<usize>()
    }

    pub(super) fn contains(&self, strategy: Strategy, id: u64) -> bool {
        match strategy {
            Strategy::Gcra => self.gcra.contains_key(&id),
            Strategy::MovingWindow => self.window.contains_key(&id),
        }
    }

    /// Whether the entry `id` of `rule` holds state that still matters at `now`.
    pub(super) fn live(&self, rule: &Rule, id: u64, now: u64) -> bool {
        match rule.strategy {
            Strategy::Gcra => self.gcra.get(&id).is_some_and(|t| !gcra_idle(*t, now)),
            Strategy::MovingWindow => self
                .window
                .get(&id)
                .is_some_and(|log| !window_idle(rule.period, log, now)),
        }
    }

    /// Gives back `cost` units on one entry: a GCRA state moves back `cost` emission intervals
    /// (removed once that is a full bucket), a window drops its `cost` newest timestamps.
    pub(super) fn refund(&mut self, rule: &Rule, id: u64, cost: u64, now: u64) {
        match rule.strategy {
            Strategy::Gcra => {
                if let Some(tat) = self.gcra.get_mut(&id) {
                    *tat = tat.saturating_sub(rule.tau.saturating_mul(cost));
                    if *tat <= now {
                        self.gcra.remove(&id);
                    }
                }
            }
            Strategy::MovingWindow => {
                if let Some(log) = self.window.get_mut(&id) {
                    let keep = log
                        .len()
                        .saturating_sub(usize::try_from(cost).unwrap_or(usize::MAX));
                    log.truncate(keep);
                    if log.is_empty() {
                        self.window.remove(&id);
                    }
                }
            }
        }
    }

    /// Forgets one entry.
    pub(super) fn remove(&mut self, strategy: Strategy, id: u64) {
        match strategy {
            Strategy::Gcra => self.gcra.remove(&id).map(|_| ()),
            Strategy::MovingWindow => self.window.remove(&id).map(|_| ()),
        };
    }
}

/// Every rule on its entry: all must pass, and only then (with `commit`) is any recorded.
/// Inlined into the store's check, as it was when both lived in one module (a call cost a new
/// key 45 instructions).
#[inline]
pub(super) fn evaluate(
    maps: &mut Maps,
    ids: &[u64],
    rules: &[Rule],
    cost: u64,
    commit: bool,
    now: u64,
) -> Outcomes {
    let mut out = Outcomes::new();
    if rules.len() == 1 {
        out.push(step(maps, &rules[0], ids[0], cost, commit, now));
        return out;
    }
    for (r, id) in rules.iter().zip(ids) {
        out.push(step(maps, r, *id, cost, false, now));
    }
    if commit && out.all_allowed() {
        out.clear();
        for (r, id) in rules.iter().zip(ids) {
            out.push(step(maps, r, *id, cost, true, now));
        }
    }
    out
}

/// One rule on one entry. With `commit`, an allowed outcome is recorded (a fresh key is
/// inserted); without, nothing is inserted.
#[inline]
pub(super) fn step(
    maps: &mut Maps,
    rule: &Rule,
    id: u64,
    cost: u64,
    commit: bool,
    now: u64,
) -> Outcome {
    match rule.strategy {
        Strategy::Gcra => {
            let tat = maps.gcra.get(&id).copied().unwrap_or(0);
            let (outcome, new_tat) = gcra(rule, tat, now, cost);
            if commit && outcome.allowed && new_tat > now {
                maps.gcra.insert(id, new_tat);
            }
            outcome
        }
        Strategy::MovingWindow => {
            if commit {
                let log = maps.window.entry(id).or_default();
                let outcome = window(rule, log, now, cost, true);
                if log.is_empty() {
                    maps.window.remove(&id);
                }
                outcome
            } else {
                match maps.window.get_mut(&id) {
                    Some(log) => window(rule, log, now, cost, false),
                    None => window(rule, &mut VecDeque::new(), now, cost, false),
                }
            }
        }
    }
}

/// A distinct, well-mixed entry id for limit `i` of a client (splitmix64 finaliser).
#[inline]
pub(super) fn entry_id(base: u64, i: usize) -> u64 {
    let mut z = base ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
