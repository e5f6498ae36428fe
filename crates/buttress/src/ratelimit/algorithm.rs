//! The two counting strategies: [`Strategy`] (its docs compare them).

use std::collections::VecDeque;

use super::Limit;

/// The largest amount the moving window accepts (it stores one timestamp per admitted unit).
///
/// ```
/// use buttress::ratelimit::{RateLimiter, Strategy, MAX_WINDOW_AMOUNT};
/// assert_eq!(MAX_WINDOW_AMOUNT, 1000);
/// assert!(RateLimiter::parse("1001 per hour")?.with_strategy(Strategy::MovingWindow).is_err());
/// # Ok::<(), buttress::ratelimit::RateLimitError>(())
/// ```
pub const MAX_WINDOW_AMOUNT: u64 = 1000;

/// Limits with at most this amount use the moving window under [`Strategy::for_amount`].
///
/// ```
/// use buttress::ratelimit::{Strategy, AUTO_WINDOW_AMOUNT};
/// assert_eq!(Strategy::for_amount(AUTO_WINDOW_AMOUNT + 1), Strategy::Gcra);
/// ```
pub const AUTO_WINDOW_AMOUNT: u64 = 20;

/// How a limit counts: one of two strategies, each a pure function of a key's state and the
/// time (in microseconds). The memory store calls them under a shard lock; the Redis store runs
/// the same arithmetic in Lua.
///
/// | strategy | state per key and limit | most admitted in any interval of the period's length `T` |
/// |---|---|---|
/// | [`Strategy::Gcra`] | one `u64` (theoretical arrival time) | `2N − 1`; at most `N` at once; in any closed interval of length `L`, at most `N + ⌊L/τ⌋` with `τ = ⌈T/N⌉` |
/// | [`Strategy::MovingWindow`] | the times of the last `N` admitted units | exactly `N` (in every half-open interval `[t, t+T)`) |
///
/// GCRA (the algorithm of `governor` and redis-cell) is a token bucket of capacity `N` that
/// refills one token every `τ`: a client that waited a whole period may burst `N` at once and
/// then continue at one per `τ`. Use it for broad limits (`200 per day; 50 per hour`). The moving
/// window is the exact reading of "5 per minute": no interval of one minute ever holds a sixth
/// admitted request. Use it for small security limits (login, password reset); it keeps `N`
/// timestamps per key, so it is only offered up to [`MAX_WINDOW_AMOUNT`].
///
/// ```
/// use buttress::ratelimit::Strategy;
/// assert_eq!(Strategy::for_amount(5), Strategy::MovingWindow);
/// assert_eq!(Strategy::for_amount(200), Strategy::Gcra);
/// assert_eq!(Strategy::Gcra.as_str(), "gcra");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Generic cell rate algorithm: O(1) state per key, bursts of `N`, smooth refill.
    Gcra,
    /// Exact moving window (a log of the last `N` admissions per key).
    MovingWindow,
}

impl Strategy {
    /// The default for a limit of `amount`: the exact moving window up to
    /// [`AUTO_WINDOW_AMOUNT`], GCRA above.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::Strategy::for_amount(20), buttress::ratelimit::Strategy::MovingWindow);
    /// ```
    pub fn for_amount(amount: u64) -> Strategy {
        if amount <= AUTO_WINDOW_AMOUNT {
            Strategy::MovingWindow
        } else {
            Strategy::Gcra
        }
    }

    /// `"gcra"` or `"moving-window"`.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::Strategy::MovingWindow.as_str(), "moving-window");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Gcra => "gcra",
            Strategy::MovingWindow => "moving-window",
        }
    }
}

/// A limit ready to check: its amount, period and strategy, in microseconds, with what GCRA
/// derives from them computed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) limit: Limit,
    pub(crate) strategy: Strategy,
    pub(crate) amount: u64,
    pub(crate) period: u64,
    /// GCRA emission interval `⌈T/N⌉`.
    pub(crate) tau: u64,
    /// GCRA burst tolerance `τ·N` (saturating).
    pub(crate) burst: u64,
    /// Division by `tau` without a division instruction.
    pub(crate) per_tau: Divisor,
}

impl Rule {
    pub(crate) fn new(limit: Limit, strategy: Strategy) -> Rule {
        let amount = limit.amount();
        let period = limit.period_us();
        let tau = period.div_ceil(amount).max(1);
        Rule {
            limit,
            strategy,
            amount,
            period,
            tau,
            burst: tau.saturating_mul(amount),
            per_tau: Divisor::new(tau),
        }
    }
}

/// Unsigned division by a divisor fixed in advance, as a multiply-high and shifts (the round-up
/// method of Granlund and Montgomery, in the branch-free form of libdivide): exact for every
/// `u64` numerator, and a few cycles instead of a hardware division's tens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Divisor {
    /// The low 64 bits of the 65-bit multiplier; 0 for a power of two.
    magic: u64,
    shift: u32,
}

impl Divisor {
    /// The divisor `d` (at least 1; 0 is taken as 1).
    pub(crate) fn new(d: u64) -> Divisor {
        let d = d.max(1);
        let log2 = 63 - d.leading_zeros();
        if d.is_power_of_two() {
            return Divisor {
                magic: 0,
                shift: log2,
            };
        }
        // m = ⌊2^(64+log2) / d⌋ fits in 64 bits as d > 2^log2; the multiplier is
        // 2^64 + 2m (+1 when the remainder doubled reaches d) + 1, kept without its top bit.
        let num = 1u128 << (64 + log2);
        let d128 = u128::from(d);
        let (m, rem) = (num / d128, num % d128);
        let mut magic = (m as u64).wrapping_add(m as u64);
        if 2 * rem >= d128 {
            magic = magic.wrapping_add(1);
        }
        Divisor {
            magic: magic.wrapping_add(1),
            shift: log2,
        }
    }

    /// `n / d`.
    #[inline]
    pub(crate) fn divide(self, n: u64) -> u64 {
        if self.magic == 0 {
            return n >> self.shift;
        }
        let q = ((u128::from(self.magic) * u128::from(n)) >> 64) as u64;
        (((n - q) >> 1) + q) >> self.shift
    }
}

/// The outcome of one limit for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Outcome {
    pub(crate) allowed: bool,
    /// Units still available after this request.
    pub(crate) remaining: u64,
    /// Microseconds until the key is back to a full allowance.
    pub(crate) reset_after: u64,
    /// Microseconds until this request would be admitted (0 when allowed).
    pub(crate) retry_after: u64,
}

/// Outcomes of one check, inline for up to 4 limits (no allocation on the hot path).
#[derive(Debug, Clone)]
pub(crate) struct Outcomes {
    inline: [Outcome; 4],
    len: usize,
    heap: Vec<Outcome>,
}

impl Outcomes {
    pub(crate) fn new() -> Self {
        Outcomes {
            inline: [Outcome::default(); 4],
            len: 0,
            heap: Vec::new(),
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, o: Outcome) {
        if self.len < self.inline.len() && self.heap.is_empty() {
            self.inline[self.len] = o;
            self.len += 1;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline[..self.len]);
            }
            self.heap.push(o);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.heap.clear();
    }

    pub(crate) fn as_slice(&self) -> &[Outcome] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }

    pub(crate) fn all_allowed(&self) -> bool {
        self.as_slice().iter().all(|o| o.allowed)
    }
}

/// GCRA: `tat` is the theoretical arrival time (0 for a fresh key). Returns the outcome and
/// the new `tat` to store when allowed.
#[inline]
pub(crate) fn gcra(rule: &Rule, tat: u64, now: u64, cost: u64) -> (Outcome, u64) {
    let burst = rule.burst;
    let base = tat.max(now);
    let new_tat = base.saturating_add(rule.tau.saturating_mul(cost));
    let allow_at = new_tat.saturating_sub(burst);
    if cost > rule.amount || now < allow_at {
        let retry = if cost > rule.amount {
            u64::MAX
        } else {
            allow_at - now
        };
        let remaining = rule.per_tau.divide((now + burst).saturating_sub(base));
        return (
            Outcome {
                allowed: false,
                remaining,
                reset_after: base - now,
                retry_after: retry,
            },
            tat,
        );
    }
    let remaining = rule.per_tau.divide(now + burst - new_tat);
    (
        Outcome {
            allowed: true,
            remaining,
            reset_after: new_tat - now,
            retry_after: 0,
        },
        new_tat,
    )
}

/// Moving window: `log` holds the times of admitted units, oldest first, at most `N` long.
/// Admits when the units in `(now - T, now]` plus `cost` fit in `N`; records them when `commit`.
/// The outcome is reported as if committed.
pub(crate) fn window(
    rule: &Rule,
    log: &mut VecDeque<u64>,
    now: u64,
    cost: u64,
    commit: bool,
) -> Outcome {
    while log
        .front()
        .is_some_and(|&t| t.saturating_add(rule.period) <= now)
    {
        log.pop_front();
    }
    let used = log.len() as u64;
    let newest_reset = |log: &VecDeque<u64>| {
        log.back()
            .map_or(0, |t| t.saturating_add(rule.period).saturating_sub(now))
    };
    if cost > rule.amount || used + cost > rule.amount {
        // The (used + cost - N)-th oldest entry must leave the window first.
        let retry = if cost > rule.amount {
            u64::MAX
        } else {
            let idx = usize::try_from(used + cost - rule.amount - 1).unwrap_or(usize::MAX);
            log.get(idx)
                .map_or(1, |t| t.saturating_add(rule.period).saturating_sub(now))
        };
        return Outcome {
            allowed: false,
            remaining: rule.amount.saturating_sub(used),
            reset_after: newest_reset(log),
            retry_after: retry.max(1),
        };
    }
    if commit {
        for _ in 0..cost {
            log.push_back(now);
        }
    }
    Outcome {
        allowed: true,
        remaining: rule.amount - used - cost,
        reset_after: if cost > 0 {
            rule.period
        } else {
            newest_reset(log)
        },
        retry_after: 0,
    }
}

/// Whether a GCRA state can be forgotten (equals a fresh key) at `now`.
pub(crate) fn gcra_idle(tat: u64, now: u64) -> bool {
    tat <= now
}

/// Whether a window log can be forgotten at `now`.
pub(crate) fn window_idle(rule_period: u64, log: &VecDeque<u64>, now: u64) -> bool {
    log.back()
        .is_none_or(|&t| t.saturating_add(rule_period) <= now)
}
