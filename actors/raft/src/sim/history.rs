//! What the simulated clients saw: each operation's invocation and, if it came back, its result, in
//! virtual milliseconds. Operations whose outcome is unknown (timed out, node crashed) stay open: they
//! may or may not have taken effect.

use super::kv::{KvOp, KvResult};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOp {
    pub client: u32,
    pub op: KvOp,
    pub invoked_at: u64,
    /// `None`: the outcome is unknown.
    pub returned: Option<(KvResult, u64)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub ops: Vec<ClientOp>,
}

impl History {
    pub fn invoke(&mut self, client: u32, op: KvOp, at: u64) -> usize {
        self.ops.push(ClientOp {
            client,
            op,
            invoked_at: at,
            returned: None,
        });
        self.ops.len() - 1
    }

    pub fn complete(&mut self, slot: usize, result: KvResult, at: u64) {
        if let Some(op) = self.ops.get_mut(slot) {
            op.returned = Some((result, at));
        }
    }

    pub fn completed(&self) -> usize {
        self.ops.iter().filter(|o| o.returned.is_some()).count()
    }
}
