//! Unit and property tests of the grammar, the strategies and the memory store.
use super::*;
