//! A real SMTP server for tests (Debian's `python3-aiosmtpd`, its `Mailbox` handler writing a
//! maildir), and readers for the messages it received or a Development outbox holds.
//!
//! ```no_run
//! let smtp = buttress_testkit::mail::SmtpServer::start();
//! let url = smtp.url(); // smtp://127.0.0.1:PORT (plain: loopback only)
//! let received = smtp.messages(); // every message, decoded
//! # let _ = (url, received);
//! ```

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Python that has `aiosmtpd` (Debian's, not a pyenv shim): `AIOSMTPD_PYTHON` or
/// `/usr/bin/python3`.
fn python() -> String {
    std::env::var("AIOSMTPD_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".to_owned())
}

/// An `aiosmtpd` process on 127.0.0.1 storing what it receives in a maildir; killed and its
/// directory removed on drop.
pub struct SmtpServer {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl SmtpServer {
    /// Starts the server on a free port and waits until it accepts connections.
    ///
    /// # Panics
    /// When `python3-aiosmtpd` is missing (install it: `apt-get install python3-aiosmtpd`) or
    /// the server does not come up.
    pub fn start() -> SmtpServer {
        let port = crate::free_port().expect("a free loopback port");
        let dir = std::env::temp_dir().join(format!("buttress-smtp-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("maildir parent");
        let maildir = dir.join("maildir");
        let child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd (apt-get install python3-aiosmtpd)");
        let server = SmtpServer { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port} (apt-get install python3-aiosmtpd)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `smtp://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far.
    #[must_use]
    pub fn messages(&self) -> Vec<Message> {
        read_dir(&self.dir.join("maildir").join("new"))
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One received message: its recipient, subject and decoded body.
#[derive(Debug, Clone)]
pub struct Message {
    /// The `To` header's value.
    pub to: String,
    /// The `Subject` header's value.
    pub subject: String,
    /// The body, quoted-printable decoded when it was.
    pub body: String,
}

impl Message {
    /// Every link in the body that starts with `prefix` (e.g. `http://localhost/verify?`).
    #[must_use]
    pub fn links(&self, prefix: &str) -> Vec<String> {
        self.body
            .split_whitespace()
            .filter(|w| w.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }
}

/// Every `.eml` or maildir message in `dir` (none when it does not exist), oldest first.
#[must_use]
pub fn read_dir(dir: &Path) -> Vec<Message> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            let t = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (t, e.path())
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
        .map(|raw| parse(&raw))
        .collect()
}

/// Parses a message: headers (unfolded), then the body, decoding quoted-printable.
#[must_use]
pub fn parse(raw: &str) -> Message {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let head = head.replace("\n ", " ").replace("\n\t", " ");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let qp = header("Content-Transfer-Encoding").eq_ignore_ascii_case("quoted-printable");
    Message {
        to: header("To"),
        subject: header("Subject"),
        body: if qp { decode_qp(body) } else { body.to_owned() },
    }
}

/// Decodes quoted-printable text (soft line breaks and `=XX`).
#[must_use]
pub fn decode_qp(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_links_come_back_whole() {
        let raw = "To: ada@example.org\r\nSubject: Hi\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nOpen http://localhost/verify?token=3D12.ab=\r\ncd now=\r\n";
        let m = parse(raw);
        assert_eq!(m.to, "ada@example.org");
        assert_eq!(
            m.links("http://localhost/verify?"),
            ["http://localhost/verify?token=12.abcd"]
        );
    }
}
