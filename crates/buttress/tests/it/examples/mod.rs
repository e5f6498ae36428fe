//! The examples in `crates/buttress/examples/`, run and held to what each promises.
//!
//! Each test module compiles its example's file into this test binary (`#[path]`), so the code
//! under test is the example's own, never a copy that could drift, and serves the example's
//! `app` exactly as its `main` does: [`Server::bind`] with [`ServeOptions::from_settings`], on
//! a free loopback port, then speaks HTTP to it. Running the compiled example binaries instead
//! would need their path (cargo gives tests `CARGO_BIN_EXE_*` for binaries, not for examples),
//! would test a stale binary when only this test target is rebuilt, and would cost a process
//! start per test; `main` itself only reads the environment and waits for Ctrl-C.
//! Where a test needs a peer other than loopback (a client that is not the trusted proxy), it
//! sends the request in-process with that peer's address.

use buttress::server::{ServeOptions, Server};
use buttress::settings::Settings;
use buttress::stack::Stack;

use crate::support::Reply;

mod behind_proxy;
mod minimal;
mod sign_in;

/// Serves `stack` as the examples' `main` does, where `settings` say (`127.0.0.1:0` in tests).
async fn serve(stack: Stack, settings: &Settings) -> Server {
    let opts = ServeOptions::from_settings(settings).expect("serve options");
    Server::bind(stack, opts)
        .await
        .expect("the example's server binds")
}

/// A client that shows redirects instead of following them and keeps no cookies (the tests
/// carry the session cookie themselves).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The parts of a response the assertions read.
async fn reply(res: reqwest::Response) -> Reply {
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.text().await.expect("body");
    Reply {
        status,
        headers,
        body,
    }
}
