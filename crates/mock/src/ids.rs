//! Persona-looking ids (`inq_` + 24 base58 characters) that encode where an object comes from,
//! so a server of a million generated inquiries finds one by its id without a table.
//!
//! The 128 bits behind the 24 characters are (kind, space, ordinal, index) and a 64-bit check,
//! put through a small keyed Feistel permutation: ids look random, differ per seed, never
//! repeat (the map is a bijection), and a string we did not mint fails the check.

use crate::content::mix64;

pub const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// Characters after the prefix; 58^24 > 2^128.
const ID_CHARS: usize = 24;

/// Prefixes an id can have; the position is the kind stored in the id.
const PREFIXES: [&str; 11] = [
    "inq_", "doc_", "ver_", "self_", "act_", "itmpl_", "itmplv_", "tmpl_", "vtmpl_", "vtmplv_",
    "evt_",
];

/// Which family of objects an id belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Generated inquiry `index` and its objects.
    Generated = 0,
    /// Made while the server runs (`POST /_mock/...`): one index per change.
    Added = 1,
    /// `--large-file` inquiries.
    Large = 2,
    /// Organisation-wide objects: accounts, templates.
    Org = 3,
    /// Events.
    Event = 4,
}

impl Space {
    fn from_bits(bits: u64) -> Option<Space> {
        Some(match bits {
            0 => Space::Generated,
            1 => Space::Added,
            2 => Space::Large,
            3 => Space::Org,
            4 => Space::Event,
            _ => return None,
        })
    }
}

/// What an id says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    pub space: Space,
    pub index: u64,
    pub ordinal: u16,
}

const INDEX_BITS: u32 = 40;
const ORDINAL_BITS: u32 = 12;

/// Mints and reads ids under one key (from the seed).
#[derive(Debug, Clone)]
pub struct IdCodec {
    rounds: [u64; 4],
    check: u64,
}

impl IdCodec {
    pub fn new(seed: u64) -> IdCodec {
        let key = mix64(seed ^ 0x1D5_C0DE);
        IdCodec {
            rounds: [
                mix64(key ^ 1),
                mix64(key ^ 2),
                mix64(key ^ 3),
                mix64(key ^ 4),
            ],
            check: mix64(key ^ 5),
        }
    }

    /// The id of object `ordinal` of `index` in `space`, with `prefix` (one of `PREFIXES`).
    pub fn mint(&self, prefix: &str, space: Space, index: u64, ordinal: u16) -> String {
        let kind = PREFIXES
            .iter()
            .position(|p| *p == prefix)
            .expect("a known id prefix") as u64;
        debug_assert!(index < 1 << INDEX_BITS && u32::from(ordinal) < 1 << ORDINAL_BITS);
        let hi = kind << 56
            | (space as u64) << 52
            | u64::from(ordinal) << INDEX_BITS
            | (index & ((1 << INDEX_BITS) - 1));
        let lo = mix64(hi ^ self.check);
        let (mut l, mut r) = (hi, lo);
        for k in self.rounds {
            (l, r) = (r, l ^ mix64(r ^ k));
        }
        let mut n = (u128::from(l) << 64) | u128::from(r);
        let mut chars = [b'1'; ID_CHARS];
        for c in chars.iter_mut().rev() {
            *c = BASE58[(n % 58) as usize];
            n /= 58;
        }
        format!("{prefix}{}", std::str::from_utf8(&chars).expect("ASCII"))
    }

    /// What `id` encodes, when we minted it with this key.
    pub fn decode(&self, id: &str) -> Option<Decoded> {
        let (kind, rest) = PREFIXES
            .iter()
            .enumerate()
            .find_map(|(k, p)| id.strip_prefix(p).map(|rest| (k as u64, rest)))?;
        if rest.len() != ID_CHARS {
            return None;
        }
        let mut n: u128 = 0;
        for b in rest.bytes() {
            let digit = BASE58.iter().position(|c| *c == b)? as u128;
            n = n.checked_mul(58)?.checked_add(digit)?;
        }
        let (mut l, mut r) = ((n >> 64) as u64, n as u64);
        for k in self.rounds.iter().rev() {
            (l, r) = (r ^ mix64(l ^ k), l);
        }
        let hi = l;
        if r != mix64(hi ^ self.check) || hi >> 56 != kind {
            return None;
        }
        Some(Decoded {
            space: Space::from_bits((hi >> 52) & 0xF)?,
            index: hi & ((1 << INDEX_BITS) - 1),
            ordinal: ((hi >> INDEX_BITS) & ((1 << ORDINAL_BITS) - 1)) as u16,
        })
    }
}

/// Mints the ids of one inquiry's objects, numbering them in order.
#[derive(Debug, Clone)]
pub struct Minter {
    codec: IdCodec,
    space: Space,
    index: u64,
    next: u16,
}

impl Minter {
    pub fn new(codec: IdCodec, space: Space, index: u64) -> Minter {
        Minter {
            codec,
            space,
            index,
            next: 0,
        }
    }

    pub fn mint(&mut self, prefix: &str) -> String {
        let id = self.codec.mint(prefix, self.space, self.index, self.next);
        self.next += 1;
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_strangers_are_refused() {
        let codec = IdCodec::new(7);
        let id = codec.mint("doc_", Space::Generated, 999_999, 3);
        assert!(id.starts_with("doc_") && id.len() == 4 + ID_CHARS, "{id}");
        assert_eq!(
            codec.decode(&id),
            Some(Decoded {
                space: Space::Generated,
                index: 999_999,
                ordinal: 3
            })
        );
        assert_eq!(IdCodec::new(8).decode(&id), None, "another seed's id");
        assert_eq!(codec.decode(&id.replacen("doc_", "ver_", 1)), None);
        let mut edited = id.clone().into_bytes();
        edited[10] = if edited[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(codec.decode(&String::from_utf8(edited).unwrap()), None);
        assert_eq!(codec.decode("inq_1"), None);
        assert_eq!(
            codec.decode("inq_zzzzzzzzzzzzzzzzzzzzzzzz"),
            None,
            "past 2^128"
        );
        assert_ne!(
            codec.mint("inq_", Space::Generated, 1, 0),
            codec.mint("inq_", Space::Generated, 2, 0)
        );
    }
}
