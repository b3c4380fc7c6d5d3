//! `verisim identity`: the cluster's authority and the node identities it issues
//! (`verisim_cluster::identity`; docs/security.md, "Node identities").

use std::path::{Path, PathBuf};

use clap::Subcommand;
use verisim_cluster::{Authority, NodeIdentity};

use super::files::write_private_file;

#[derive(Debug, Subcommand)]
pub enum IdentityCmd {
    /// Create the cluster's authority: the key that issues node identities. Keep it off the nodes
    /// (each node needs only its own identity file).
    Authority {
        /// Write the authority key here (mode 0600, atomically).
        #[arg(long)]
        out: PathBuf,
        /// Replace the file if it exists (every node then needs a new identity).
        #[arg(long)]
        force: bool,
    },
    /// Issue node `--id` an identity signed by the authority: give the file to that node only
    /// (`--identity-file`, or `identity_file` in its config).
    Issue {
        /// The authority key file (`verisim identity authority`).
        #[arg(long)]
        authority: PathBuf,
        /// The node's id.
        #[arg(long)]
        id: u64,
        /// Write the identity here (mode 0600, atomically).
        #[arg(long)]
        out: PathBuf,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Check an identity file and print whose it is (no secrets).
    Show {
        /// The identity file.
        file: PathBuf,
    },
}

/// Runs one `verisim identity` command.
///
/// # Errors
/// What went wrong, with the file it concerns.
pub fn run(cmd: IdentityCmd) -> Result<(), String> {
    match cmd {
        IdentityCmd::Authority { out, force } => {
            let authority = Authority::generate();
            write_private_file(&out, authority.to_file_text().as_bytes(), force)?;
            eprintln!("wrote the cluster's authority key to {}", out.display());
            println!("authority {}", hex::encode(authority.public_key()));
            Ok(())
        }
        IdentityCmd::Issue {
            authority,
            id,
            out,
            force,
        } => {
            let authority = Authority::read(&authority).map_err(|e| e.to_string())?;
            write_identity(&authority, id, &out, force)?;
            eprintln!("wrote node {id}'s identity to {}", out.display());
            Ok(())
        }
        IdentityCmd::Show { file } => {
            let identity = NodeIdentity::read(&file).map_err(|e| e.to_string())?;
            let c = identity.credential();
            println!("node {}", c.node);
            println!("sign_key {}", hex::encode(c.sign_key));
            println!("dh_key {}", hex::encode(c.dh_key));
            println!("authority {}", hex::encode(identity.authority()));
            Ok(())
        }
    }
}

/// Issues node `id` an identity from `authority` and writes it to `out` (0600, atomically).
///
/// # Errors
/// The file exists (without `force`) or cannot be written.
pub fn write_identity(
    authority: &Authority,
    id: u64,
    out: &Path,
    force: bool,
) -> Result<(), String> {
    write_private_file(out, authority.issue(id).to_file_text().as_bytes(), force)
}

/// A new authority in `dir/authority.key` and an identity for each of `ids` in
/// `dir/n<id>.identity` (what `verisim dev` and the test clusters use). Returns the identity paths.
///
/// # Errors
/// A file cannot be written.
pub fn issue_cluster(dir: &Path, ids: &[u64]) -> Result<Vec<PathBuf>, String> {
    let authority = Authority::generate();
    write_private_file(
        &dir.join("authority.key"),
        authority.to_file_text().as_bytes(),
        true,
    )?;
    ids.iter()
        .map(|id| {
            let path = identity_path(dir, *id);
            write_identity(&authority, *id, &path, true).map(|()| path)
        })
        .collect()
}

/// Issues node `id` an identity from the authority in `dir/authority.key` (made by
/// [`issue_cluster`]), for a node that joins later.
///
/// # Errors
/// The authority cannot be read or the file cannot be written.
pub fn issue_one(dir: &Path, id: u64) -> Result<PathBuf, String> {
    let authority = Authority::read(&dir.join("authority.key")).map_err(|e| e.to_string())?;
    let path = identity_path(dir, id);
    write_identity(&authority, id, &path, true)?;
    Ok(path)
}

/// Where [`issue_cluster`] puts node `id`'s identity.
pub fn identity_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("n{id}.identity"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_identities_read_back_under_one_authority() {
        let dir = tempfile::tempdir().unwrap();
        let paths = issue_cluster(dir.path(), &[1, 2, 3]).unwrap();
        let authority = Authority::read(&dir.path().join("authority.key")).unwrap();
        for (id, path) in (1..=3).zip(&paths) {
            let identity = NodeIdentity::read(path).unwrap();
            assert_eq!(identity.node(), id);
            assert_eq!(identity.authority(), authority.public_key());
        }
        let joiner = issue_one(dir.path(), 4).unwrap();
        assert_eq!(NodeIdentity::read(&joiner).unwrap().node(), 4);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&paths[0]).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn issuing_without_force_keeps_an_existing_identity() {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::generate();
        let out = dir.path().join("n1.identity");
        write_identity(&authority, 1, &out, false).unwrap();
        let e = write_identity(&authority, 1, &out, false).unwrap_err();
        assert!(e.contains("exists"), "{e}");
    }
}
