//! A small cluster on loopback: one Redis, one PostgreSQL and N `buttress serve` processes with
//! shared settings, each on a free port of 127.0.0.1, as they would run behind a load balancer.
//!
//! Every process is stopped by its own id when the [`Cluster`] (or an [`Instance`]) is dropped,
//! also when a test panics half-way: instances are killed, Redis is killed, PostgreSQL is stopped
//! and its directory removed (by `buttress-testkit`).

pub use buttress_testkit::form::encode;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use buttress_testkit::{PostgresServer, RedisServer};

/// The fixed strong key of the tests (never a real deployment's).
pub const KEY_1: &str = "q3Jx9ZmT0aLk7VbR2cYw8NfH5sUe1GdP4oKiXtMnB6E";
/// The key rotated to.
pub const KEY_2: &str = "Zt7Wq2LmX9cVb4NpR8sKd1YhF6gJu3Ea0oTiMnB5xQe";
/// A password the portal accepts.
pub const PASSWORD: &str = "correct horse battery staple";

/// What to start.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Number of `buttress serve` processes.
    pub instances: usize,
    /// Start Redis and use it for sessions and rate limits.
    pub redis: bool,
    /// Start PostgreSQL and use it for the portal (otherwise each instance has its own SQLite).
    pub postgres: bool,
    /// Settings for every instance on top of the defaults below.
    pub env: Vec<(String, String)>,
}

impl Spec {
    /// Three instances on shared Redis (sessions, limits) and PostgreSQL.
    pub fn full() -> Spec {
        Spec {
            instances: 3,
            redis: true,
            postgres: true,
            env: Vec::new(),
        }
    }

    /// Adds or replaces one setting.
    pub fn set(mut self, key: &str, value: &str) -> Spec {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// A running `buttress serve`.
pub struct Instance {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    /// The port it listens on (kept across [`Instance::restart`] when possible).
    pub port: u16,
    env: Vec<(String, String)>,
    /// Its data directory, removed when the instance is dropped.
    data_dir: tempfile::TempDir,
    /// Every line the process wrote on stderr (logs), for leak checks and failure messages.
    pub log: Arc<Mutex<Vec<String>>>,
}

pub fn fresh_dir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("buttress-cluster-{what}-"))
        .tempdir()
        .expect("temp dir")
}

impl Instance {
    /// Starts `buttress serve` with `env` (the environment is cleared first) on `bind` and waits
    /// for its `listening on` line.
    pub fn start(env: &[(String, String)], data_dir: tempfile::TempDir, bind: &str) -> Instance {
        let mut inst = Instance {
            child: None,
            base: String::new(),
            port: 0,
            env: env.to_vec(),
            data_dir,
            log: Arc::new(Mutex::new(Vec::new())),
        };
        inst.spawn(bind);
        inst
    }

    fn spawn(&mut self, bind: &str) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_buttress"));
        cmd.arg("serve")
            .env_clear()
            .env("RUST_LOG", "warn")
            .env("BUTTRESS_DATA_DIR", self.data_dir.path())
            .env("BUTTRESS_BIND", bind);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("buttress serve starts");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        let log = self.log.clone();
        // Drains stderr for the whole life of the process, so logging never blocks it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
                log.lock().expect("log").push(line);
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => {
                let base = url
                    .trim_end_matches('/')
                    .replace("//localhost:", "//127.0.0.1:");
                self.port = base
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("a port in the listening line");
                self.base = base;
            }
            Err(_) => {
                self.kill();
                panic!(
                    "buttress serve did not start:\n{}",
                    self.log.lock().expect("log").join("\n")
                );
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM (graceful shutdown) without waiting.
    pub fn sigterm(&self) {
        if let Some(pid) = self.pid() {
            let status = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .expect("kill runs");
            assert!(status.success(), "kill -TERM {pid}");
        }
    }

    /// Waits for the process to exit (at most `limit`), returning its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("buttress serve did not exit within {limit:?} after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, wait, and start again on the same port with `changes` applied to its settings.
    pub fn restart_with(&mut self, changes: &[(&str, &str)]) {
        self.sigterm();
        let code = self.wait_exit(Duration::from_secs(30));
        assert_eq!(code, Some(0), "graceful exit");
        for (k, v) in changes {
            self.env.retain(|(key, _)| key != k);
            self.env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let bind = format!("127.0.0.1:{}", self.port);
        self.spawn(&bind);
    }

    /// Kills the process (SIGKILL) if it still runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The log so far, as one string.
    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Redis, PostgreSQL and the instances. Dropping it stops everything.
pub struct Cluster {
    /// The instances (dropped first: fields drop in declaration order).
    pub instances: Vec<Instance>,
    /// Shared Redis, if any.
    pub redis: Option<RedisServer>,
    /// Shared PostgreSQL, if any.
    pub postgres: Option<PostgresServer>,
    /// `DATABASE_URL` of the shared database.
    pub database_url: Option<String>,
}

impl Cluster {
    /// Starts what `spec` asks for, the servers first, then every instance.
    pub fn start(spec: &Spec) -> Cluster {
        let redis = spec.redis.then(RedisServer::start);
        let postgres = spec
            .postgres
            .then(|| PostgresServer::start().expect("PostgreSQL starts"));
        let database_url = postgres.as_ref().map(PostgresServer::url);
        let mut env: Vec<(String, String)> = vec![
            ("SECRET_KEY".into(), KEY_1.into()),
            ("BUTTRESS_INSTANCES".into(), spec.instances.to_string()),
            // Tests send many requests from 127.0.0.1: only the limit test counts them.
            (
                "BUTTRESS_RATELIMIT_DEFAULT".into(),
                "100000 per minute".into(),
            ),
            // The fault tests post many requests from one account (the portal's cap is its own
            // test's business).
            ("BUTTRESS_OPEN_REQUEST_CAP".into(), "100000".into()),
        ];
        if let Some(r) = &redis {
            env.push(("REDIS_URL".into(), r.url()));
            env.push(("BUTTRESS_SESSION_STORE".into(), "redis".into()));
            env.push(("BUTTRESS_RATELIMIT_STORAGE".into(), r.url()));
        }
        if let Some(url) = &database_url {
            env.push(("DATABASE_URL".into(), url.clone()));
        }
        for (k, v) in &spec.env {
            env.retain(|(key, _)| key != k);
            env.push((k.clone(), v.clone()));
        }
        let mut cluster = Cluster {
            instances: Vec::new(),
            redis,
            postgres,
            database_url,
        };
        for i in 0..spec.instances {
            let dir = fresh_dir(&format!("i{i}"));
            cluster
                .instances
                .push(Instance::start(&env, dir, "127.0.0.1:0"));
        }
        cluster
    }

    /// Instance `i` (0-based).
    pub fn at(&self, i: usize) -> &Instance {
        &self.instances[i % self.instances.len()]
    }

    /// Every instance's log, for failure messages.
    pub fn logs(&self) -> String {
        self.instances
            .iter()
            .enumerate()
            .map(|(i, inst)| format!("--- instance {i}\n{}", inst.log_text()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Redis keys matching `pattern` (KEYS over plain RESP).
    pub fn redis_keys(&self, pattern: &str) -> Vec<String> {
        let redis = self.redis.as_ref().expect("a Redis");
        redis_command(redis.port(), &["KEYS", pattern])
    }
}

/// Sends one command over RESP and returns the array reply's strings.
pub fn redis_command(port: u16, args: &[&str]) -> Vec<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("redis");
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    // Small replies: read until the parse below is complete or the socket is quiet.
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some(count) = text
            .strip_prefix('*')
            .and_then(|t| t.split("\r\n").next())
            .and_then(|n| n.parse::<usize>().ok())
        {
            if text.matches("\r\n").count() > 2 * count {
                break;
            }
        } else if text.ends_with("\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.split("\r\n")
        .skip(1)
        .filter(|l| !l.starts_with('$') && !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A reply, fully read (the testkit's, as in-process tests read theirs).
pub use buttress_testkit::reply::Reply;

/// One HTTP client (no cookie store, no redirects) for a whole test.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
        .expect("client")
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

/// Where a browser sends its requests: an instance, or its base URL.
pub trait Site {
    /// `http://127.0.0.1:PORT`.
    fn base(&self) -> &str;
}

impl Site for Instance {
    fn base(&self) -> &str {
        &self.base
    }
}

impl Site for String {
    fn base(&self) -> &str {
        self
    }
}

/// A browser: one session cookie and the last CSRF token seen, talking to any instance.
#[derive(Debug, Clone)]
pub struct Browser {
    http: reqwest::Client,
    /// The `session` cookie's value.
    pub cookie: Option<String>,
    /// The last masked CSRF token scraped from a page.
    pub token: Option<String>,
}

impl Browser {
    /// A browser without a session, on its own loopback source address (127.0.x.y, never
    /// 127.0.0.1), so per-address limits (`5 per minute` on `/login`) count each browser alone,
    /// as they would count different people.
    pub fn new() -> Browser {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let addr = std::net::Ipv4Addr::new(127, 0, 1 + (n / 250 % 250) as u8, (n % 250 + 2) as u8);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .local_address(std::net::IpAddr::V4(addr))
            .build()
            .expect("client");
        Browser {
            http,
            cookie: None,
            token: None,
        }
    }

    /// Sends a request built by `req` with the cookie, and keeps any new cookie and token.
    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Reply {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", format!("session={c}")),
            None => req,
        };
        let res = req.send().await.expect("the instance answers");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap_or_default();
        buttress_testkit::form::remember(
            &mut self.cookie,
            &mut self.token,
            "session",
            headers
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap_or("")),
            &body,
        );
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GET `path` on `inst`.
    pub async fn get(&mut self, inst: &(impl Site + ?Sized), path: &str) -> Reply {
        let req = self.http.get(format!("{}{path}", inst.base()));
        self.send(req).await
    }

    /// POST a form to `path` on `inst` with the current token and a same-origin `Origin`.
    pub async fn post(
        &mut self,
        inst: &(impl Site + ?Sized),
        path: &str,
        fields: &[(&str, &str)],
    ) -> Reply {
        let token = self.token.clone().unwrap_or_default();
        self.post_with_token(inst, path, fields, &token).await
    }

    /// POST a form with an explicit token.
    pub async fn post_with_token(
        &mut self,
        inst: &(impl Site + ?Sized),
        path: &str,
        fields: &[(&str, &str)],
        token: &str,
    ) -> Reply {
        let mut body = format!("csrf_token={}", encode(token));
        for (k, v) in fields {
            body.push_str(&format!("&{}={}", encode(k), encode(v)));
        }
        let req = self
            .http
            .post(format!("{}{path}", inst.base()))
            .header("origin", inst.base())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// Signs up (on `a`) and signs in (on `b`); panics unless both work.
    pub async fn sign_up_and_in(&mut self, a: &Instance, b: &Instance, email: &str) {
        self.get(a, "/signup").await;
        let r = self
            .post(a, "/signup", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(r.status, 303, "sign-up: {}", r.body);
        self.confirm(a, b, email).await;
        self.sign_in(b, email).await;
    }

    /// Confirms `email` on `b` with the link `a` wrote to its Development outbox (the
    /// instances run without SMTP).
    pub async fn confirm(&mut self, a: &Instance, b: &Instance, email: &str) {
        let outbox = a.data_dir.path().join("outbox");
        let deadline = Instant::now() + Duration::from_secs(10);
        let token = loop {
            let found = buttress_testkit::mail::read_dir(&outbox)
                .into_iter()
                .filter(|m| m.to.contains(email))
                .flat_map(|m| {
                    m.body
                        .split_whitespace()
                        .filter_map(|w| w.split_once("/verify?token=").map(|(_, t)| t.to_owned()))
                        .collect::<Vec<_>>()
                })
                .last();
            if let Some(token) = found {
                break token;
            }
            assert!(Instant::now() < deadline, "no confirmation mail to {email}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.get(b, &format!("/verify?token={token}")).await;
        let r = self.post(b, "/verify", &[("token", &token)]).await;
        assert_eq!(r.status, 303, "confirmation: {}", r.body);
    }

    /// Signs in on `inst`; panics unless it works.
    pub async fn sign_in(&mut self, inst: &Instance, email: &str) {
        self.get(inst, "/login").await;
        let r = self
            .post(inst, "/login", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(r.status, 303, "sign-in: {}", r.body);
        assert_eq!(r.location(), "/", "sign-in: {}", r.body);
    }

    /// Whether `inst` sees this browser signed in (the sessions page answers 200 with the email).
    pub async fn signed_in_on(&mut self, inst: &Instance, email: &str) -> bool {
        let r = self.get(inst, "/account/sessions").await;
        r.status == 200 && r.body.contains(email)
    }
}

/// Texts that must never reach a client: driver and store messages, SQL, addresses, panics.
pub fn assert_no_internals(body: &str, ports: &[u16], context: &str) {
    let needles = [
        "sqlx",
        "postgres",
        "select ",
        "insert into",
        "redis",
        "connection refused",
        "os error",
        "127.0.0.1",
        "panicked",
        "backtrace",
        "pooltimedout",
        "src/",
        ".rs:",
    ];
    if let Some(needle) = buttress_testkit::leaks::leaked(body, &needles) {
        panic!("{context}: the body leaks {needle:?}:\n{body}");
    }
    for port in ports {
        assert!(
            !body.contains(&format!(":{port}")),
            "{context}: the body leaks port {port}:\n{body}"
        );
    }
}

/// The p-th percentile (0..=100) of `samples`.
pub fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut s = samples.to_vec();
    s.sort();
    if s.is_empty() {
        return Duration::ZERO;
    }
    let idx = (s.len() * p)
        .div_ceil(100)
        .saturating_sub(1)
        .min(s.len() - 1);
    s[idx]
}
