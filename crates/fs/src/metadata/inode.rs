//! Inode numbers: assigned on first sight of a path and never reused within a mount. Each
//! inode counts the kernel's references (lookups and readdirplus entries answered); FUSE
//! `forget` gives them back, and an inode nobody references any more leaves the table.

use std::collections::HashMap;
use std::sync::Arc;

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
}

struct Entry {
    node: Node,
    /// References the kernel holds (its `nlookup`).
    lookups: u64,
}

pub struct InodeTable {
    by_ino: HashMap<u64, Entry>,
    by_node: HashMap<Node, u64>,
    next: u64,
}

impl Default for InodeTable {
    fn default() -> Self {
        let mut t = InodeTable {
            by_ino: HashMap::new(),
            by_node: HashMap::new(),
            next: INQUIRIES + 1,
        };
        for (ino, node) in [(ROOT, Node::Root), (INQUIRIES, Node::Inquiries)] {
            t.by_node.insert(node.clone(), ino);
            t.by_ino.insert(ino, Entry { node, lookups: 0 });
        }
        t
    }
}

impl InodeTable {
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.by_ino.get(&ino).map(|e| &e.node)
    }

    /// The inode of `node`, assigning the next number on first sight. Numbers are never
    /// reused within a mount: a path that was forgotten and comes back gets a new one.
    pub fn ino_of(&mut self, node: Node) -> u64 {
        if let Some(&ino) = self.by_node.get(&node) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_node.insert(node.clone(), ino);
        self.by_ino.insert(ino, Entry { node, lookups: 0 });
        ino
    }

    /// The inode of `node`, counting one more kernel reference to it (an entry reply).
    pub fn reference(&mut self, node: Node) -> u64 {
        let ino = self.ino_of(node);
        if let Some(e) = self.by_ino.get_mut(&ino) {
            e.lookups += 1;
        }
        ino
    }

    /// The kernel dropped `nlookup` references; `true` when the inode left the table.
    /// The root and `inquiries/` stay for the life of the mount.
    pub fn forget(&mut self, ino: u64, nlookup: u64) -> bool {
        let Some(e) = self.by_ino.get_mut(&ino) else {
            return false;
        };
        e.lookups = e.lookups.saturating_sub(nlookup);
        if e.lookups > 0 || ino == ROOT || ino == INQUIRIES {
            return false;
        }
        if let Some(e) = self.by_ino.remove(&ino) {
            self.by_node.remove(&e.node);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.by_ino.len()
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
    fn forgetting_an_unknown_inode_is_harmless() {
        let mut t = InodeTable::default();
        assert!(!t.forget(999, 1));
        assert_eq!(t.len(), 2);
    }
}
