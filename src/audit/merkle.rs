//! The checkpoint root: a Merkle tree over the heads of all chains.

use super::canonical::canonical_json;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A chain's head: its aggregate, last sequence and that event's hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Head {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub hash: String,
}

fn leaf(h: &Head) -> [u8; 32] {
    let form = Value::Array(vec![
        Value::from("kehoach-head-v1"),
        Value::from(h.aggregate_type.as_str()),
        Value::from(h.aggregate_id.as_str()),
        Value::from(h.sequence),
        Value::from(h.hash.as_str()),
    ]);
    Sha256::digest(canonical_json(&form).as_bytes()).into()
}

/// Root over the heads, ordered by (aggregate type, aggregate id); an odd
/// node at the end of a level is carried up unchanged; no heads hash "".
pub fn root(heads: &[Head]) -> String {
    let mut sorted: Vec<&Head> = heads.iter().collect();
    sorted.sort_by(|a, b| {
        (a.aggregate_type.as_bytes(), a.aggregate_id.as_bytes())
            .cmp(&(b.aggregate_type.as_bytes(), b.aggregate_id.as_bytes()))
    });
    let mut level: Vec<[u8; 32]> = sorted.into_iter().map(leaf).collect();
    if level.is_empty() {
        return hex::encode(Sha256::digest(b""));
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => {
                    let mut h = Sha256::new();
                    h.update(l);
                    h.update(r);
                    h.finalize().into()
                }
                [one] => *one,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    hex::encode(level[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(id: &str, seq: i64) -> Head {
        Head {
            aggregate_type: "Task".into(),
            aggregate_id: id.into(),
            sequence: seq,
            hash: format!("{seq:064}"),
        }
    }

    #[test]
    fn the_root_depends_on_every_head_but_not_their_order() {
        let heads = vec![head("p/II.1.1", 2), head("p/II.1.2", 3), head("p/III.1.2", 9)];
        let r = root(&heads);
        let mut reversed = heads.clone();
        reversed.reverse();
        assert_eq!(root(&reversed), r);
        let mut changed = heads.clone();
        changed[2].sequence = 8;
        assert_ne!(root(&changed), r);
        assert_ne!(root(&heads[..2]), r);
        assert_eq!(root(&[]), hex::encode(Sha256::digest(b"")));
    }
}
