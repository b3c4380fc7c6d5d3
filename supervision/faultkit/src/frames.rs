//! ractor_cluster's wire framing, as far as the relay needs it.
//!
//! On a plain TCP link, ractor_cluster 0.16 sends each `meta.NetworkMessage` (protobuf) as one
//! frame: its length as a big-endian `u64`, then the encoded message (`net/session.rs`,
//! `encode_network_message` / `read_network_message`). The message is a `oneof`: field 1
//! `auth` (the handshake), 2 `node` (actor traffic: field 1 `cast`, 2 `call`, 3 `reply`) or
//! 3 `control` (pings, process-group and actor-registry sync). The first bytes of a frame's
//! payload are enough to tell them apart, without decoding the message. With TLS the bytes on
//! the wire are encrypted, so none of this can be seen (see [`crate::relay`]).

/// The length prefix's size.
pub const HEADER: usize = 8;

/// What a ractor_cluster frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameKind {
    /// The authentication handshake (dropping one breaks the connection's setup).
    Auth,
    /// An actor message sent with `cast` to a remote actor.
    Cast,
    /// An actor message sent with `call` to a remote actor.
    Call,
    /// The reply to a remote `call`.
    CallReply,
    /// Node control: pings, process groups, actor registry.
    Control,
    /// Anything else (a newer protocol, or not ractor_cluster).
    Other,
}

impl FrameKind {
    /// The actor traffic kinds: what "dropping messages" drops by default.
    pub const ACTOR_MESSAGES: [FrameKind; 3] =
        [FrameKind::Cast, FrameKind::Call, FrameKind::CallReply];

    /// Classifies a frame by its payload (the bytes after the length prefix).
    pub fn of(payload: &[u8]) -> Self {
        match payload.first() {
            // Field 1, length-delimited.
            Some(0x0a) => Self::Auth,
            Some(0x12) => {
                // Field 2 (`node`): skip its length varint, then the inner field's tag.
                let rest = skip_varint(&payload[1..]);
                match rest.and_then(|r| r.first()) {
                    Some(0x0a) => Self::Cast,
                    Some(0x12) => Self::Call,
                    Some(0x1a) => Self::CallReply,
                    _ => Self::Other,
                }
            }
            Some(0x1a) => Self::Control,
            _ => Self::Other,
        }
    }
}

/// The bytes after a protobuf varint at the start of `b`, if it is complete.
fn skip_varint(b: &[u8]) -> Option<&[u8]> {
    let end = b.iter().take(10).position(|byte| byte & 0x80 == 0)?;
    Some(&b[end + 1..])
}

/// The frame length announced by a header.
pub fn length(header: [u8; HEADER]) -> u64 {
    u64::from_be_bytes(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_read_from_the_oneof_tags() {
        assert_eq!(FrameKind::of(&[0x0a, 0x02, 0x0a, 0x00]), FrameKind::Auth);
        assert_eq!(
            FrameKind::of(&[0x12, 0x03, 0x0a, 0x01, 0x08]),
            FrameKind::Cast
        );
        assert_eq!(FrameKind::of(&[0x12, 0x80, 0x01, 0x12]), FrameKind::Call);
        assert_eq!(FrameKind::of(&[0x12, 0x01, 0x1a]), FrameKind::CallReply);
        assert_eq!(FrameKind::of(&[0x1a, 0x00]), FrameKind::Control);
        assert_eq!(FrameKind::of(&[]), FrameKind::Other);
        assert_eq!(FrameKind::of(&[0x12, 0xff]), FrameKind::Other);
    }
}
