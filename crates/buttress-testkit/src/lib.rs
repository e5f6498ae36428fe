//! Test helpers for Buttress: real servers started on free loopback ports, for tests only.
//!
//! [`RedisServer`] runs Debian's `redis-server` without persistence; [`mail::SmtpServer`] runs
//! Debian's `aiosmtpd` and reads what it received. [`PostgresServer`] runs Debian's PostgreSQL binaries (`initdb`, `pg_ctl`, `postgres`) in a
//! fresh temporary directory, on a free port of 127.0.0.1, with a Unix socket only inside that
//! directory. It is stopped and its directory removed on drop, also when a test panics.
//!
//! ```no_run
//! let pg = buttress_testkit::PostgresServer::start()?;
//! let url = pg.url(); // postgres://postgres@127.0.0.1:PORT/buttress
//! # let _ = url;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! PostgreSQL refuses to run as root; when the tests run as root (as CI does), every server
//! command is run as the `postgres` system user through `runuser`, and the data directory is
//! handed to that user. Binaries are looked up in `$BUTTRESS_PG_BIN`, then
//! `/usr/lib/postgresql/<newest>/bin`, then `PATH`; on Debian, `apt-get install postgresql`
//! provides them.

#![deny(unreachable_pub, unsafe_code)]
#![warn(missing_docs)]

pub mod form;
pub mod imports;
pub mod leaks;
pub mod mail;
pub mod prometheus;
pub mod redis;
pub mod reply;
pub use prometheus::PrometheusServer;
pub use redis::RedisServer;

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The database every server is created with (see [`PostgresServer::url`]).
pub const DEFAULT_DATABASE: &str = "buttress";

/// How long [`PostgresServer::start`] and [`PostgresServer::restart`] wait for the server.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A throwaway PostgreSQL server for one test process. Stopped on drop.
#[derive(Debug)]
pub struct PostgresServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    run_as: Option<&'static str>,
    running: bool,
}

impl PostgresServer {
    /// Initialises a cluster in a new temporary directory, starts it on a free loopback port,
    /// waits until it accepts connections and creates the database [`DEFAULT_DATABASE`].
    ///
    /// # Errors
    /// When the binaries cannot be found or any step fails; the message includes the server log.
    pub fn start() -> io::Result<Self> {
        let bin = find_bin_dir()?;
        let run_as = if is_root()? { Some("postgres") } else { None };
        let dir = fresh_dir()?;
        let mut server = PostgresServer {
            bin,
            dir,
            port: free_port()?,
            run_as,
            running: false,
        };
        if let Some(user) = run_as {
            checked(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{user}:"))
                    .arg(&server.dir)
                    .output()?,
                "chown",
            )?;
        }
        let data = server.data_dir();
        let out = server
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
                "-D",
            ])
            .arg(&data)
            .output()?;
        checked(out, "initdb")?;
        server.restart()?;
        server.create_database(DEFAULT_DATABASE)?;
        Ok(server)
    }

    /// The connection URL of the default database.
    #[must_use]
    pub fn url(&self) -> String {
        self.url_for(DEFAULT_DATABASE)
    }

    /// The connection URL of database `name` on this server.
    #[must_use]
    pub fn url_for(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The loopback port the server listens on (kept across [`stop`](Self::stop) and
    /// [`restart`](Self::restart)).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates database `name` (letters, digits and `_` only) and returns its URL.
    ///
    /// # Errors
    /// When the name is not plain or `createdb` fails.
    pub fn create_database(&self, name: &str) -> io::Result<String> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "database names are letters, digits and _",
            ));
        }
        let port = self.port.to_string();
        let out = self
            .command("createdb")
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", name])
            .output()?;
        checked(out, "createdb")?;
        Ok(self.url_for(name))
    }

    /// Stops the server (fast shutdown: open connections are ended). The port stays reserved
    /// in the sense that [`restart`](Self::restart) uses it again.
    ///
    /// # Errors
    /// When `pg_ctl stop` fails.
    pub fn stop(&mut self) -> io::Result<()> {
        if !self.running {
            return Ok(());
        }
        let data = self.data_dir();
        let out = self
            .command("pg_ctl")
            .args(["-m", "fast", "-w", "-D"])
            .arg(&data)
            .arg("stop")
            .output()?;
        self.running = false;
        checked(out, "pg_ctl stop")
    }

    /// Starts the server again on the same port (after [`stop`](Self::stop)) and waits until
    /// it accepts connections.
    ///
    /// # Errors
    /// When `pg_ctl start` fails or the server does not come up in time.
    pub fn restart(&mut self) -> io::Result<()> {
        if self.running {
            self.stop()?;
        }
        let data = self.data_dir();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let out = self
            .command("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(options)
            .arg("start")
            .output()?;
        if let Err(e) = checked(out, "pg_ctl start") {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(io::Error::other(format!("{e}\nserver log:\n{log}")));
        }
        self.running = true;
        self.wait_ready()
    }

    /// Whether the server was started and not stopped.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.running
    }

    fn wait_ready(&self) -> io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let port = self.port.to_string();
        loop {
            let tcp = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok();
            if tcp {
                let ready = self
                    .command("pg_isready")
                    .args(["-q", "-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
                    .status()?;
                if ready.success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "PostgreSQL did not accept connections on port {}",
                        self.port
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut cmd = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.stdin(Stdio::null()).current_dir(&self.dir);
        cmd
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self
                .command("pg_ctl")
                .args(["-m", "immediate", "-w", "-D"])
                .arg(&data)
                .arg("stop")
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn checked(out: Output, what: &str) -> io::Result<()> {
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

fn is_root() -> io::Result<bool> {
    let out = Command::new("id").arg("-u").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A port the kernel just gave out on loopback; free again once the listener is dropped.
/// A free loopback port: bind port 0, read the port, release it.
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn fresh_dir() -> io::Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("buttress-pg-{}-{n}-{nanos}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("could not create a temporary directory"))
}

fn find_bin_dir() -> io::Result<PathBuf> {
    let has_tools = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    if let Some(dir) = std::env::var_os("BUTTRESS_PG_BIN").map(PathBuf::from) {
        if has_tools(&dir) {
            return Ok(dir);
        }
    }
    // Debian: /usr/lib/postgresql/<major>/bin, newest major first.
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .collect();
    majors.sort_by_key(|m| std::cmp::Reverse(m.0));
    if let Some((_, dir)) = majors.into_iter().find(|(_, d)| has_tools(d)) {
        return Ok(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_tools(&dir) {
                // Resolve symlinks (e.g. /usr/local/bin/initdb) so pg_ctl finds `postgres`.
                let real = std::fs::canonicalize(dir.join("initdb"))?;
                return Ok(real.parent().map(Path::to_path_buf).unwrap_or(dir));
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: install them with `apt-get install postgresql` or set BUTTRESS_PG_BIN",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_stops_and_restarts_on_the_same_port() {
        let mut pg = PostgresServer::start().expect("start");
        let port = pg.port();
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok());
        pg.stop().expect("stop");
        assert!(!pg.is_running());
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
        pg.restart().expect("restart");
        assert_eq!(pg.port(), port);
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok());
        let url = pg.create_database("second").expect("createdb");
        assert!(url.ends_with("/second"));
        assert!(pg.create_database("x; drop").is_err());
        let dir = pg.dir.clone();
        drop(pg);
        assert!(!dir.exists());
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    }
}
