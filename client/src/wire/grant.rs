//! Entity ownership and grants: the owner lets other clients read or write an entity.

use serde::{Deserialize, Serialize};

use super::{ClientId, EntityId};

/// What a grant allows. `write` (update and delete) implies `read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// `GET` the entity and find it through queries.
    Read,
    /// Read, update and delete it (not grant: only the owner grants).
    Write,
}

/// `PUT /v1/entities/{id}/grants/{client}`: give `client` this access (replacing an earlier grant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// What the grantee may do.
    pub access: Access,
}

/// `200 OK` to `PUT` or `DELETE /v1/entities/{id}/grants/{client}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantChanged {
    /// The entity.
    pub id: EntityId,
    /// The grantee.
    pub client: ClientId,
    /// Its access now (`null` after a `DELETE`).
    pub access: Option<Access>,
    /// The registry log index that committed the change (the entity's version is unchanged).
    pub index: u64,
}
