//! Which gateways hold which recipients: one [`ConnectionRegistry::gateways_of_users`] lookup
//! per batch, then per recipient list a split into per-gateway lists with no string copies
//! (gateways are small indices until the final per-gateway output).

use std::collections::HashMap;
use std::sync::Arc;

use chat_domain::UserId;

use crate::Result;
use crate::registry::ConnectionRegistry;

/// The gateways of a set of users: gateway ids ascending (an index is a position in that
/// order), and per user the gateways holding at least one of its live connections.
pub(crate) struct Routes {
    /// Gateway ids, ascending, distinct.
    gateways: Vec<Arc<str>>,
    /// (user, gateway index) pairs sorted by user then index; each pair once.
    pairs: Vec<(UserId, u32)>,
    /// Per user with a live connection: its range in `pairs`.
    of_user: HashMap<UserId, (u32, u32)>,
}

impl Routes {
    /// Looks up where `users` (any order, repeats allowed) have live connections: one registry
    /// call. Users without one have no gateway.
    ///
    /// # Errors
    /// From the registry ([`crate::PipelineError::Unavailable`]).
    pub(crate) async fn lookup(registry: &dyn ConnectionRegistry, users: &[UserId]) -> Result<Routes> {
        if users.is_empty() {
            return Ok(Routes { gateways: Vec::new(), pairs: Vec::new(), of_user: HashMap::new() });
        }
        let found = registry.gateways_of_users(users).await?;
        let mut gateways: Vec<Arc<str>> = found.iter().map(|(_, g)| Arc::clone(g)).collect();
        gateways.sort_unstable();
        gateways.dedup();
        let index: HashMap<&str, u32> = gateways.iter().enumerate().map(|(i, g)| (&**g, i as u32)).collect();
        let mut pairs: Vec<(UserId, u32)> = found.iter().map(|(u, g)| (*u, index[&**g])).collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut of_user: HashMap<UserId, (u32, u32)> = HashMap::with_capacity(pairs.len());
        for (i, (u, _)) in pairs.iter().enumerate() {
            of_user.entry(*u).and_modify(|r| r.1 = i as u32 + 1).or_insert((i as u32, i as u32 + 1));
        }
        Ok(Routes { gateways, pairs, of_user })
    }

    /// Number of gateways.
    pub(crate) fn len(&self) -> usize {
        self.gateways.len()
    }

    /// The id of gateway `index` (`< len()`).
    pub(crate) fn gateway(&self, index: usize) -> &str {
        &self.gateways[index]
    }

    /// Splits `recipients` per gateway: (gateway index, the recipients it holds, in the order
    /// given), gateway indices ascending, gateways holding none of them omitted. Recipients
    /// given ascending and distinct come out ascending and distinct per gateway.
    pub(crate) fn split(&self, recipients: impl IntoIterator<Item = UserId>) -> Vec<(usize, Vec<UserId>)> {
        let mut per: Vec<Vec<UserId>> = vec![Vec::new(); self.gateways.len()];
        for u in recipients {
            if let Some(&(from, to)) = self.of_user.get(&u) {
                for &(_, g) in &self.pairs[from as usize..to as usize] {
                    per[g as usize].push(u);
                }
            }
        }
        per.into_iter().enumerate().filter(|(_, r)| !r.is_empty()).collect()
    }
}
