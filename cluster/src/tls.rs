//! Transport setup: plain TCP or mutual TLS (rustls) for node connections, and the dialler the
//! connector uses.
//!
//! With TLS on, every node presents its certificate both when it accepts and when it dials, and
//! checks the other side's certificate against the configured CA: a node without a certificate
//! from that CA cannot even reach the cookie handshake. A node's own certificate and key (for the
//! cluster and for HTTPS) are taken up again when their files change ([`reload`]); the CA is
//! read once, at start.

mod reload;
use reload::ReloadingCert;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ractor::ActorRef;
use ractor_cluster::{IncomingEncryptionMode, NodeServerMessage};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::TlsConfig;
use crate::error::ConfigError;

/// How we open connections to peers.
#[derive(Clone)]
pub(crate) enum Dialer {
    Raw,
    Tls {
        connector: tokio_rustls::TlsConnector,
        server_name: ServerName<'static>,
    },
}

impl Dialer {
    /// Resolve `addr`, connect, and hand the stream to the node server. Returns the address
    /// actually dialled (the connection's `peer_addr`).
    pub(crate) async fn dial(
        &self,
        server: &ActorRef<NodeServerMessage>,
        addr: &str,
    ) -> Result<SocketAddr, String> {
        let target = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| format!("cannot resolve {addr}: {e}"))?
            .next()
            .ok_or_else(|| format!("{addr} resolves to no address"))?;
        match self {
            Dialer::Raw => ractor_cluster::client_connect(server, target).await,
            Dialer::Tls {
                connector,
                server_name,
            } => {
                ractor_cluster::client_connect_enc(
                    server,
                    target,
                    connector.clone(),
                    server_name.clone(),
                )
                .await
            }
        }
        .map_err(|e| e.to_string())?;
        Ok(target)
    }
}

fn tls_err(path: &Path, reason: impl ToString) -> ConfigError {
    ConfigError::Tls {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_err(path, e))?;
    if certs.is_empty() {
        return Err(tls_err(path, "no certificate in file"));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| tls_err(path, e))
}

/// The TLS acceptor of a node's HTTP API (`[http] tls`): the node proves itself with `cert_chain`
/// and `private_key` (reloaded when the files change); clients are not asked for certificates (they
/// sign their requests). TLS 1.2 and 1.3 with rustls's safe defaults; HTTP/1.1 is offered by ALPN.
///
/// # Errors
/// [`ConfigError::Tls`] naming the file that cannot be read or used.
pub fn http_acceptor(
    cert_chain: &Path,
    private_key: &Path,
) -> Result<tokio_rustls::TlsAcceptor, ConfigError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let own = ReloadingCert::load(cert_chain, private_key, provider.clone())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(cert_chain, e))?
        .with_no_client_auth()
        .with_cert_resolver(own);
    // HTTP/2 first: the node serves both, and HTTP/2 carries many requests on one connection.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Build the acceptor (inbound) and dialler (outbound) for a configuration.
pub(crate) fn transport(
    tls: Option<&TlsConfig>,
) -> Result<(IncomingEncryptionMode, Dialer), ConfigError> {
    let Some(tls) = tls else {
        return Ok((IncomingEncryptionMode::Raw, Dialer::Raw));
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let own = ReloadingCert::load(&tls.cert_chain, &tls.private_key, provider.clone())?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in load_certs(&tls.ca_certs)? {
        roots.add(ca).map_err(|e| tls_err(&tls.ca_certs, e))?;
    }
    let roots = Arc::new(roots);

    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .map_err(|e| tls_err(&tls.ca_certs, e))?;
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&tls.cert_chain, e))?
        .with_client_cert_verifier(client_verifier)
        .with_cert_resolver(own.clone());

    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(&tls.cert_chain, e))?
        .with_root_certificates(roots)
        .with_client_cert_resolver(own);

    let server_name = ServerName::try_from(tls.server_name.clone())
        .map_err(|e| tls_err(Path::new("server_name"), e))?;

    Ok((
        IncomingEncryptionMode::Tls(tokio_rustls::TlsAcceptor::from(Arc::new(server_config))),
        Dialer::Tls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(client_config)),
            server_name,
        },
    ))
}
