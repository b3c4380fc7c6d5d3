//! What the simulated clients saw: each operation's invocation and, if it came back, its result, in
//! virtual milliseconds. Operations whose outcome is unknown (timed out, node crashed) stay open: they
//! may or may not have taken effect.

use verisim_lincheck::{HistoryError, KvHistory, KvInput, KvOutput};

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

    /// The same history for `verisim-lincheck`'s key-value model; open operations stay unknown.
    pub fn to_lincheck(&self) -> Result<KvHistory<u8, u64>, HistoryError> {
        let mut out = KvHistory::new();
        for op in &self.ops {
            let input = match op.op {
                KvOp::Put { key, value } => KvInput::put(key, value),
                KvOp::Get { key } => KvInput::get(key),
                KvOp::Cas { key, expected, new } => KvInput::cas(key, expected, new),
            };
            let id = out.invoke(u64::from(op.client), input, op.invoked_at);
            if let Some((result, at)) = op.returned {
                let output = match result {
                    KvResult::Put => KvOutput::Ok,
                    KvResult::Get(v) => KvOutput::Value(v),
                    KvResult::Cas(swapped) => KvOutput::Swapped(swapped),
                };
                out.complete(id, output, at)?;
            }
        }
        Ok(out)
    }
}
