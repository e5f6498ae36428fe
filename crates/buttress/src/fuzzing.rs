//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, which only the fuzz
//! crate turns on): parsers and decoders that the library keeps private because a request
//! reaches them only through a layer. Not an API; it changes with the targets.

pub use crate::proxy::parse::{
    hop_addresses, parse_forwarded, parse_forwarded_bytes, parse_node, parse_x_forwarded_for,
    parse_x_forwarded_for_bytes, Element, ForwardedError, Node,
};

/// Decodes a session cookie's plaintext (the binary session encoding) with no cryptography:
/// what an authentic cookie holds once opened.
pub fn session_plaintext(bytes: &[u8]) -> Option<crate::session::SessionData> {
    crate::session::codec::decode_plaintext(bytes)
}
