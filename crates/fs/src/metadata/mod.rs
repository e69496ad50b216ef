//! Metadata: the inode table, the listing, inquiry views and the negative cache, and the
//! namespace built from them (lookup, attributes, directory entries). Each request is one
//! async fn that returns at its first poll when memory has the answer (see `answer`).

mod attr;
pub mod delta;
pub(crate) mod inode;
pub(crate) mod listing;
mod listing_rows;
mod negative;
pub(crate) mod persist;
mod progress;
mod shared;
pub(crate) mod view;
pub(crate) mod view_tree;
pub(crate) mod views;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use self::attr::Ownership;
pub use self::attr::{Attr, DirEntry, Kind};
use self::inode::{INQUIRIES, InodeTable, Node, ROOT};
use self::listing::{DeltaSink, DeltaStats, Lister, Listing, plausible_inquiry_id};
use self::view::InquiryView;
use self::view_tree::{ViewKeys, ViewTree};
use self::views::{Need, Views};
use crate::config::CoreConfig;
use crate::error::{FsError, FsResult};
use personafs_client::Section;

/// One directory entry as the namespace knows it: the node it names, for counting the
/// kernel's reference when the entry is answered.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub(crate) node: Node,
    pub(crate) entry: DirEntry,
}

/// The entries of a directory, as taken when it was opened.
pub(crate) enum Entries {
    /// Each entry with its attributes (an inquiry's few).
    Listed(Vec<Listed>),
    /// `inquiries/`: the listing itself, each entry built as it is answered (a million
    /// entries would cost a hundred MiB copied out).
    Inquiries(Arc<Listing>),
    /// `by-reference-id/` or `accounts/`: the keys of a listing, each built as answered.
    ViewKeys(ViewKeys),
}

impl Entries {
    pub(crate) fn len(&self) -> usize {
        match self {
            Entries::Listed(l) => l.len(),
            Entries::Inquiries(l) => l.ids().len(),
            Entries::ViewKeys(k) => k.len(),
        }
    }
}

pub(crate) struct Metadata {
    inodes: Mutex<InodeTable>,
    listing: Arc<Lister>,
    views: Arc<Views>,
    /// The views beside `inquiries/`.
    tree: ViewTree,
    owner: Ownership,
    mounted_at: SystemTime,
}

impl Metadata {
    pub(crate) fn new(
        api: Arc<dyn personafs_client::PersonaApi>,
        listing: Arc<Lister>,
        views: Arc<Views>,
        cfg: &CoreConfig,
        rt: tokio::runtime::Handle,
    ) -> Metadata {
        let mounted_at = SystemTime::now();
        Metadata {
            inodes: Mutex::new(InodeTable::default()),
            tree: ViewTree::new(api, listing.clone(), cfg, rt, mounted_at),
            listing,
            views,
            owner: Ownership::new(cfg),
            mounted_at,
        }
    }

    pub(crate) fn node(&self, ino: u64) -> FsResult<Node> {
        self.inodes
            .lock()
            .get(ino)
            .cloned()
            .ok_or_else(|| FsError::not_found(format_args!("inode {ino}")))
    }

    /// The inode of `node`, numbering it on first sight (no kernel reference counted).
    pub(crate) fn ino_of(&self, node: Node) -> u64 {
        self.inodes.lock().ino_of(node)
    }

    /// Count one kernel reference to `node` (an entry answered); its inode number.
    pub(crate) fn reference(&self, node: Node) -> u64 {
        self.inodes.lock().reference(node)
    }

    /// The kernel dropped `nlookup` references to `ino`; its node if that was the last.
    pub(crate) fn forget(&self, ino: u64, nlookup: u64) -> Option<Node> {
        let mut inodes = self.inodes.lock();
        let node = inodes.get(ino).cloned();
        if inodes.forget(ino, nlookup) {
            node
        } else {
            None
        }
    }

    /// The inode of the directory that lists `node`, if it has one.
    pub(crate) fn parent_ino(&self, node: &Node) -> Option<u64> {
        let parent = match node {
            Node::Root | Node::Inquiries => return None,
            Node::Inquiry(_) => return Some(INQUIRIES),
            Node::InquiryJson(id) | Node::Section(id, _) => Node::Inquiry(id.clone()),
            Node::File(id, section, _) => Node::Section(id.clone(), *section),
            Node::View(v) => Node::View(v.parent()?),
        };
        self.peek_ino(&parent)
    }

    /// The inode of `node` if it has one (never numbers it).
    pub(crate) fn peek_ino(&self, node: &Node) -> Option<u64> {
        self.inodes.lock().peek(node)
    }

    /// Whether `readdir(ino)` answers from memory without asking Persona anything: its
    /// sources (the listing, the inquiry's view) are fresh in memory.
    pub(crate) fn entries_at_hand(&self, ino: u64) -> bool {
        match self.node(ino) {
            Ok(Node::Root) => self.listing.current().is_some(),
            Ok(Node::Inquiries) => self.listing.fresh_now().is_some(),
            Ok(Node::Inquiry(id) | Node::Section(id, _)) => self.views.fresh_now(&id).is_some(),
            Ok(Node::View(v)) => self.tree.entries_at_hand(&v),
            _ => false,
        }
    }

    /// Call `hook` with each inquiry whose view may have changed (retrieved again, expired
    /// or redacted).
    pub(crate) fn on_view_change(&self, hook: impl Fn(&Arc<str>) + Send + Sync + 'static) {
        self.views.on_change(hook);
    }

    /// Call `hook` with each listing taken (and the one before it).
    pub(crate) fn on_listed(
        &self,
        hook: impl Fn(&Listing, Option<&Listing>) + Send + Sync + 'static,
    ) {
        self.listing.on_listed(hook);
    }

    /// Where deltas' reports go (the core applies them), and with whom deltas are shared.
    pub(crate) fn take_deltas(
        &self,
        sink: Arc<dyn DeltaSink>,
        shared: Option<Arc<dyn personafs_client::shared_state::SharedViews>>,
    ) {
        self.listing.set_delta_sink(sink);
        if let Some(shared) = shared {
            self.listing.share_deltas(shared);
        }
    }

    /// Persona announced a change: the listing is due again and the views' keys are asked
    /// again.
    pub(crate) fn announced(&self) {
        self.listing.expire();
        self.tree.forget_lookups();
    }

    /// `id` appeared or changed: its view is retrieved again on next use.
    pub(crate) fn expire_view(&self, id: &Arc<str>) {
        self.views.expire(id);
    }

    /// A delta reported `id` updated at `updated` (see `Views::reported`).
    pub(crate) fn reported(&self, id: &Arc<str>, updated: SystemTime) {
        self.views.reported(id, updated);
    }

    /// Whether a redaction of `id` was applied here.
    pub(crate) fn is_marked_redacted(&self, id: &str) -> bool {
        self.views.is_marked_redacted(id)
    }

    /// From now on, only a view showing the redaction of `id` is served.
    pub(crate) fn mark_redacted(&self, id: &Arc<str>) {
        self.views.mark_redacted(id);
    }

    /// Events were missed: nothing in memory is known good. A new listing, taken now.
    pub(crate) async fn list_again(&self) -> FsResult<Arc<Listing>> {
        self.listing.expire();
        self.views.expire_all();
        self.listing.refresh().await
    }

    /// The view of `id` for an open (see `Need::Open`).
    pub(crate) async fn view_for_open(&self, id: &Arc<str>) -> FsResult<Arc<InquiryView>> {
        self.views.view(id, Need::Open).await
    }

    /// The view of `id` if it is fresh in memory; never waits.
    pub(crate) fn fresh_view(&self, id: &Arc<str>) -> Option<Arc<InquiryView>> {
        self.views.fresh_now(id)
    }

    /// The inodes of the views' top directories that have one.
    pub(crate) fn view_top_inos(&self) -> Vec<u64> {
        (self.tree.tops())
            .filter_map(|(_, top)| self.peek_ino(&Node::View(top)))
            .collect()
    }

    /// The first listing page, fetched before mounting.
    pub(crate) fn seed_listing(&self, page: personafs_client::InquiryPage) {
        self.listing.seed(page);
    }

    pub(crate) fn delta_stats(&self) -> Option<Arc<DeltaStats>> {
        self.listing.delta_stats()
    }

    /// The listing under way, if one is.
    pub(crate) fn listing_progress(&self) -> Option<personafs_client::telemetry::ListingProgress> {
        self.listing.progress.now()
    }

    /// The cursor that cut the last listing short, if one did.
    pub(crate) fn listing_cut_at(&self) -> Option<String> {
        self.listing.progress.cut_at()
    }

    /// Views in memory now.
    pub(crate) fn view_count(&self) -> usize {
        self.views.len()
    }

    pub(crate) fn inode_count(&self) -> usize {
        self.inodes.lock().len()
    }

    /// The view for metadata, retrieved again when stale.
    async fn meta_view(&self, id: &Arc<str>) -> FsResult<Arc<InquiryView>> {
        self.views.view(id, Need::Metadata).await
    }

    /// `created-at` of an inquiry seen in the listing or a retrieve.
    fn created_of(&self, id: &Arc<str>) -> Option<SystemTime> {
        self.listing
            .current()
            .and_then(|l| l.rows.created(id))
            .or_else(|| self.views.created_now(id))
    }

    /// Whether the view of `id` at hand is of a final inquiry.
    fn is_final_now(&self, id: &Arc<str>) -> bool {
        self.views.fresh_now(id).is_some_and(|v| v.is_final())
    }

    async fn created(&self, id: &Arc<str>) -> FsResult<SystemTime> {
        match self.created_of(id) {
            Some(c) => Ok(c),
            None => Ok(self.meta_view(id).await?.created),
        }
    }

    /// Attributes of `node`, numbered `ino`.
    async fn attr_of(&self, node: &Node, ino: u64) -> FsResult<Attr> {
        match node {
            Node::Root => {
                Ok(self
                    .owner
                    .dir(ino, 1 + self.tree.tops().count() as u32, self.mounted_at))
            }
            Node::Inquiries => {
                // Only a link count: any listing will do, so `stat` never lists again.
                let n = match self.listing.current() {
                    Some(l) => l.ids().len(),
                    None => self.listing.get().await.map_or(0, |l| l.ids().len()),
                };
                Ok(self.owner.dir(ino, n as u32, self.mounted_at))
            }
            Node::Inquiry(id) => Ok(self
                .owner
                .dir(ino, 2, self.created(id).await?)
                .settled_if(self.is_final_now(id))),
            Node::InquiryJson(id) => {
                let view = self.meta_view(id).await?;
                Ok(self.owner.file(ino, view.json.len() as u64, view.created))
            }
            Node::Section(id, _) => Ok(self
                .owner
                .dir(ino, 0, self.created(id).await?)
                .settled_if(self.is_final_now(id))),
            Node::File(id, section, name) => {
                let view = self.meta_view(id).await?;
                let f = view.file(*section, name).ok_or_else(|| {
                    FsError::not_found(format_args!("{id}/{}/{name}", section.dir_name()))
                })?;
                Ok(self
                    .owner
                    .file(ino, f.size, f.mtime)
                    .settled_if(view.is_final()))
            }
            Node::View(v) => self.tree.attr(v, ino).await,
        }
    }

    pub(crate) async fn getattr(&self, ino: u64) -> FsResult<Attr> {
        let node = self.node(ino)?;
        self.attr_of(&node, ino).await
    }

    /// The entry `name` of directory `parent`. On success the kernel's reference to it is
    /// counted (the caller answers it).
    pub(crate) async fn lookup(&self, parent: u64, name: &str) -> FsResult<Attr> {
        let missing = || FsError::not_found(name);
        let node = match self.node(parent)? {
            Node::Root if name == "inquiries" => Node::Inquiries,
            Node::Root => Node::View(self.tree.top(name).ok_or_else(missing)?),
            Node::Inquiries if plausible_inquiry_id(name) => {
                let id: Arc<str> = Arc::from(name);
                if self.created_of(&id).is_none() {
                    // Not listed (yet): any id can be looked up directly, one retrieve.
                    self.meta_view(&id).await?;
                }
                Node::Inquiry(id)
            }
            Node::Inquiry(id) => match name {
                "inquiry.json" => Node::InquiryJson(id),
                "document" => Node::Section(id, Section::Document),
                "selfie" => Node::Section(id, Section::Selfie),
                _ => return Err(missing()),
            },
            Node::Section(id, section) => {
                let view = self.meta_view(&id).await?;
                let (name, _) = view
                    .section(section)
                    .find(|(n, _)| &***n == name)
                    .ok_or_else(missing)?;
                Node::File(id.clone(), section, name.clone())
            }
            Node::File(..) | Node::InquiryJson(_) => return Err(FsError::NotDir),
            Node::View(v) => Node::View(self.tree.lookup(&v, name).await?),
            _ => return Err(missing()),
        };
        let attr = self.attr_of(&node, 0).await?;
        Ok(Attr {
            ino: self.reference(node),
            ..attr
        })
    }

    /// Every entry of a directory, with attributes (for readdirplus), without `.`/`..`.
    /// Entries carry no inode number yet (0): numbering is the caller's, when it answers,
    /// so entries never answered leave nothing behind in the inode table.
    pub(crate) async fn readdir(&self, ino: u64) -> FsResult<Entries> {
        let entry = |node: Node, name: &Arc<str>, attr: Attr| Listed {
            node,
            entry: DirEntry {
                name: name.clone(),
                attr,
            },
        };
        match self.node(ino)? {
            Node::Root => {
                let mut listed = vec![entry(
                    Node::Inquiries,
                    &Arc::from("inquiries"),
                    self.attr_of(&Node::Inquiries, INQUIRIES).await?,
                )];
                for (name, top) in self.tree.tops() {
                    let node = Node::View(top);
                    let attr = self.attr_of(&node, 0).await?;
                    listed.push(entry(node, &Arc::from(name), attr));
                }
                Ok(Entries::Listed(listed))
            }
            Node::Inquiries => Ok(Entries::Inquiries(self.listing.get().await?)),
            Node::Inquiry(id) => {
                let view = self.meta_view(&id).await?;
                let size = view.json.len() as u64;
                Ok(Entries::Listed(vec![
                    entry(
                        Node::InquiryJson(id.clone()),
                        &Arc::from("inquiry.json"),
                        self.owner.file(0, size, view.created),
                    ),
                    entry(
                        Node::Section(id.clone(), Section::Document),
                        &Arc::from("document"),
                        self.owner
                            .dir(0, 0, view.created)
                            .settled_if(view.is_final()),
                    ),
                    entry(
                        Node::Section(id.clone(), Section::Selfie),
                        &Arc::from("selfie"),
                        self.owner
                            .dir(0, 0, view.created)
                            .settled_if(view.is_final()),
                    ),
                ]))
            }
            Node::Section(id, section) => {
                let view = self.meta_view(&id).await?;
                Ok(Entries::Listed(
                    view.section(section)
                        .map(|(name, f)| {
                            entry(
                                Node::File(id.clone(), section, name.clone()),
                                name,
                                self.owner
                                    .file(0, f.size, f.mtime)
                                    .settled_if(view.is_final()),
                            )
                        })
                        .collect(),
                ))
            }
            Node::File(..) | Node::InquiryJson(_) => Err(FsError::NotDir),
            Node::View(v) => self.tree.readdir(&v).await,
        }
    }

    /// Entry `j` of directory entries taken by `readdir`.
    pub(crate) fn entry(&self, entries: &Entries, j: usize) -> Option<Listed> {
        match entries {
            Entries::Listed(l) => l.get(j).cloned(),
            Entries::ViewKeys(keys) => self.tree.entry(keys, j),
            Entries::Inquiries(listing) => {
                let id = listing.ids().get(j)?;
                let created = listing
                    .rows
                    .created_at(j)
                    .or_else(|| self.views.created_now(id))
                    .unwrap_or(UNIX_EPOCH);
                Some(Listed {
                    node: Node::Inquiry(id.clone()),
                    entry: DirEntry {
                        name: id.clone(),
                        attr: self.owner.dir(0, 2, created),
                    },
                })
            }
        }
    }

    /// A fingerprint of entries as the kernel keeps them in its directory cache (names and
    /// inode numbers; for `inquiries/`, which listing it is); 0 when an entry is not numbered.
    pub(crate) fn entries_fingerprint(&self, entries: &Entries) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match entries {
            Entries::Inquiries(listing) => listing.identity().hash(&mut h),
            Entries::ViewKeys(keys) => keys.fingerprint().hash(&mut h),
            Entries::Listed(listed) => {
                let inodes = self.inodes.lock();
                for l in listed {
                    let Some(ino) = inodes.peek(&l.node) else {
                        return 0;
                    };
                    (&*l.entry.name, ino, l.entry.attr.kind as u8).hash(&mut h);
                }
            }
        }
        h.finish().max(1)
    }

    /// Where the view link `ino` points.
    pub(crate) fn link_target(&self, ino: u64) -> FsResult<String> {
        let not_link = || FsError::NotLink(ino);
        match self.node(ino)? {
            Node::View(v) => v.link_target().ok_or_else(not_link),
            _ => Err(not_link()),
        }
    }

    /// Attributes good enough for `.` and `..` entries (the kernel does not keep them).
    pub(crate) fn dir_attr_of(&self, ino: u64) -> Attr {
        self.owner.dir(ino, 0, self.mounted_at)
    }

    /// The parent of a directory, for `..`.
    pub(crate) fn parent_of(&self, ino: u64) -> u64 {
        match self.node(ino) {
            Ok(Node::Inquiry(_)) => INQUIRIES,
            Ok(Node::Section(id, _)) => self.ino_of(Node::Inquiry(id)),
            Ok(Node::View(v)) => v.parent().map_or(ROOT, |p| self.ino_of(Node::View(p))),
            _ => ROOT,
        }
    }
}
