//! Mutual TLS between node processes, with certificates generated at test time.

mod support;

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use support::{Probe, WAIT, fast_flags, free_addr};

/// Write `ca.pem`, and `<name>.pem` / `<name>.key` for each node, all valid for "localhost".
fn make_pki(dir: &Path, ca_name: &str, nodes: &[&str]) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    for node in nodes {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, *node);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{node}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{node}.key")), key.serialize_pem()).unwrap();
    }
}

fn tls_flags(dir: &Path, node: &str) -> Vec<String> {
    let mut f = fast_flags();
    for (flag, value) in [
        ("--tls-cert", dir.join(format!("{node}.pem"))),
        ("--tls-key", dir.join(format!("{node}.key"))),
        ("--tls-ca", dir.join("ca.pem")),
    ] {
        f.push(flag.to_string());
        f.push(value.display().to_string());
    }
    f.push("--tls-name".to_string());
    f.push("localhost".to_string());
    f
}

#[test]
fn nodes_connect_over_mutual_tls_and_refuse_a_foreign_ca() {
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path(), "verisim test ca", &["n1", "n2"]);
    let foreign = tempfile::tempdir().unwrap();
    make_pki(foreign.path(), "someone else's ca", &["rogue"]);

    let (a1, a2, a3) = (free_addr(), free_addr(), free_addr());
    let mut n1 = Probe::start(
        "n1",
        a1,
        "cookie-of-the-tls-tests",
        &[a2],
        &tls_flags(pki.path(), "n1"),
    );
    let mut n2 = Probe::start(
        "n2",
        a2,
        "cookie-of-the-tls-tests",
        &[a1],
        &tls_flags(pki.path(), "n2"),
    );
    n1.expect_up("n2");
    n2.expect_up("n1");
    n1.until_ok("ECHO n2 64", "ECHO_OK n2 64", "ECHO_ERR");

    // Right cookie, certificate from another CA: the TLS handshake fails, the cookie is never
    // even exchanged.
    let mut rogue = Probe::start(
        "rogue",
        a3,
        "cookie-of-the-tls-tests",
        &[a1],
        &tls_flags(foreign.path(), "rogue"),
    );
    // Its dial fails in the TLS handshake; n1 keeps working and never sees it up.
    let failed = rogue.expect(|l| l.starts_with(&format!("DIAL_FAILED {a1} ")), WAIT);
    assert!(failed.contains("Encryption"), "{failed}");
    n1.until_ok("ECHO n2 8", "ECHO_OK n2 8", "ECHO_ERR");
    assert!(!rogue.saw("UP "), "rogue got in: {:?}", rogue.log);
    assert!(!n1.saw("UP rogue"), "n1 accepted the rogue: {:?}", n1.log);
}
