//! Linearizability checking for client histories. See `docs/consensus.md`.
