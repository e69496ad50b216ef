//! Inode numbers: assigned on first sight of a path and never reused within a mount. Each
//! inode counts the kernel's references (lookups and readdirplus entries answered); FUSE
//! `forget` gives them back, and an inode nobody references any more leaves the table. The
//! root and `inquiries/` are never forgotten.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use super::view_tree::ViewNode;
use personafs_client::Section;

pub const ROOT: u64 = 1;
pub const INQUIRIES: u64 = 2;

/// What an inode is. Inquiry ids and file names are shared strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    Root,
    Inquiries,
    Inquiry(Arc<str>),
    InquiryJson(Arc<str>),
    Section(Arc<str>, Section),
    File(Arc<str>, Section, Arc<str>),
    /// A directory or link of the views beside `inquiries/`.
    View(ViewNode),
}

struct Entry {
    ino: u64,
    /// `None` once forgotten (until the next compaction drops it).
    node: Option<Node>,
    /// References the kernel holds (its `nlookup`).
    lookups: u64,
}

/// Live inodes in number order, found by number (binary search) or by node (a hash index of
/// numbers): each node is kept once, about 75 bytes an inode, where two hash maps cost 200.
/// `ls -l` of a million inquiries holds a million inodes.
pub struct InodeTable {
    /// Sorted by `ino`: numbers only grow, so a new inode is pushed at the end.
    entries: Vec<Entry>,
    /// Forgotten entries still in `entries`.
    dead: usize,
    by_node: HashTable<u64>,
    hasher: RandomState,
    next: u64,
}

/// The hash of the node numbered `ino`, for the index to grow or shrink (it keeps only
/// numbers, and every number in it is live).
fn rehash<'a>(entries: &'a [Entry], hasher: &'a RandomState) -> impl Fn(&u64) -> u64 + 'a {
    move |&ino| {
        let at = entries.binary_search_by_key(&ino, |e| e.ino);
        at.ok()
            .and_then(|at| entries[at].node.as_ref())
            .map_or(0, |n| hasher.hash_one(n))
    }
}

/// Compact once this many forgotten entries are kept, and they are half the table.
const COMPACT_AFTER: usize = 1024;

impl Default for InodeTable {
    fn default() -> Self {
        let mut t = InodeTable {
            entries: Vec::new(),
            dead: 0,
            by_node: HashTable::new(),
            hasher: RandomState::new(),
            next: ROOT,
        };
        t.ino_of(Node::Root);
        t.ino_of(Node::Inquiries);
        debug_assert_eq!(t.next, INQUIRIES + 1);
        t
    }
}

impl InodeTable {
    fn slot(&self, ino: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&ino, |e| e.ino).ok()
    }

    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.entries[self.slot(ino)?].node.as_ref()
    }

    fn find(&self, node: &Node) -> Option<u64> {
        let hash = self.hasher.hash_one(node);
        self.by_node
            .find(hash, |&ino| self.get(ino) == Some(node))
            .copied()
    }

    /// The inode of `node`, assigning the next number on first sight. Numbers are never
    /// reused within a mount: a path that was forgotten and comes back gets a new one.
    pub fn ino_of(&mut self, node: Node) -> u64 {
        if let Some(ino) = self.find(&node) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        let hash = self.hasher.hash_one(&node);
        self.entries.push(Entry {
            ino,
            node: Some(node),
            lookups: 0,
        });
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.by_node
            .insert_unique(hash, ino, rehash(entries, hasher));
        ino
    }

    /// The inode of `node` if it has one (never numbers it).
    pub fn peek(&self, node: &Node) -> Option<u64> {
        self.find(node)
    }

    /// The inode of `node`, counting one more kernel reference to it (an entry reply).
    pub fn reference(&mut self, node: Node) -> u64 {
        let ino = self.ino_of(node);
        if let Some(at) = self.slot(ino) {
            self.entries[at].lookups += 1;
        }
        ino
    }

    /// The kernel dropped `nlookup` references; `true` when the inode left the table.
    /// The root and `inquiries/` stay for the life of the mount.
    pub fn forget(&mut self, ino: u64, nlookup: u64) -> bool {
        let Some(at) = self.slot(ino) else {
            return false;
        };
        let e = &mut self.entries[at];
        if e.node.is_none() {
            return false;
        }
        e.lookups = e.lookups.saturating_sub(nlookup);
        if e.lookups > 0 || ino == ROOT || ino == INQUIRIES {
            return false;
        }
        let Some(node) = e.node.take() else {
            return false;
        };
        let hash = self.hasher.hash_one(&node);
        if let Ok(found) = self.by_node.find_entry(hash, |&i| i == ino) {
            found.remove();
        }
        self.dead += 1;
        if self.dead >= COMPACT_AFTER && self.dead * 2 >= self.entries.len() {
            self.compact();
        }
        true
    }

    /// Drop forgotten entries and give back the room they took.
    fn compact(&mut self) {
        self.entries.retain(|e| e.node.is_some());
        self.entries.shrink_to(self.entries.len() * 5 / 4);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.by_node.shrink_to_fit(rehash(entries, hasher));
        self.dead = 0;
    }

    pub fn len(&self) -> usize {
        self.entries.len() - self.dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> Node {
        Node::File(Arc::from("inq_1"), Section::Document, Arc::from(name))
    }

    #[test]
    fn forget_removes_an_inode_once_every_reference_is_given_back() {
        let mut t = InodeTable::default();
        let a = t.reference(file("a.jpg"));
        assert_eq!(t.reference(file("a.jpg")), a);
        assert_eq!(t.len(), 3);
        assert!(!t.forget(a, 1), "one reference is still held");
        assert_eq!(t.get(a), Some(&file("a.jpg")));
        assert!(t.forget(a, 1));
        assert_eq!(t.get(a), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn numbers_are_never_reused_after_forget() {
        let mut t = InodeTable::default();
        let a = t.reference(file("a.jpg"));
        assert!(t.forget(a, 1));
        let again = t.reference(file("a.jpg"));
        assert_ne!(again, a, "a forgotten number must not come back");
        let b = t.reference(file("b.jpg"));
        assert!(b > again);
    }

    #[test]
    fn root_and_inquiries_are_never_forgotten() {
        let mut t = InodeTable::default();
        assert_eq!(t.reference(Node::Inquiries), INQUIRIES);
        assert!(!t.forget(INQUIRIES, 5));
        assert!(!t.forget(ROOT, 1));
        assert_eq!(t.get(ROOT), Some(&Node::Root));
        assert_eq!(t.get(INQUIRIES), Some(&Node::Inquiries));
    }

    #[test]
    fn forgotten_inodes_are_compacted_away_and_the_rest_keep_their_numbers() {
        let mut t = InodeTable::default();
        let n = 3 * COMPACT_AFTER;
        let inos: Vec<u64> = (0..n)
            .map(|i| t.reference(file(&format!("{i}.jpg"))))
            .collect();
        for (i, &ino) in inos.iter().enumerate() {
            if i % 4 != 0 {
                assert!(t.forget(ino, 1));
            }
        }
        assert_eq!(t.len(), 2 + n / 4);
        assert!(t.entries.len() < 2 + n, "forgotten entries were dropped");
        for (i, &ino) in inos.iter().enumerate() {
            let name = format!("{i}.jpg");
            if i % 4 == 0 {
                assert_eq!(t.get(ino), Some(&file(&name)));
                assert_eq!(t.ino_of(file(&name)), ino, "a live inode keeps its number");
            } else {
                assert_eq!(t.get(ino), None);
            }
        }
        let again = t.ino_of(file("1.jpg"));
        assert!(
            again > inos[n - 1],
            "a forgotten path comes back with a new number"
        );
        assert_eq!(t.get(again), Some(&file("1.jpg")));
    }

    #[test]
    fn forgetting_an_unknown_inode_is_harmless() {
        let mut t = InodeTable::default();
        assert!(!t.forget(999, 1));
        assert_eq!(t.len(), 2);
    }
}
