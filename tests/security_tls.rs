//! HTTPS on the node's API (`[http.tls]`, issue 11 item 6), tried as a client and as an attacker:
//! a client trusting the operator's authority registers and reads back an entity over TLS; plain
//! HTTP to the TLS port, a client trusting no authority or another one, and a ClientHello trickled a
//! byte a second get nothing. A renewed certificate is taken up without a restart; a broken
//! renewal leaves the old one serving.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use support::entities::{SCHEMA, hexad};
use support::{Cluster, Options, wait_for};
use verisim_client::auth::IdentityKey;
use verisim_client::http::Client;
use verisim_client::wire::ClientId;

const LONG: Duration = Duration::from_secs(30);
const HEADER: Duration = Duration::from_secs(2);

/// A certificate authority and a node certificate it issued for `localhost` and `127.0.0.1`:
/// (CA PEM, node certificate PEM, node key PEM).
fn pki(ca_name: &str) -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// One node serving HTTPS only, with the test schema; not waited for (the harness speaks plain HTTP).
fn tls_node(cert: &str, key: &str) -> (Cluster, SocketAddr) {
    let c = Cluster::new(Options {
        nodes: 1,
        config: Some(format!(
            "[stores]\nschema_file = \"{{dir}}/schema.json\"\n[http]\nheader_read_timeout_ms = {}\n[http.tls]\ncert_chain = \"{{dir}}/node.pem\"\nprivate_key = \"{{dir}}/node.key\"\n",
            HEADER.as_millis()
        )),
        files: vec![
            ("schema.json".into(), SCHEMA.into()),
            ("node.pem".into(), cert.into()),
            ("node.key".into(), key.into()),
        ],
        ..Options::default()
    });
    let addr = c.node(1).http.expect("n1 listens");
    (c, addr)
}

#[test]
fn a_client_trusting_the_operators_authority_works_over_https_and_nothing_else_gets_an_answer() {
    let (ca, cert, key) = pki("verisim test ca");
    let (_c, addr) = tls_node(&cert, &key);
    let url = format!("https://127.0.0.1:{}", addr.port());
    let client = Client::new(&[url.as_str()])
        .unwrap()
        .with_ca_pem(ca.as_bytes())
        .expect("the CA parses");

    // The honest path: enroll, open a window, register, read back verified, all over TLS.
    let alice = ClientId::new("alice").unwrap();
    let identity = IdentityKey::from_seed(&[41; 32]);
    wait_for("the node to enroll alice over https", LONG, || {
        client.register_client(&alice, &identity.public()).ok()
    });
    client
        .open_window(&identity, &alice, Duration::from_secs(600))
        .expect("a window over https");
    let written = client
        .register(&hexad("tls-1", 7))
        .expect("a registration over https");
    assert_eq!(written.version, 1);
    let read = client
        .get(&written.id, false)
        .expect("a verified read over https");
    assert_eq!(read.version, 1);

    // A client that trusts no authority, or another one, gets no answer: the handshake fails.
    let blind = Client::new(&[url.as_str()]).unwrap();
    let e = blind
        .register_client(&ClientId::new("mallory").unwrap(), &identity.public())
        .expect_err("no trusted authority: no connection");
    assert!(e.code().is_none(), "a transport error, not an answer: {e}");
    let (other_ca, _, _) = pki("someone else's ca");
    let fooled = Client::new(&[url.as_str()])
        .unwrap()
        .with_ca_pem(other_ca.as_bytes())
        .unwrap();
    let e = fooled
        .get(&written.id, false)
        .expect_err("another authority");
    assert!(e.code().is_none(), "a transport error, not an answer: {e}");

    // Plain HTTP to the HTTPS port: no HTTP answer comes back.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: verisim\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "plain HTTP is not served on a TLS port: {:?}",
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn a_client_hello_trickled_a_byte_a_second_is_cut_off_at_the_header_deadline() {
    let (_, cert, key) = pki("verisim test ca");
    let (_c, addr) = tls_node(&cert, &key);
    // Wait until the node listens (a TCP connect is enough: nothing is sent).
    wait_for("the node to listen", LONG, || TcpStream::connect(addr).ok());
    // Taken before connecting: the server's deadline runs from its accept, which is later.
    let since = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // The first bytes of a TLS record header (handshake, TLS 1.0 record version), one a second.
    let record = [
        0x16u8, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    let mut closed_after = None;
    'trickle: for byte in record.iter().cycle().take(60) {
        if s.write_all(&[*byte]).is_err() {
            closed_after = Some(since.elapsed());
            break;
        }
        let step = Instant::now();
        while step.elapsed() < Duration::from_secs(1) {
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(0) => {
                    closed_after = Some(since.elapsed());
                    break 'trickle;
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => {
                    closed_after = Some(since.elapsed());
                    break 'trickle;
                }
            }
        }
    }
    let after = closed_after.expect("the trickling handshake is cut off");
    assert!(
        after >= HEADER,
        "closed after {after:?}, before the deadline"
    );
    assert!(
        after < HEADER + Duration::from_secs(10),
        "closed only after {after:?}"
    );
}

/// A renewal, as an operator's tool does it: write aside, rename into place.
fn replace_file(path: &std::path::Path, contents: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, contents).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

#[test]
fn a_renewed_certificate_is_served_without_a_restart_and_a_broken_one_is_not() {
    let (old_ca, cert, key) = pki("verisim test ca");
    let (c, addr) = tls_node(&cert, &key);
    let url = format!("https://127.0.0.1:{}", addr.port());
    let trusting = |ca: &str| {
        Client::new(&[url.as_str()])
            .unwrap()
            .with_ca_pem(ca.as_bytes())
            .unwrap()
    };
    let probe = ClientId::new("probe").unwrap();
    let identity = IdentityKey::from_seed(&[43; 32]);
    // An answer of any kind (even a refusal) means the handshake passed.
    let handshakes = |client: &Client| match client.register_client(&probe, &identity.public()) {
        Ok(_) => true,
        Err(e) => e.code().is_some(),
    };
    wait_for("the node to answer over https", LONG, || {
        handshakes(&trusting(&old_ca)).then_some(())
    });

    // A broken renewal (the key of another pair): the node keeps serving the old certificate.
    let (_, _, stray_key) = pki("stray");
    let key_path = c.dir.path().join("node.key");
    let cert_path = c.dir.path().join("node.pem");
    replace_file(&key_path, &stray_key);
    // A handshake makes the node look at its files (at most once a second); it says when it
    // refuses them.
    let log = c.node(1).log_path.clone();
    wait_for("the node to refuse the broken pair", LONG, || {
        handshakes(&trusting(&old_ca));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.contains("new TLS certificate files refused")
            .then_some(())
    });
    assert!(
        handshakes(&trusting(&old_ca)),
        "a broken renewal must not take the node off the network"
    );

    // A good renewal under a new authority: new connections get it, without a restart.
    let (new_ca, new_cert, new_key) = pki("renewed ca");
    replace_file(&cert_path, &new_cert);
    replace_file(&key_path, &new_key);
    wait_for("the renewed certificate to be served", LONG, || {
        handshakes(&trusting(&new_ca)).then_some(())
    });
    assert!(
        !handshakes(&trusting(&old_ca)),
        "the old certificate is no longer presented"
    );
    assert!(c.node(1).is_running(), "no restart");
}
