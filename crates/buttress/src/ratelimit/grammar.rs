//! The limit string grammar: [`Limits`] (its docs give the grammar).

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;
use std::time::Duration;

/// The largest amount a limit may have.
///
/// ```
/// assert!("1000000001 per day".parse::<buttress::ratelimit::Limit>().is_err());
/// ```
pub const MAX_AMOUNT: u64 = 1_000_000_000;
/// The largest multiple of a unit (`per 1000 years` at most).
///
/// ```
/// assert!("1 per 1001 years".parse::<buttress::ratelimit::Limit>().is_err());
/// ```
pub const MAX_MULTIPLES: u64 = 1000;

/// A unit of time in a limit string.
///
/// ```
/// use buttress::ratelimit::Unit;
/// assert_eq!(Unit::Month.seconds(), 30 * 86_400);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// One second.
    Second,
    /// 60 seconds.
    Minute,
    /// 3,600 seconds.
    Hour,
    /// 86,400 seconds.
    Day,
    /// 30 days, as in `limits`.
    Month,
    /// 12 months of 30 days, as in `limits`.
    Year,
}

impl Unit {
    const ALL: [Unit; 6] = [
        Unit::Second,
        Unit::Minute,
        Unit::Hour,
        Unit::Day,
        Unit::Month,
        Unit::Year,
    ];

    /// The unit's length in seconds.
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::Unit::Hour.seconds(), 3600);
    /// ```
    pub fn seconds(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3_600,
            Unit::Day => 86_400,
            Unit::Month => 30 * 86_400,
            Unit::Year => 12 * 30 * 86_400,
        }
    }

    /// The singular name (`"minute"`).
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::Unit::Day.name(), "day");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Month => "month",
            Unit::Year => "year",
        }
    }
}

/// `1 per second`, a placeholder where a limit is needed but none applies.
pub(crate) const ONE_PER_SECOND: Limit = Limit {
    amount: 1,
    multiples: 1,
    unit: Unit::Second,
};

/// `5 per minute`, the login preset.
pub(crate) const FIVE_PER_MINUTE: Limit = Limit {
    amount: 5,
    multiples: 1,
    unit: Unit::Minute,
};

/// One limit: `amount` requests per `multiples` × `unit`.
///
/// ```
/// use buttress::ratelimit::{Limit, Unit};
/// let l: Limit = "10 per 2 minutes".parse()?;
/// assert_eq!(l, Limit::new(10, 2, Unit::Minute)?);
/// assert_eq!(l.period().as_secs(), 120);
/// assert_eq!(l.to_string(), "10 per 2 minutes");
/// # Ok::<(), buttress::ratelimit::GrammarError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    amount: u64,
    multiples: u64,
    unit: Unit,
}

impl Limit {
    /// A limit of `amount` per `multiples` `unit`s: `amount` at most [`MAX_AMOUNT`] (0, as
    /// in `limits`, refuses every request: a route closed for maintenance), `multiples` from 1
    /// to [`MAX_MULTIPLES`].
    ///
    /// ```
    /// use buttress::ratelimit::{Limit, Unit};
    /// assert!(Limit::new(5, 1, Unit::Minute).is_ok());
    /// assert!(Limit::new(0, 1, Unit::Minute).is_ok(), "closed");
    /// assert!(Limit::new(5, 0, Unit::Minute).is_err());
    /// ```
    pub fn new(amount: u64, multiples: u64, unit: Unit) -> Result<Limit, GrammarError> {
        if amount > MAX_AMOUNT {
            return Err(GrammarError::new(
                0,
                "an amount from 0 to 1000000000",
                amount.to_string(),
            ));
        }
        if multiples == 0 || multiples > MAX_MULTIPLES {
            return Err(GrammarError::new(
                0,
                "a multiple from 1 to 1000",
                multiples.to_string(),
            ));
        }
        Ok(Limit {
            amount,
            multiples,
            unit,
        })
    }

    /// How many requests (cost units) the period admits.
    ///
    /// ```
    /// assert_eq!("5/minute".parse::<buttress::ratelimit::Limit>()?.amount(), 5);
    /// # Ok::<(), buttress::ratelimit::GrammarError>(())
    /// ```
    pub fn amount(&self) -> u64 {
        self.amount
    }

    /// How many units make the period (`2` in `10 per 2 minutes`).
    ///
    /// ```
    /// assert_eq!("10 per 2 minutes".parse::<buttress::ratelimit::Limit>()?.multiples(), 2);
    /// # Ok::<(), buttress::ratelimit::GrammarError>(())
    /// ```
    pub fn multiples(&self) -> u64 {
        self.multiples
    }

    /// The unit.
    ///
    /// ```
    /// use buttress::ratelimit::{Limit, Unit};
    /// assert_eq!("1/second".parse::<Limit>()?.unit(), Unit::Second);
    /// # Ok::<(), buttress::ratelimit::GrammarError>(())
    /// ```
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// The period's length.
    ///
    /// ```
    /// assert_eq!("1/day".parse::<buttress::ratelimit::Limit>()?.period().as_secs(), 86_400);
    /// # Ok::<(), buttress::ratelimit::GrammarError>(())
    /// ```
    pub fn period(&self) -> Duration {
        Duration::from_secs(self.multiples * self.unit.seconds())
    }

    /// The period in microseconds, the time unit of the stores.
    pub(crate) fn period_us(&self) -> u64 {
        self.multiples * self.unit.seconds() * 1_000_000
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.multiples == 1 {
            write!(f, "{} per {}", self.amount, self.unit.name())
        } else {
            write!(
                f,
                "{} per {} {}s",
                self.amount,
                self.multiples,
                self.unit.name()
            )
        }
    }
}

impl FromStr for Limit {
    type Err = GrammarError;

    /// Parses exactly one limit.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut p = Parser::new(s);
        let limit = p.limit()?;
        p.end(false)?;
        Ok(limit)
    }
}

/// One or more limits that must all pass (`200 per day; 50 per hour`).
///
/// Written in the limit string grammar of Python's `limits` library (Flask-Limiter), parsed
/// into typed [`Limit`]s at start-up.
///
/// ```text
/// limits := limit ( sep limit )*          sep  := "," | ";" | "|"
/// limit  := ws number ws ( "/" | "per" ) ws [ number ] ws unit [ "s" ] ws
/// unit   := "second" | "minute" | "hour" | "day" | "month" | "year"   (any case)
/// ```
///
/// A month is 30 days and a year 360 days, as in `limits`. An amount of 0 refuses every request
/// (`0 per minute`: a route closed for maintenance), as in `limits`; zero multiples are refused
/// (a period of no time), and so is anything the `limits` regular expression would not match. An error names the byte position and what was expected.
///
/// ```
/// use buttress::ratelimit::{Limits, Unit};
///
/// let limits: Limits = "200 per day; 50/hour".parse()?;
/// assert_eq!(limits.len(), 2);
/// assert_eq!(limits[1].amount(), 50);
/// assert_eq!(limits[1].unit(), Unit::Hour);
/// assert_eq!(limits.to_string(), "200 per day; 50 per hour");
///
/// let err = "5 per mintue".parse::<Limits>().unwrap_err();
/// assert_eq!(err.position(), 6);
/// assert!(err.to_string().contains("a unit"), "{err}");
/// # Ok::<(), buttress::ratelimit::GrammarError>(())
/// ```
///
/// ```
/// use buttress::ratelimit::Limits;
/// let l: Limits = "1/second, 5 per minute | 100 per DAY".parse()?;
/// assert_eq!(l.to_string(), "1 per second; 5 per minute; 100 per day");
/// # Ok::<(), buttress::ratelimit::GrammarError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Limits(Vec<Limit>);

impl Limits {
    /// A list of limits; it must not be empty.
    ///
    /// ```
    /// use buttress::ratelimit::{Limit, Limits, Unit};
    /// let l = Limits::new(vec![Limit::new(5, 1, Unit::Minute)?])?;
    /// assert_eq!(l.len(), 1);
    /// assert!(Limits::new(vec![]).is_err());
    /// # Ok::<(), buttress::ratelimit::GrammarError>(())
    /// ```
    pub fn new(limits: Vec<Limit>) -> Result<Limits, GrammarError> {
        if limits.is_empty() {
            return Err(GrammarError::new(0, "at least one limit", "nothing".into()));
        }
        Ok(Limits(limits))
    }

    /// `200 per day; 50 per hour`, the global default (Flask-Limiter's usual example).
    ///
    /// ```
    /// assert_eq!(buttress::ratelimit::Limits::global_default().to_string(), "200 per day; 50 per hour");
    /// ```
    pub fn global_default() -> Limits {
        Limits(vec![
            Limit {
                amount: 200,
                multiples: 1,
                unit: Unit::Day,
            },
            Limit {
                amount: 50,
                multiples: 1,
                unit: Unit::Hour,
            },
        ])
    }

    /// The limits as a slice.
    ///
    /// ```
    /// let l: buttress::ratelimit::Limits = "5/minute".parse()?;
    /// assert_eq!(l.as_slice().len(), 1);
    /// # Ok::<(), buttress::ratelimit::GrammarError>(())
    /// ```
    pub fn as_slice(&self) -> &[Limit] {
        &self.0
    }
}

impl Deref for Limits {
    type Target = [Limit];
    fn deref(&self) -> &[Limit] {
        &self.0
    }
}

impl From<Limit> for Limits {
    fn from(l: Limit) -> Limits {
        Limits(vec![l])
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

impl FromStr for Limits {
    type Err = GrammarError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut p = Parser::new(s);
        let mut out = vec![p.limit()?];
        while p.end(true)? {
            out.push(p.limit()?);
        }
        Ok(Limits(out))
    }
}

/// A limit string that does not parse: where, and what was expected there.
///
/// ```
/// let e = "5 per".parse::<buttress::ratelimit::Limits>().unwrap_err();
/// assert_eq!(e.position(), 5);
/// assert_eq!(e.to_string(), "at position 5: expected a number or a unit (second, minute, hour, day, month or year), found end of text");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: expected {expected}, found {found}")]
pub struct GrammarError {
    position: usize,
    expected: &'static str,
    found: String,
}

impl GrammarError {
    fn new(position: usize, expected: &'static str, found: String) -> GrammarError {
        GrammarError {
            position,
            expected,
            found,
        }
    }

    /// The byte offset in the text where parsing stopped.
    ///
    /// ```
    /// assert_eq!("x".parse::<buttress::ratelimit::Limits>().unwrap_err().position(), 0);
    /// ```
    pub fn position(&self) -> usize {
        self.position
    }

    /// What the grammar expected at [`position`](Self::position).
    ///
    /// ```
    /// assert_eq!("x".parse::<buttress::ratelimit::Limits>().unwrap_err().expected(), "a number");
    /// ```
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

const UNIT_EXPECTED: &str = "a unit (second, minute, hour, day, month or year)";

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn found(&self) -> String {
        let rest = self.rest();
        match rest.chars().next() {
            None => "end of text".to_owned(),
            Some(_) => {
                let word: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ';' | '|'))
                    .take(20)
                    .collect();
                let word = if word.is_empty() {
                    rest.chars().take(1).collect()
                } else {
                    word
                };
                format!("{word:?}")
            }
        }
    }

    fn fail<T>(&self, expected: &'static str) -> Result<T, GrammarError> {
        Err(GrammarError::new(self.pos, expected, self.found()))
    }

    fn number(
        &mut self,
        min: u64,
        max: u64,
        expected: &'static str,
    ) -> Result<Option<u64>, GrammarError> {
        let rest = self.rest();
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Ok(None);
        }
        let start = self.pos;
        let value = rest[..digits]
            .parse::<u64>()
            .ok()
            .filter(|v| (min..=max).contains(v));
        match value {
            Some(v) => {
                self.pos += digits;
                Ok(Some(v))
            }
            None => Err(GrammarError::new(
                start,
                expected,
                format!("{:?}", &rest[..digits]),
            )),
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        let rest = self.rest();
        let ok = rest.len() >= word.len()
            && rest.is_char_boundary(word.len())
            && rest[..word.len()].eq_ignore_ascii_case(word);
        if ok {
            self.pos += word.len();
        }
        ok
    }

    fn limit(&mut self) -> Result<Limit, GrammarError> {
        self.ws();
        let Some(amount) = self.number(0, MAX_AMOUNT, "an amount from 0 to 1000000000")? else {
            return self.fail("a number");
        };
        self.ws();
        if !(self.keyword("/") || self.keyword("per")) {
            return self.fail("\"per\" or \"/\"");
        }
        self.ws();
        let multiples = self.number(1, MAX_MULTIPLES, "a multiple from 1 to 1000")?;
        self.ws();
        let Some(unit) = Unit::ALL.into_iter().find(|u| self.keyword(u.name())) else {
            return self.fail(if multiples.is_some() {
                UNIT_EXPECTED
            } else {
                "a number or a unit (second, minute, hour, day, month or year)"
            });
        };
        let _plural = self.keyword("s");
        Ok(Limit {
            amount,
            multiples: multiples.unwrap_or(1),
            unit,
        })
    }

    /// After a limit: skips spaces; `true` if a separator follows (consumed), `false` at the end.
    fn end(&mut self, many: bool) -> Result<bool, GrammarError> {
        self.ws();
        let rest = self.rest();
        match rest.bytes().next() {
            None => Ok(false),
            Some(b',' | b';' | b'|') if many => {
                self.pos += 1;
                Ok(true)
            }
            Some(_) if many => self.fail("a separator (\";\", \",\" or \"|\") or the end"),
            Some(_) => self.fail("the end of the limit"),
        }
    }
}
