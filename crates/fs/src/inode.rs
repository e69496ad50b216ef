//! Inode numbers: stable for the life of a mount, assigned on first sight of a path.

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

pub struct InodeTable {
    by_ino: HashMap<u64, Node>,
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
            t.by_ino.insert(ino, node.clone());
            t.by_node.insert(node, ino);
        }
        t
    }
}

impl InodeTable {
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.by_ino.get(&ino)
    }

    /// The inode of `node`, assigning the next number on first sight. Numbers are never
    /// reused within a mount, so a path keeps its inode even if it disappears and returns.
    pub fn ino_of(&mut self, node: Node) -> u64 {
        if let Some(&ino) = self.by_node.get(&node) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(ino, node.clone());
        self.by_node.insert(node, ino);
        ino
    }

    pub fn len(&self) -> usize {
        self.by_ino.len()
    }
}
