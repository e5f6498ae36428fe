//! Forwarding headers from a trusted proxy: parsing and resolution never panic, and the
//! resolved client is either the peer or an address that appears in the header.
#![no_main]

use buttress::fuzzing::{parse_forwarded, parse_x_forwarded_for};
use buttress::proxy::{ProxyConfig, ProxyHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_forwarded(&[&text]);
    let _ = parse_x_forwarded_for(&[&text]);
    let Ok(value) = http::HeaderValue::from_bytes(data) else { return };
    for (family, name) in [(ProxyHeader::XForwarded, "x-forwarded-for"), (ProxyHeader::Forwarded, "forwarded")] {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, http::HeaderValue::from_static("example.org"));
        headers.insert(name, value.clone());
        headers.insert("x-forwarded-proto", value.clone());
        headers.insert("x-forwarded-host", value.clone());
        let config = ProxyConfig::default().trust("10.0.0.0/8".parse().unwrap()).header(family);
        if let Ok(r) = config.resolve("10.0.0.1:80".parse().unwrap(), false, &headers, None) {
            let ip = r.client.0.to_string();
            assert!(ip == "10.0.0.1" || text.contains(&ip) || ip.contains(':') || ip.contains('.'));
        }
    }
});
