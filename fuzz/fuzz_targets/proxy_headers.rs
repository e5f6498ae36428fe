//! Forwarding headers from a trusted proxy: parsing and resolution never panic, and the
//! resolved client is either the peer or the address of one hop of the header, parsed hop by
//! hop the way the resolver reads it.
#![no_main]

use std::net::IpAddr;

use buttress::fuzzing::{hop_addresses, parse_forwarded, parse_x_forwarded_for};
use buttress::proxy::{ProxyConfig, ProxyHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_forwarded(&[&text]);
    let _ = parse_x_forwarded_for(&[&text]);
    let Ok(value) = http::HeaderValue::from_bytes(data) else { return };
    let peer: IpAddr = "10.0.0.1".parse().unwrap();
    for (family, name) in [(ProxyHeader::XForwarded, "x-forwarded-for"), (ProxyHeader::Forwarded, "forwarded")] {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, http::HeaderValue::from_static("example.org"));
        headers.insert(name, value.clone());
        headers.insert("x-forwarded-proto", value.clone());
        headers.insert("x-forwarded-host", value.clone());
        let config = ProxyConfig::default().trust("10.0.0.0/8".parse().unwrap()).header(family);
        if let Ok(r) = config.resolve((peer, 80).into(), false, &headers, None) {
            let client = r.client.0;
            let hops = hop_addresses(family, value.as_bytes());
            assert!(
                client == peer || hops.contains(&client),
                "{family:?} {value:?}: client {client} is neither the peer nor a hop of {hops:?}"
            );
        }
    }
});
