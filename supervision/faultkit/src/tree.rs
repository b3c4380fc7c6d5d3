//! A supervision tree as a value the test can query and assert on: children by path
//! (`"stores/vector"`), restart counts, states, and a one-line shape.
//!
//! A [`Tree`] is built from [`SupervisorHandle::tree`] (in process) or from the JSON that
//! serializing a [`TreeNode`] gives (an admin endpoint of a node running elsewhere).
//!
//! ```
//! use verisim_faultkit::Tree;
//! let json = serde_json::json!({
//!     "name": "app", "actor_id": "0.1", "strategy": "one_for_one", "intensity": 3, "period_ms": 5000,
//!     "children": [
//!         {"id": "db", "actor_id": "0.2", "kind": "worker", "restart": "permanent",
//!          "state": "running", "restart_count": 2, "last_failure": null},
//!     ]
//! });
//! let tree = Tree::from_json(json)?;
//! assert_eq!(tree.shape(), "app(db)");
//! assert_eq!(tree.restart_count("db"), Some(2));
//! tree.expect_restarts(&[("db", 2)])?;
//! # Ok::<(), verisim_faultkit::FaultError>(())
//! ```

use std::collections::BTreeMap;

use verisim_supervision::{ChildInfo, ChildState, TreeNode};

use crate::error::FaultError;

/// A snapshot of a supervision tree. Paths name children below the root by their ids, joined
/// with `/`; the root supervisor's own name is not part of them.
#[derive(Clone, Debug)]
pub struct Tree {
    root: TreeNode,
}

impl From<TreeNode> for Tree {
    fn from(root: TreeNode) -> Self {
        Self { root }
    }
}

impl Tree {
    /// A tree from the JSON of a serialized [`TreeNode`] (what `SupervisorHandle::tree` gives,
    /// serialized, e.g. by an admin endpoint).
    pub fn from_json(value: serde_json::Value) -> Result<Self, FaultError> {
        serde_json::from_value::<TreeNode>(value)
            .map(Self::from)
            .map_err(|e| FaultError::Mismatch(format!("not a supervision tree: {e}")))
    }

    /// The root supervisor's tree.
    pub fn root(&self) -> &TreeNode {
        &self.root
    }

    /// Every child, by path, in start order (depth first).
    pub fn children(&self) -> Vec<(String, &ChildInfo)> {
        let mut out = Vec::new();
        walk(&self.root, "", &mut out);
        out
    }

    /// Every path, in start order (depth first).
    pub fn paths(&self) -> Vec<String> {
        self.children().into_iter().map(|(p, _)| p).collect()
    }

    /// The child at `path`.
    pub fn child(&self, path: &str) -> Option<&ChildInfo> {
        self.children()
            .into_iter()
            .find(|(p, _)| p == path)
            .map(|(_, c)| c)
    }

    /// The restart count of the child at `path`.
    pub fn restart_count(&self, path: &str) -> Option<u64> {
        self.child(path).map(|c| c.restart_count)
    }

    /// The state of the child at `path`.
    pub fn state(&self, path: &str) -> Option<ChildState> {
        self.child(path).map(|c| c.state)
    }

    /// The running incarnation's ractor id of the child at `path`.
    pub fn actor_id(&self, path: &str) -> Option<&str> {
        self.child(path).and_then(|c| c.actor_id.as_deref())
    }

    /// Every child's restart count, by path.
    pub fn restart_counts(&self) -> BTreeMap<String, u64> {
        self.children()
            .into_iter()
            .map(|(p, c)| (p, c.restart_count))
            .collect()
    }

    /// The sum of every child's restart count.
    pub fn total_restarts(&self) -> u64 {
        self.children().iter().map(|(_, c)| c.restart_count).sum()
    }

    /// The tree's shape in one line: `name(child child sub(grandchild ...))`, supervisors with
    /// their children in parentheses, in start order. A child supervisor that is not running has
    /// no subtree and shows as a leaf.
    pub fn shape(&self) -> String {
        let mut s = String::new();
        shape(&self.root, &mut s);
        s
    }

    /// Fails unless [`shape`](Self::shape) is `expected` (whitespace between names is
    /// normalised to one space).
    pub fn expect_shape(&self, expected: &str) -> Result<(), FaultError> {
        let norm = |s: &str| {
            s.replace('(', " ( ")
                .replace(')', " ) ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        let actual = self.shape();
        if norm(&actual) == norm(expected) {
            Ok(())
        } else {
            Err(FaultError::Mismatch(format!(
                "tree shape: expected `{expected}`, found `{actual}`"
            )))
        }
    }

    /// Fails unless each listed child has exactly the given restart count.
    pub fn expect_restarts(&self, expected: &[(&str, u64)]) -> Result<(), FaultError> {
        let wrong: Vec<String> = expected
            .iter()
            .filter_map(|&(path, n)| match self.restart_count(path) {
                Some(m) if m == n => None,
                Some(m) => Some(format!("`{path}` restarted {m} times, expected {n}")),
                None => Some(format!("no child at `{path}`")),
            })
            .collect();
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(FaultError::Mismatch(format!(
                "restart counts: {}; all: {:?}",
                wrong.join(", "),
                self.restart_counts()
            )))
        }
    }

    /// Fails unless every child in the tree is running.
    pub fn expect_all_running(&self) -> Result<(), FaultError> {
        let down: Vec<String> = self
            .children()
            .into_iter()
            .filter(|(_, c)| c.state != ChildState::Running)
            .map(|(p, c)| format!("{p}: {:?}", c.state))
            .collect();
        if down.is_empty() {
            Ok(())
        } else {
            Err(FaultError::Mismatch(format!(
                "not running: {}",
                down.join(", ")
            )))
        }
    }

    /// Whether every child in the tree is running.
    pub fn all_running(&self) -> bool {
        self.expect_all_running().is_ok()
    }
}

fn walk<'a>(node: &'a TreeNode, prefix: &str, out: &mut Vec<(String, &'a ChildInfo)>) {
    for child in &node.children {
        let path = if prefix.is_empty() {
            child.info.id.clone()
        } else {
            format!("{prefix}/{}", child.info.id)
        };
        out.push((path.clone(), &child.info));
        if let Some(sub) = &child.subtree {
            walk(sub, &path, out);
        }
    }
}

fn shape(node: &TreeNode, s: &mut String) {
    s.push_str(&node.supervisor.name);
    s.push('(');
    for (i, child) in node.children.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        match &child.subtree {
            // A nested supervisor's name is its spec's; the path uses the child id.
            Some(sub) => {
                let mut inner = String::new();
                shape(sub, &mut inner);
                let args = inner
                    .find('(')
                    .map(|i| inner[i..].to_string())
                    .unwrap_or_default();
                s.push_str(&child.info.id);
                s.push_str(&args);
            }
            None => s.push_str(&child.info.id),
        }
    }
    s.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn child(id: &str, state: &str, restarts: u64) -> serde_json::Value {
        json!({"id": id, "actor_id": "0.9", "kind": "worker", "restart": "permanent",
               "state": state, "restart_count": restarts, "last_failure": null})
    }

    fn sample() -> Tree {
        let mut sub = child("pool", "running", 1);
        sub["kind"] = json!("supervisor");
        sub["subtree"] = json!({
            "name": "pool", "actor_id": "0.3", "strategy": "one_for_all", "intensity": 1,
            "period_ms": 5000, "children": [child("w1", "running", 2), child("w2", "failed", 0)]
        });
        Tree::from_json(json!({
            "name": "app", "actor_id": "0.1", "strategy": "rest_for_one", "intensity": 1,
            "period_ms": 5000, "children": [child("db", "running", 0), sub]
        }))
        .unwrap()
    }

    #[test]
    fn paths_shape_and_counts_follow_the_tree() {
        let t = sample();
        assert_eq!(t.paths(), ["db", "pool", "pool/w1", "pool/w2"]);
        assert_eq!(t.shape(), "app(db pool(w1 w2))");
        t.expect_shape("app( db  pool( w1 w2 ) )").unwrap();
        assert_eq!(t.restart_count("pool/w1"), Some(2));
        assert_eq!(t.total_restarts(), 3);
        assert_eq!(t.state("pool/w2"), Some(ChildState::Failed));
        assert!(t.child("nope").is_none());
    }

    #[test]
    fn mismatches_name_what_differs() {
        let t = sample();
        let e = t.expect_shape("app(db)").unwrap_err().to_string();
        assert!(e.contains("app(db pool(w1 w2))"), "{e}");
        let e = t
            .expect_restarts(&[("pool/w1", 1), ("gone", 0)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`pool/w1` restarted 2 times, expected 1"), "{e}");
        assert!(e.contains("no child at `gone`"), "{e}");
        let e = t.expect_all_running().unwrap_err().to_string();
        assert!(e.contains("pool/w2"), "{e}");
        assert!(Tree::from_json(json!({"not": "a tree"})).is_err());
    }
}
