//! Exponential redial backoff with jitter: [`verisim_vocab::backoff::Backoff`], the one helper the
//! node and the client share (re-exported here, where the connector and the node's join loop
//! found it). Its jitter comes from the caller: `backoff.next_delay(rng.random())`.

pub use verisim_vocab::backoff::Backoff;
