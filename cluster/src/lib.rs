//! Cluster layer on ractor_cluster. See `docs/cluster.md`.
