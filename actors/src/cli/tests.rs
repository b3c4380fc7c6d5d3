use std::os::unix::fs::PermissionsExt;

use clap::Parser;
use verisim_client::auth::{IdentityKey, WindowKey};
use verisim_client::http::Session;
use verisim_client::wire::{ClientId, WindowId};

use super::client::read_json;
use super::*;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: ClientCmd,
}

fn parse(args: &[&str]) -> Result<ClientCmd, clap::Error> {
    Cli::try_parse_from(std::iter::once("verisim").chain(args.iter().copied())).map(|c| c.cmd)
}

#[test]
fn arguments_parse() {
    <Cli as clap::CommandFactory>::command().debug_assert();
    match parse(&["key", "new", "--client", "alice", "--key", "/tmp/k.json"]).unwrap() {
        ClientCmd::Key(KeyCmd::New { client, key, force }) => {
            assert_eq!(client, "alice");
            assert_eq!(key.key_file, std::path::Path::new("/tmp/k.json"));
            assert!(!force);
        }
        other => panic!("{other:?}"),
    }
    match parse(&[
        "window",
        "open",
        "--node",
        "a:1,b:2",
        "--node",
        "c:3",
        "--ttl-secs",
        "60",
    ])
    .unwrap()
    {
        ClientCmd::Window(WindowCmd::Open {
            nodes, ttl_secs, ..
        }) => {
            assert_eq!(nodes, ["a:1", "b:2", "c:3"]);
            assert_eq!(ttl_secs, 60);
        }
        other => panic!("{other:?}"),
    }
    match parse(&["put", "e.json", "--version", "3"]).unwrap() {
        ClientCmd::Put(a) => {
            assert_eq!(a.version, Some(3));
            assert_eq!(
                a.session.session_file,
                std::path::Path::new(DEFAULT_SESSION_FILE)
            );
        }
        other => panic!("{other:?}"),
    }
    match parse(&["search", "by-type", "-"]).unwrap() {
        ClientCmd::Search(a) => assert_eq!(a.kind, SearchKind::ByType),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(&["get", "e1", "--allow-drift"]).unwrap(),
        ClientCmd::Get(GetArgs {
            allow_drift: true,
            ..
        })
    ));
    assert!(parse(&["search", "nope"]).is_err());
    assert!(parse(&["key", "new"]).is_err(), "--client is required");
}

#[test]
fn key_file_round_trips_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/identity.json");
    let key = IdentityKey::from_seed(&[9; 32]);
    let file = KeyFile::new(ClientId::new("alice").unwrap(), &key);
    let bytes = serde_json::to_vec(&file).unwrap();
    write_private_file(&path, &bytes, false).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let (client, back) = read_key_file(&path).unwrap();
    assert_eq!(client.as_str(), "alice");
    assert_eq!(back.public(), key.public());

    // No silent overwrite; --force replaces.
    let e = write_private_file(&path, &bytes, false).unwrap_err();
    assert!(e.contains("exists"), "{e}");
    write_private_file(&path, &bytes, true).unwrap();

    // A key file others can read is refused.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = read_key_file(&path).err().unwrap();
    assert!(e.contains("chmod 600"), "{e}");
}

#[test]
fn tampered_or_foreign_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    let key = IdentityKey::from_seed(&[9; 32]);
    let mut v = serde_json::to_value(KeyFile::new(ClientId::new("a").unwrap(), &key)).unwrap();
    v["public_key"] = serde_json::json!(IdentityKey::from_seed(&[8; 32]).public().to_hex());
    write_private_file(&path, &serde_json::to_vec(&v).unwrap(), true).unwrap();
    assert!(
        read_key_file(&path)
            .err()
            .unwrap()
            .contains("does not match")
    );
    v["format"] = serde_json::json!("other");
    write_private_file(&path, &serde_json::to_vec(&v).unwrap(), true).unwrap();
    assert!(read_key_file(&path).err().unwrap().contains("format"));
    write_private_file(&path, b"{not json", true).unwrap();
    assert!(read_key_file(&path).err().unwrap().contains("malformed"));
    assert!(read_key_file(&dir.path().join("missing")).is_err());
}

#[test]
fn session_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.json");
    let s = Session {
        client: ClientId::new("alice").unwrap(),
        window: WindowId::new("w-1").unwrap(),
        key: WindowKey::from_bytes([3; 32]),
        expires_at_ms: 1234,
    };
    let file = SessionFile::new(vec!["http://127.0.0.1:1".into()], &s);
    write_private_file(&path, &serde_json::to_vec(&file).unwrap(), true).unwrap();
    let (nodes, back) = read_session_file(&path).unwrap();
    assert_eq!(nodes, ["http://127.0.0.1:1"]);
    assert_eq!(back.key, s.key);
    assert_eq!(back.window, s.window);
    assert_eq!(back.expires_at_ms, 1234);
}

#[test]
fn requests_are_read_and_validated_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.json");
    std::fs::write(&path, r#"{"collection": "docs", "vector": [1, 0], "k": 2}"#).unwrap();
    let q: verisim_client::wire::VectorSearchRequest = read_json(Some(&path)).unwrap();
    assert_eq!(q.k, 2);
    std::fs::write(&path, r#"{"collection": "docs", "k": 2}"#).unwrap();
    let e = read_json::<verisim_client::wire::VectorSearchRequest>(Some(&path)).unwrap_err();
    assert!(e.contains("vector"), "{e}");
}

#[test]
fn grant_arguments_parse() {
    match parse(&["grant", "e1", "bob", "write"]).unwrap() {
        ClientCmd::Grant(a) => {
            assert_eq!((a.id.as_str(), a.client.as_str()), ("e1", "bob"));
            assert_eq!(a.access, GrantAccess::Write);
        }
        other => panic!("{other:?}"),
    }
    match parse(&["grant", "e1", "bob", "none", "--session", "/tmp/s.json"]).unwrap() {
        ClientCmd::Grant(a) => {
            assert_eq!(a.access, GrantAccess::None);
            assert_eq!(a.session.session_file, std::path::Path::new("/tmp/s.json"));
        }
        other => panic!("{other:?}"),
    }
    assert!(parse(&["grant", "e1", "bob", "admin"]).is_err());
    assert!(parse(&["grant", "e1", "bob"]).is_err());
}

#[test]
fn admin_commands_parse_with_a_token_or_a_token_file() {
    match parse(&[
        "key",
        "revoke",
        "--client",
        "mallory",
        "--node",
        "a:1",
        "--admin-token-file",
        "/run/t",
    ])
    .unwrap()
    {
        ClientCmd::Key(KeyCmd::Revoke {
            client,
            nodes,
            admin,
        }) => {
            assert_eq!(client, "mallory");
            assert_eq!(nodes, ["a:1"]);
            assert_eq!(
                admin.admin_token_file.as_deref(),
                Some(std::path::Path::new("/run/t"))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        parse(&["key", "revoke", "--node", "a:1"]).is_err(),
        "--client is required"
    );
    match parse(&[
        "key",
        "register",
        "--node",
        "a:1",
        "--rotate",
        "--admin-token",
        "t0k",
    ])
    .unwrap()
    {
        ClientCmd::Key(KeyCmd::Register { rotate, admin, .. }) => {
            assert!(rotate);
            assert_eq!(admin.token().unwrap().as_deref(), Some("t0k"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_admin_token_file_wins_and_must_be_private_and_non_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin-token");
    write_private_file(&path, b"  from-file\n", false).unwrap();
    let both = AdminAuth {
        admin_token: Some("from-flag".into()),
        admin_token_file: Some(path.clone()),
    };
    assert_eq!(both.token().unwrap().as_deref(), Some("from-file"));
    assert_eq!(AdminAuth::default().token().unwrap(), None);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = both.token().unwrap_err();
    assert!(e.contains("chmod 600"), "{e}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&path, "\n").unwrap();
    assert!(both.token().unwrap_err().contains("empty"));
    let blank = AdminAuth {
        admin_token: Some(" ".into()),
        admin_token_file: None,
    };
    assert!(blank.token().is_err());
    let missing = AdminAuth {
        admin_token: None,
        admin_token_file: Some(dir.path().join("absent")),
    };
    assert!(missing.token().is_err());
}
