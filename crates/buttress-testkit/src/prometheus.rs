//! A real Prometheus server for integration tests: started on a free loopback port with a
//! generated configuration that scrapes one target every second, its storage in a fresh
//! directory, killed (and the directory removed) on drop, also when the test panics.
//!
//! ```ignore
//! let prom = PrometheusServer::start("127.0.0.1:9464", Some("token-of-16-chars+"));
//! prom.wait_for_scrapes(2, Duration::from_secs(20));
//! let json = prom.query(r#"buttress_refusals_total{layer="csrf"}"#); // the API's raw JSON
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The Prometheus binary: `PROMETHEUS` or Debian's `/usr/bin/prometheus`.
fn prometheus_binary() -> String {
    std::env::var("PROMETHEUS").unwrap_or_else(|_| "/usr/bin/prometheus".to_owned())
}

/// A `prometheus` child process on 127.0.0.1 scraping one target.
pub struct PrometheusServer {
    port: u16,
    child: Child,
    dir: PathBuf,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `http://TARGET/metrics` every second (with `token` as a
    /// bearer token when given) and waits until it is ready.
    pub fn start(target: &str, token: Option<&str>) -> PrometheusServer {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "buttress-prometheus-{}-{}-{nanos}",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("data")).expect("a temporary directory");
        let auth = token.map_or(String::new(), |t| {
            format!("    authorization:\n      type: Bearer\n      credentials: \"{t}\"\n")
        });
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: buttress\n    metrics_path: /metrics\n{auth}    static_configs:\n      - targets: [\"{target}\"]\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("the configuration");
        let port = crate::free_port().expect("a free loopback port");
        let bin = prometheus_binary();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} ({e}); install Debian's prometheus (scripts/test does) or set PROMETHEUS")
            });
        let mut server = PrometheusServer { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(port, "/-/ready").is_none_or(|(status, _)| status != 200) {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("prometheus exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "prometheus was not ready within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The raw JSON of `GET /api/v1/query?query=PROMQL` (instant query, now).
    pub fn query(&self, promql: &str) -> String {
        let path = format!("/api/v1/query?query={}", encode(promql));
        match get(self.port, &path) {
            Some((200, body)) => body,
            other => panic!("query {promql:?} failed: {other:?}"),
        }
    }

    /// The value of the first sample `promql` gives now, if any.
    pub fn value(&self, promql: &str) -> Option<f64> {
        first_value(&self.query(promql))
    }

    /// Waits until the target has been scraped successfully `n` more times (the timestamp of
    /// its `up` sample moved on `n` times with `up` at 1).
    pub fn wait_for_scrapes(&self, n: u32, within: Duration) {
        let deadline = Instant::now() + within;
        let mut last_ts = self.value(r#"timestamp(up{job="buttress"})"#);
        let mut seen = 0;
        while seen < n {
            assert!(
                Instant::now() < deadline,
                "no {n} successful scrapes within {within:?} (up = {:?})",
                self.value(r#"up{job="buttress"}"#)
            );
            std::thread::sleep(Duration::from_millis(200));
            let ts = self.value(r#"timestamp(up{job="buttress"})"#);
            if ts.is_some() && ts != last_ts {
                last_ts = ts;
                if self.value(r#"up{job="buttress"}"#) == Some(1.0) {
                    seen += 1;
                }
            }
        }
    }
}

/// The first sample value of an instant query's JSON (`"value":[TS,"V"]`).
pub fn first_value(json: &str) -> Option<f64> {
    let at = json.find("\"value\":[")? + "\"value\":[".len();
    let rest = &json[at..];
    let comma = rest.find(',')?;
    let quoted = rest[comma + 1..].trim_start().strip_prefix('"')?;
    quoted[..quoted.find('"')?].parse().ok()
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A plain HTTP/1.0 GET on 127.0.0.1:`port`: the status and the body.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}
