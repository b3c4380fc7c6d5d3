//! The four modality stores on fjall. See `docs/stores.md`.
