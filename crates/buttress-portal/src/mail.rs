//! Mail: verification links, password resets and relayed messages, sent off the request path.
//!
//! | setting | effect |
//! | --- | --- |
//! | `BUTTRESS_SMTP_URL` set | SMTP with [`lettre`]: `smtps://user:pass@host:465` (implicit TLS), `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtp://host:25` (plain: loopback relays and tests only) |
//! | unset, Development | each message is written as an `.eml` file under `<data_dir>/outbox/` and its link is logged, so `buttress serve` works on a fresh machine |
//! | unset, Production | refused at start (`PTL-E001` of [`crate::check`]) |
//! | `BUTTRESS_MAIL_FROM` | the `From` address (default `registry@localhost`) |
//!
//! A handler never waits for mail: [`Mailer::send`] puts the message on a bounded queue
//! ([`QUEUE`] messages) and returns; one task sends them in order. A full queue or a failed
//! delivery is logged (never with the recipient's address or the link) and dropped, and
//! nothing of it reaches the visitor, so a mail failure cannot tell whether an address is
//! registered. The SMTP URL's password is never printed ([`buttress::secret::ConnectionUrl`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use buttress_portal::mail::{Mail, Mailer};
//! let tmp = tempfile::tempdir().unwrap();
//! let dir = tmp.path();
//! let mailer = Mailer::outbox(dir, "registry@localhost");
//! mailer.send(Mail::new("ada@example.org", "Hello", "Plain text.", None));
//! mailer.flush().await;
//! assert_eq!(std::fs::read_dir(dir.join("outbox")).unwrap().count(), 1);
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::Rng;
use tokio::sync::{mpsc, oneshot};

/// Messages waiting to be sent at most; more are dropped (and logged).
pub const QUEUE: usize = 256;

/// How long one SMTP delivery may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// One plain-text message.
#[derive(Debug, Clone)]
pub struct Mail {
    to: String,
    subject: String,
    body: String,
    /// The link inside, logged in outbox mode only (Development).
    link: Option<String>,
}

impl Mail {
    /// A message to `to` with `subject` and a plain-text `body`; `link` is logged when the
    /// message goes to the Development outbox.
    #[must_use]
    pub fn new(to: &str, subject: &str, body: &str, link: Option<&str>) -> Mail {
        Mail {
            to: to.to_owned(),
            subject: subject.to_owned(),
            body: body.to_owned(),
            link: link.map(str::to_owned),
        }
    }
}

/// Why the mailer could not be made from the settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// `BUTTRESS_SMTP_URL` does not describe a server lettre can use.
    #[error("BUTTRESS_SMTP_URL ({url}) is not usable: {reason}. Fix: use smtps://user:password@host:465 or smtp://user:password@host:587?tls=required")]
    SmtpUrl {
        /// The URL without its password.
        url: String,
        /// lettre's reason.
        reason: String,
    },
    /// `BUTTRESS_MAIL_FROM` is not a mailbox.
    #[error("BUTTRESS_MAIL_FROM is not a mail address: {0}. Fix: use registry@example.org or `Registry <registry@example.org>`")]
    From(String),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

enum Job {
    Send(Mail),
    Flush(oneshot::Sender<()>),
}

/// The queue in front of the transport. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    queue: mpsc::Sender<Job>,
    kind: &'static str,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.kind)
            .finish()
    }
}

impl Mailer {
    /// SMTP to `url` (see the module docs for the forms), mail from `from`.
    ///
    /// # Errors
    /// [`MailError`] for a URL lettre refuses or a bad `from`; nothing is contacted yet.
    pub fn smtp(url: &buttress::secret::ConnectionUrl, from: &str) -> Result<Mailer, MailError> {
        let from = parse_from(from)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
            .map_err(|e| MailError::SmtpUrl {
                url: url.to_string(),
                reason: redact(&e.to_string(), url.expose()),
            })?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Mailer::start(Transport::Smtp(transport), from, "smtp"))
    }

    /// `.eml` files in `<data_dir>/outbox/` (Development without SMTP).
    ///
    /// # Panics
    /// Never: a `from` that does not parse falls back to `registry@localhost`.
    #[must_use]
    pub fn outbox(data_dir: &Path, from: &str) -> Mailer {
        let from = parse_from(from).unwrap_or_else(|_| {
            Mailbox::new(
                None,
                lettre::Address::new("registry", "localhost")
                    .unwrap_or_else(|_| unreachable!("a valid address")),
            )
        });
        Mailer::start(Transport::Outbox(data_dir.join("outbox")), from, "outbox")
    }

    fn start(transport: Transport, from: Mailbox, kind: &'static str) -> Mailer {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(transport, from, rx));
        Mailer { queue: tx, kind }
    }

    /// Queues `mail` and returns at once. A full queue drops it (logged).
    pub fn send(&self, mail: Mail) {
        if self.queue.try_send(Job::Send(mail)).is_err() {
            tracing::warn!("mail queue full or closed: a message was dropped");
        }
    }

    /// Waits until every message queued before this call was handled (sent, written or
    /// dropped). For tests and shutdown.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.queue.send(Job::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// `"smtp"` or `"outbox"`.
    #[must_use]
    pub fn transport(&self) -> &'static str {
        self.kind
    }
}

fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse::<Mailbox>()
        .map_err(|e| MailError::From(e.to_string()))
}

/// `text` with every occurrence of the URL's password replaced, in case an error quotes it.
fn redact(text: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
        .and_then(|auth| auth.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, pw)| pw)
        .filter(|pw| !pw.is_empty());
    match password {
        Some(pw) => text.replace(pw, "***"),
        None => text.to_owned(),
    }
}

async fn run(transport: Transport, from: Mailbox, mut rx: mpsc::Receiver<Job>) {
    let transport = Arc::new(transport);
    while let Some(job) = rx.recv().await {
        match job {
            Job::Flush(done) => {
                let _ = done.send(());
            }
            Job::Send(mail) => deliver(&transport, &from, mail).await,
        }
    }
}

async fn deliver(transport: &Transport, from: &Mailbox, mail: Mail) {
    let Ok(to) = mail.to.parse::<Mailbox>() else {
        tracing::warn!("mail not sent: the recipient is not a mailbox lettre accepts");
        return;
    };
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone());
    let message = match message {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "mail not sent: the message did not build");
            return;
        }
    };
    match transport {
        Transport::Smtp(smtp) => {
            if let Err(e) = smtp.send(message).await {
                // lettre's error names the server's answer, never the recipient or the body.
                tracing::warn!(error = %e, subject = %mail.subject, "mail not sent");
            }
        }
        Transport::Outbox(dir) => {
            let name = format!(
                "{}-{:016x}.eml",
                crate::db::now_unix(),
                rand::thread_rng().gen::<u64>()
            );
            let written = async {
                tokio::fs::create_dir_all(dir).await?;
                tokio::fs::write(dir.join(&name), message.formatted()).await
            }
            .await;
            match written {
                Ok(()) => tracing::info!(
                    file = %dir.join(&name).display(),
                    link = mail.link.as_deref().unwrap_or("-"),
                    "mail written to the development outbox (no BUTTRESS_SMTP_URL)"
                ),
                Err(e) => tracing::warn!(error = %e, "mail not written to the outbox"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_show_the_password() {
        let url = buttress::secret::ConnectionUrl::new("smtps://u:s3cretpw@[bad");
        match Mailer::smtp(&url, "a@b.example") {
            Err(e) => assert!(!e.to_string().contains("s3cretpw"), "{e}"),
            Ok(_) => panic!("a bad URL builds"),
        }
        assert_eq!(redact("x s3cretpw y", "smtp://u:s3cretpw@h"), "x *** y");
        assert_eq!(redact("x", "smtp://h"), "x");
    }
}
