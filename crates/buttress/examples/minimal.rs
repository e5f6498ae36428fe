//! Run with `cargo run -p buttress --example minimal`, then open <http://127.0.0.1:8000/>.
//!
//! The smallest protected app: settings from the environment (`BUTTRESS_*`, `SECRET_KEY`),
//! one page, every protection, served by Buttress's hardened server until Ctrl-C.

use axum::{routing::get, Router};
use buttress::server::{shutdown_signal, ServeOptions, Server};
use buttress::settings::Settings;
use buttress::stack::Stack;
use buttress::{Buttress, StartupError};

/// The application inside every protection. Every route goes in before `apply`.
pub fn app(settings: &Settings) -> Result<Stack, StartupError> {
    let routes = Router::new().route("/", get(|| async { "hello" }));
    Buttress::from_settings(settings)?.apply(routes) // refuses an unsafe Production start
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::from_env(None)?; // a bad variable is an error that names the fix
    let server = Server::bind(app(&settings)?, ServeOptions::from_settings(&settings)?).await?;
    eprintln!("listening on http://{}/", server.local_addr());
    shutdown_signal().await; // Ctrl-C or SIGTERM
    server.shutdown().await; // in-flight requests finish
    Ok(())
}
