//! OTP-style supervisors for ractor. See `docs/supervision.md`.
