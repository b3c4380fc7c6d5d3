//! Raft consensus core: a pure, deterministic state machine. See `docs/consensus.md`.
