//! Certificates the scan trusts with `--ca-cert FILE`: the web roots, every certificate of the
//! file as a root, and each of them also *pinned*, so that the certificate the usual one-liner
//! makes verifies:
//!
//! ```text
//! openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
//!   -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout key.pem -out cert.pem -days 30
//! ```
//!
//! That certificate says `CA:TRUE` (OpenSSL's default for `req -x509`), and WebPKI refuses a CA
//! certificate as a server's own (`CaUsedAsEndEntity`) even when it is a trusted root. The
//! verifier here delegates everything to rustls' WebPKI verifier and makes one exception: when
//! WebPKI refuses the server's certificate as `CaUsedAsEndEntity` and that certificate is
//! byte for byte one of the file's, it is accepted after checking, as WebPKI would have,
//! that it is valid for the host name and that the time is within its validity dates. The
//! handshake's signatures are checked by WebPKI as always, so the server holds the pinned
//! certificate's key. Nothing else is relaxed: a CA certificate that is not in the file, the
//! pinned one for another name, or past its dates is refused.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use super::ScanError;

/// A rustls client configuration that trusts the web roots and the certificates in `pem`, and
/// accepts a CA certificate of `pem` as the server's own (see the module docs).
pub(super) fn client_config(pem: &[u8]) -> Result<rustls::ClientConfig, ScanError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = pinned_verifier(pem, provider.clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ScanError::Client(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // reqwest leaves a preconfigured ALPN list alone; it speaks HTTP/1.1 here.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The verifier: the web roots and every certificate of `pem` as roots, each also pinned.
fn pinned_verifier(pem: &[u8], provider: Arc<CryptoProvider>) -> Result<PinnedVerifier, ScanError> {
    let pinned = certificates(pem)?;
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in &pinned {
        roots
            .add(cert.clone())
            .map_err(|e| ScanError::BadCaCert(format!("a certificate is not usable: {e}")))?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| ScanError::BadCaCert(e.to_string()))?;
    Ok(PinnedVerifier { inner, pinned })
}

/// Every certificate of a PEM file.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ScanError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ScanError::BadCaCert(format!("unreadable PEM: {e}")))?;
    if certs.is_empty() {
        return Err(ScanError::BadCaCert(
            "no PEM certificate found in the file".into(),
        ));
    }
    Ok(certs)
}

/// rustls' WebPKI verifier, plus the pinned certificates of `--ca-cert` as servers' own.
#[derive(Debug)]
struct PinnedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

fn is_ca_used_as_end_entity(e: &Error) -> bool {
    match e {
        Error::InvalidCertificate(CertificateError::Other(other)) => {
            other.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
        }
        _ => false,
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(e)
                if is_ca_used_as_end_entity(&e)
                    && self
                        .pinned
                        .iter()
                        .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                check_pinned(end_entity, server_name, now)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// What WebPKI would have checked of a pinned certificate besides its issuer: the name, and
/// the time against its validity dates.
fn check_pinned(
    cert: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), Error> {
    let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
    rustls::client::verify_server_name(&parsed, server_name)?;
    let (not_before, not_after) =
        validity(cert.as_ref()).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let at =
        |secs: i64| UnixTime::since_unix_epoch(Duration::from_secs(secs.max(0).unsigned_abs()));
    let time = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if time < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: at(not_before),
        }
        .into());
    }
    if time > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: at(not_after),
        }
        .into());
    }
    Ok(())
}

/// `notBefore` and `notAfter` of a DER certificate, in seconds since the Unix epoch.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    use yasna::tags::{TAG_GENERALIZEDTIME, TAG_UTCTIME};
    use yasna::{ASN1Error, ASN1ErrorKind, ASN1Result, BERReader, Tag};

    fn time(r: BERReader<'_, '_>) -> ASN1Result<i64> {
        let tag = r.lookahead_tag()?;
        if tag == TAG_UTCTIME {
            r.read_utctime().map(|t| t.datetime().unix_timestamp())
        } else if tag == TAG_GENERALIZEDTIME {
            r.read_generalized_time()
                .map(|t| t.datetime().unix_timestamp())
        } else {
            Err(ASN1Error::new(ASN1ErrorKind::Invalid))
        }
    }

    yasna::parse_der(der, |r| {
        r.read_sequence(|cert| {
            let dates = cert.next().read_sequence(|tbs| {
                tbs.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_der()))?;
                tbs.next().read_der()?; // serialNumber
                tbs.next().read_der()?; // signature
                tbs.next().read_der()?; // issuer
                let dates = tbs
                    .next()
                    .read_sequence(|v| Ok((time(v.next())?, time(v.next())?)))?;
                while tbs.read_optional(|r| r.read_der())?.is_some() {}
                Ok(dates)
            })?;
            cert.next().read_der()?; // signatureAlgorithm
            cert.next().read_der()?; // signatureValue
            Ok(dates)
        })
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `127.0.0.1` and `localhost`, `CA:TRUE` as OpenSSL's
    /// one-liner makes it, valid in 2020 only when `year_2020`, else from 2020 to 4096; and its
    /// PEM.
    fn ca_true(year_2020: bool) -> (CertificateDer<'static>, String) {
        let mut p =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("params");
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = if year_2020 {
            rcgen::date_time_ymd(2021, 1, 1)
        } else {
            rcgen::date_time_ymd(4096, 1, 1)
        };
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("cert");
        (cert.der().clone(), cert.pem())
    }

    fn at(y: i32) -> UnixTime {
        let secs = rcgen::date_time_ymd(y, 6, 1).unix_timestamp();
        UnixTime::since_unix_epoch(Duration::from_secs(secs.unsigned_abs()))
    }

    fn name(n: &str) -> ServerName<'static> {
        ServerName::try_from(n.to_owned()).expect("name")
    }

    fn verifier(pem: &str) -> PinnedVerifier {
        client_config(pem.as_bytes()).expect("a usable config");
        pinned_verifier(
            pem.as_bytes(),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .expect("verifier")
    }

    fn verify(
        v: &PinnedVerifier,
        cert: &CertificateDer<'_>,
        host: &str,
        year: i32,
    ) -> Result<(), Error> {
        v.verify_server_cert(cert, &[], &name(host), &[], at(year))
            .map(|_| ())
    }

    #[test]
    fn a_pinned_ca_certificate_is_accepted_for_its_names_within_its_dates() {
        let (cert, pem) = ca_true(false);
        let v = verifier(&pem);
        for host in ["localhost", "127.0.0.1"] {
            verify(&v, &cert, host, 2030).unwrap_or_else(|e| panic!("{host}: {e}"));
        }
        // Without the exception WebPKI refuses it.
        let plain = v
            .inner
            .verify_server_cert(&cert, &[], &name("localhost"), &[], at(2030));
        assert!(
            plain.as_ref().is_err_and(is_ca_used_as_end_entity),
            "{plain:?}"
        );
    }

    #[test]
    fn everything_else_is_still_refused() {
        let (pinned, pem) = ca_true(false);
        let (other, _) = ca_true(false);
        let v = verifier(&pem);
        let e = verify(&v, &other, "localhost", 2030).expect_err("not pinned");
        assert!(is_ca_used_as_end_entity(&e), "{e}");
        let e = verify(&v, &pinned, "wrong.example", 2030).expect_err("wrong name");
        assert!(
            matches!(
                e,
                Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
            ),
            "{e}"
        );
        let e = verify(&v, &pinned, "localhost", 2019).expect_err("not yet valid");
        assert!(
            matches!(
                e,
                Error::InvalidCertificate(CertificateError::NotValidYetContext { .. })
            ),
            "{e}"
        );
        let (short, pem) = ca_true(true);
        let v = verifier(&pem);
        verify(&v, &short, "localhost", 2020).expect("valid in 2020");
        let e = verify(&v, &short, "localhost", 2022).expect_err("expired");
        assert!(
            matches!(
                e,
                Error::InvalidCertificate(CertificateError::ExpiredContext { .. })
            ),
            "{e}"
        );
    }

    #[test]
    fn the_pinned_checks_themselves_refuse_a_wrong_name_and_dates() {
        // WebPKI checks the dates before the CA flag, so these are the verifier's own checks.
        let (short, _) = ca_true(true);
        check_pinned(&short, &name("localhost"), at(2020)).expect("valid");
        for (host, year) in [
            ("other.example", 2020),
            ("localhost", 2019),
            ("localhost", 2021),
        ] {
            assert!(
                check_pinned(&short, &name(host), at(year)).is_err(),
                "{host} {year}"
            );
        }
        let (nb, na) = validity(short.as_ref()).expect("dates");
        assert_eq!((nb, na), (1_577_836_800, 1_609_459_200));
        assert_eq!(validity(b"not DER"), None);
        assert_eq!(validity(&short.as_ref()[..40]), None);
    }

    #[test]
    fn bad_pem_is_a_clear_error() {
        for (pem, why) in [
            (&b"not pem"[..], "no PEM certificate"),
            (
                b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
                "PEM",
            ),
        ] {
            let e = client_config(pem).expect_err("refused");
            assert!(e.to_string().contains(why), "{e}");
        }
    }
}
