//! Outgoing Raft messages encoded for the wire, each distinct body once.
//!
//! A leader whose followers keep up sends every follower the same append: the same entries, the
//! same `prev_index` and commit, only `to` differs. Encoding the entries (the bulk of the bytes) once
//! per follower is wasted work on the hottest path, so the body is encoded once and each message's
//! envelope — `from`, `to`, `term`, then the body — is written around that one encoding. The result
//! is byte for byte what encoding the whole [`Message`] gives (a property test holds it to that), so
//! receivers decode it as any other message and nodes of earlier versions read it unchanged.

use verisim_cluster::{CodecError, DEFAULT_MAX_MESSAGE_BYTES, codec};
use verisim_raft::{Message, MessageBody, NodeId};

/// One message, encoded (or why it could not be).
pub struct Encoded {
    pub to: NodeId,
    pub bytes: Result<Vec<u8>, CodecError>,
}

/// Encodes `msgs` in order. Messages whose sender, term and body equal an earlier one's share its
/// body's encoding; the second value counts the bodies actually encoded.
pub fn encode_all(msgs: &[Message]) -> (Vec<Encoded>, usize) {
    // (index into `msgs` of the message the body was first encoded for, its encoding)
    let mut bodies: Vec<(usize, Result<Vec<u8>, CodecError>)> = Vec::new();
    let mut out = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let shared = if shareable(&m.body) {
            bodies.iter().position(|(j, _)| {
                let first = &msgs[*j];
                first.from == m.from && first.term == m.term && first.body == m.body
            })
        } else {
            None
        };
        let body = match shared {
            Some(k) => &bodies[k].1,
            None => {
                bodies.push((i, codec::encode(&m.body, DEFAULT_MAX_MESSAGE_BYTES)));
                &bodies[bodies.len() - 1].1
            }
        };
        let bytes = match body {
            Ok(body) => envelope(m, body),
            Err(e) => Err(e.clone()),
        };
        out.push(Encoded { to: m.to, bytes });
    }
    let encoded = bodies.len();
    (out, encoded)
}

/// Worth comparing with earlier messages: only an append's body costs enough to encode that sharing
/// it pays for the comparison. Every other body is encoded on its own.
fn shareable(body: &MessageBody) -> bool {
    matches!(body, MessageBody::Append { entries, .. } if !entries.is_empty())
}

/// The CBOR of `m` written around `body`, the CBOR of `m.body`: a map of four text keys in the
/// order `Message` declares its fields, as serde and ciborium write a struct.
fn envelope(m: &Message, body: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(body.len() + 40);
    out.push(0xa4); // map of 4 pairs
    for (key, value) in [("from", m.from), ("to", m.to), ("term", m.term)] {
        text(&mut out, key);
        uint(&mut out, value);
    }
    text(&mut out, "body");
    out.extend_from_slice(body);
    if out.len() > DEFAULT_MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge {
            size: out.len(),
            limit: DEFAULT_MAX_MESSAGE_BYTES,
        });
    }
    Ok(out)
}

/// A CBOR head of major type `major` carrying `n`, in its shortest form (RFC 8949 §3, as ciborium
/// writes it).
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    match n {
        0..=23 => out.push(major | n as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, n as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn uint(out: &mut Vec<u8>, n: u64) {
    head(out, 0, n);
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use verisim_raft::{AppendResult, Entry, Payload};

    use super::*;

    fn append(to: NodeId, entries: Vec<Entry>) -> Message {
        Message {
            from: 1,
            to,
            term: 7,
            body: MessageBody::Append {
                prev_index: 40,
                prev_term: 7,
                entries,
                commit: 39,
            },
        }
    }

    fn entries(n: u64, size: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                term: 7,
                index: 41 + i,
                payload: Payload::Normal(vec![i as u8; size]),
            })
            .collect()
    }

    #[test]
    fn followers_sent_the_same_append_share_one_encoding_of_it() {
        let es = entries(32, 200);
        let msgs = vec![
            append(2, es.clone()),
            append(3, es.clone()),
            // A follower further behind gets other entries: its own encoding.
            append(4, es[..5].to_vec()),
            Message {
                from: 1,
                to: 2,
                term: 7,
                body: MessageBody::Heartbeat {
                    commit: 39,
                    read_round: 3,
                },
            },
        ];
        let (out, bodies) = encode_all(&msgs);
        assert_eq!(bodies, 3, "two distinct appends and a heartbeat");
        for (m, e) in msgs.iter().zip(&out) {
            assert_eq!(e.to, m.to);
            let bytes = e.bytes.as_ref().unwrap();
            assert_eq!(bytes, &codec::encode(m, usize::MAX).unwrap());
            let back: Message = codec::decode(bytes, DEFAULT_MAX_MESSAGE_BYTES).unwrap();
            assert_eq!(&back, m);
        }
    }

    #[test]
    fn an_append_over_the_message_limit_is_refused_for_each_follower() {
        let es = entries(1, DEFAULT_MAX_MESSAGE_BYTES);
        let (out, bodies) = encode_all(&[append(2, es.clone()), append(3, es)]);
        assert_eq!(bodies, 1);
        for e in out {
            assert!(matches!(e.bytes, Err(CodecError::TooLarge { .. })));
        }
    }

    fn any_body() -> impl Strategy<Value = MessageBody> {
        prop_oneof![
            (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(i, t, transfer)| {
                MessageBody::Vote {
                    last_log_index: i,
                    last_log_term: t,
                    transfer,
                }
            }),
            (any::<u64>(), any::<u64>())
                .prop_map(|(commit, read_round)| { MessageBody::Heartbeat { commit, read_round } }),
            any::<u64>().prop_map(|m| MessageBody::AppendResponse(AppendResult::Accepted {
                match_index: m
            })),
            (
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec((any::<u64>(), any::<u64>(), any::<Vec<u8>>()), 0..4),
                any::<u64>()
            )
                .prop_map(|(prev_index, prev_term, es, commit)| MessageBody::Append {
                    prev_index,
                    prev_term,
                    entries: es
                        .into_iter()
                        .map(|(term, index, data)| Entry {
                            term,
                            index,
                            payload: Payload::Normal(data),
                        })
                        .collect(),
                    commit,
                }),
            Just(MessageBody::TimeoutNow),
        ]
    }

    proptest! {
        /// The envelope is byte for byte ciborium's encoding of the whole message, across every
        /// width of integer head.
        #[test]
        fn the_envelope_is_the_whole_message_encoded(
            from in prop_oneof![0u64..30, any::<u64>()],
            to in prop_oneof![0u64..300, any::<u64>()],
            term in prop_oneof![0u64..70_000, any::<u64>()],
            body in any_body(),
        ) {
            let m = Message { from, to, term, body };
            let (out, _) = encode_all(std::slice::from_ref(&m));
            let whole = codec::encode(&m, usize::MAX).unwrap();
            prop_assert_eq!(out[0].bytes.as_ref().unwrap(), &whole);
        }
    }
}
