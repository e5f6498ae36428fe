//! The `buttress` binary as the tests run it: a command with a clean environment, and a served
//! portal on a free loopback port that is stopped (and its data directory removed) on drop.
//! Shared by the test binaries of this crate (`mod support;`).

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const STRONG_KEY: &str = "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E";

pub fn buttress(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_buttress"));
    cmd.args(args).env_clear().env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    buttress(args, env).output().expect("runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn hardened_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("BUTTRESS_ENV", "production"),
        ("BUTTRESS_BEHIND_PROXY", "true"),
        ("BUTTRESS_TRUSTED_PROXIES", "127.0.0.1"),
        ("BUTTRESS_ALLOWED_HOSTS", "localhost"),
        ("BUTTRESS_HSTS_PRELOAD", "true"),
        ("SECRET_KEY", STRONG_KEY),
        (
            "BUTTRESS_SMTP_URL",
            "smtps://registry:hunter2pw@mail.example.org:465",
        ),
        ("BUTTRESS_PUBLIC_URL", "https://donors.example.org"),
    ]
}

/// A running `buttress serve`; reads the listening line from stderr.
pub struct Served {
    pub child: Child,
    pub url: String,
    pub lines: Vec<String>,
    /// The data directory this helper made (removed with the server).
    pub data: Option<tempfile::TempDir>,
}

impl Drop for Served {
    /// Stops the server even when a test fails half-way, and removes the data directory the
    /// helper made for it.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        drop(self.data.take());
    }
}

pub fn serve(args: &[&str], env: &[(&str, &str)]) -> Served {
    // The portal keeps its SQLite database in the data directory: never in the source tree.
    let data_dir = tempfile::Builder::new()
        .prefix("buttress-cli-data-")
        .tempdir()
        .expect("temp dir");
    let data = data_dir.path().to_str().expect("utf-8").to_owned();
    let mut env = env.to_vec();
    let own_data = !env.iter().any(|(k, _)| *k == "BUTTRESS_DATA_DIR");
    if own_data {
        env.push(("BUTTRESS_DATA_DIR", &data));
    }
    let child = buttress(args, &env)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut served = Served {
        child,
        url: String::new(),
        lines: Vec::new(),
        data: own_data.then_some(data_dir),
    };
    let stderr = served.child.stderr.take().expect("stderr");
    let mut reader = BufReader::new(stderr);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read") == 0 || Instant::now() > deadline {
            panic!("server did not announce itself: {:?}", served.lines);
        }
        served.lines.push(line.clone());
        if let Some(rest) = line.trim().strip_prefix("buttress: listening on ") {
            served.url = rest.trim_end_matches('/').to_owned();
            // Keep reading (and discarding) stderr so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in reader.lines() {});
            return served;
        }
    }
}

pub fn sigterm(child: &mut Child) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
