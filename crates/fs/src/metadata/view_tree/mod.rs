//! The views beside `inquiries/`: `by-reference-id/<reference-id>/`, `accounts/<act_…>/`
//! and `by-day/<YYYY>/<MM>/<DD>/`, each entry a relative symlink into `inquiries/`, so a
//! path has one meaning and contents, cache and audit are shared.
//!
//! What a view lists comes from the listing of `inquiries/` (so the mount's filters and
//! whatever `inquiries/` shows hold for every view), grouped once per listing (`index`).
//! A key the listing does not have is asked of Persona once, with the list endpoint's own
//! filter and the mount's filters, and the answer — found or not — is believed for the
//! negative TTL. A key that cannot exist (a malformed account id, an impossible date, one
//! outside the mount's filters, a changed reference-id name) is ENOENT without a request.

mod index;
pub(crate) mod naming;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeDelta, Utc};
use lru::LruCache;
use parking_lot::Mutex;

pub(crate) use self::index::Keyed;
use self::index::{ViewIndex, day_of};
use self::naming::{
    Ymd, is_plain, parse_two, parse_year, plausible_account_id, two_name, year_name,
};
use super::attr::{Attr, DirEntry, Ownership};
use super::inode::Node;
use super::listing::{Lister, Listing, plausible_inquiry_id};
use super::negative::capacity_of;
use super::{Entries, Listed};
use crate::config::{CoreConfig, ViewSet};
use crate::error::{FsError, FsResult};
use personafs_client::query::{Bound, created_at_bound};
use personafs_client::{InquirySummary, ListFilters, PersonaApi};

/// One of the views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    ByReferenceId,
    Accounts,
    ByDay,
}

impl View {
    const ALL: [View; 3] = [View::ByReferenceId, View::Accounts, View::ByDay];

    pub(crate) fn dir_name(self) -> &'static str {
        match self {
            View::ByReferenceId => "by-reference-id",
            View::Accounts => "accounts",
            View::ByDay => "by-day",
        }
    }

    fn shown(self, set: &ViewSet) -> bool {
        match self {
            View::ByReferenceId => set.by_reference_id,
            View::Accounts => set.accounts,
            View::ByDay => set.by_day,
        }
    }
}

/// A directory of inquiry links: one reference id or account (by its name), or one day.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Group {
    Key(Keyed, Arc<str>),
    Day(Ymd),
}

impl Group {
    /// From the link to its inquiry's directory.
    fn up(&self) -> &'static str {
        match self {
            Group::Key(..) => "../../inquiries/",
            Group::Day(_) => "../../../../inquiries/",
        }
    }
}

/// A node of the views.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ViewNode {
    Top(View),
    Year(u16),
    Month(u16, u8),
    Group(Group),
    /// `Group/inq_…`, a symlink into `inquiries/`.
    Link(Group, Arc<str>),
}

impl ViewNode {
    /// The node of the directory that lists this one (`None`: the root).
    pub(crate) fn parent(&self) -> Option<ViewNode> {
        Some(match self {
            ViewNode::Top(_) => return None,
            ViewNode::Year(_) => ViewNode::Top(View::ByDay),
            ViewNode::Month(y, _) => ViewNode::Year(*y),
            ViewNode::Group(Group::Key(Keyed::Reference, _)) => ViewNode::Top(View::ByReferenceId),
            ViewNode::Group(Group::Key(Keyed::Account, _)) => ViewNode::Top(View::Accounts),
            ViewNode::Group(Group::Day(d)) => ViewNode::Month(d.year, d.month),
            ViewNode::Link(g, _) => ViewNode::Group(g.clone()),
        })
    }

    /// Where a link points, relative to its directory.
    pub(crate) fn link_target(&self) -> Option<String> {
        match self {
            ViewNode::Link(g, id) => Some(format!("{}{id}", g.up())),
            _ => None,
        }
    }
}

/// An inquiry found by asking Persona for a key.
#[derive(Debug, Clone)]
struct Found {
    id: Arc<str>,
    created: Option<SystemTime>,
}

/// What is asked of Persona for a key the listing does not have.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LookupKey {
    Key(Keyed, Arc<str>),
    Year(u16),
    Month(u16, u8),
    Day(Ymd),
}

struct Looked {
    until: Instant,
    found: Arc<[Found]>,
}

/// The inquiries of a group.
enum Members {
    Listed {
        listing: Arc<Listing>,
        index: Arc<ViewIndex>,
        group: Group,
    },
    Found(Arc<[Found]>),
}

impl Members {
    fn positions<'a>(listing: &Listing, index: &'a ViewIndex, group: &Group) -> &'a [u32] {
        match group {
            Group::Key(keyed, name) => index
                .key(&listing.rows, *keyed, name)
                .map(|g| index.key_members(g))
                .unwrap_or(&[]),
            Group::Day(d) => index.day(*d).unwrap_or(&[]),
        }
    }

    /// Each inquiry, newest first, with its `created-at`.
    fn each(&self) -> Vec<(Arc<str>, Option<SystemTime>)> {
        match self {
            Members::Listed {
                listing,
                index,
                group,
            } => Self::positions(listing, index, group)
                .iter()
                .map(|&p| {
                    let p = p as usize;
                    (listing.ids()[p].clone(), listing.rows.created_at(p))
                })
                .collect(),
            Members::Found(found) => found.iter().map(|f| (f.id.clone(), f.created)).collect(),
        }
    }

    /// `Some(created-at)` when `id` is one of them.
    fn find(&self, id: &str) -> Option<Option<SystemTime>> {
        match self {
            Members::Listed {
                listing,
                index,
                group,
            } => {
                let p = listing.rows.position(id)?;
                Self::positions(listing, index, group)
                    .binary_search(&(p as u32))
                    .ok()
                    .map(|_| listing.rows.created_at(p))
            }
            Members::Found(found) => found.iter().find(|f| &*f.id == id).map(|f| f.created),
        }
    }

    fn newest(&self) -> Option<SystemTime> {
        match self {
            Members::Listed {
                listing,
                index,
                group,
            } => Self::positions(listing, index, group)
                .first()
                .and_then(|&p| listing.rows.created_at(p as usize)),
            Members::Found(found) => found.iter().filter_map(|f| f.created).max(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Members::Listed {
                listing,
                index,
                group,
            } => Self::positions(listing, index, group).is_empty(),
            Members::Found(found) => found.is_empty(),
        }
    }
}

/// The keys of `by-reference-id/` or `accounts/`, each entry built as it is answered (a
/// million inquiries have hundreds of thousands of keys).
pub(crate) struct ViewKeys {
    listing: Arc<Listing>,
    index: Arc<ViewIndex>,
    keyed: Keyed,
}

impl ViewKeys {
    pub(crate) fn len(&self) -> usize {
        self.index.keys(self.keyed).len()
    }

    /// Which names these are, for the kernel's copy of them.
    pub(crate) fn fingerprint(&self) -> u64 {
        self.index.fingerprint(self.keyed) ^ self.keyed as u64
    }
}

/// Listing pages asked for one key at most (10,000 inquiries of one person or one day).
const MAX_LOOKUP_PAGES: usize = 100;
/// A listing this small is grouped on the FUSE thread itself; a bigger one on the runtime.
const GROUP_AT_ONCE: usize = 20_000;

pub(crate) struct ViewTree {
    shown: ViewSet,
    api: Arc<dyn PersonaApi>,
    lister: Arc<Lister>,
    filters: ListFilters,
    ttl: Duration,
    owner: Ownership,
    mounted_at: SystemTime,
    rt: tokio::runtime::Handle,
    /// The groups of the last listing asked about (dropped with it).
    index: Mutex<Option<(Weak<Listing>, Arc<ViewIndex>)>>,
    grouping: tokio::sync::Mutex<()>,
    /// Keys asked of Persona, found or not, until the negative TTL ends.
    looked: Mutex<LruCache<LookupKey, Looked>>,
    /// One key asked at a time: the same key asked twice at once costs one request.
    asking: tokio::sync::Mutex<()>,
    clock: personafs_client::clock::Clock,
}

impl ViewTree {
    pub(crate) fn new(
        api: Arc<dyn PersonaApi>,
        lister: Arc<Lister>,
        cfg: &CoreConfig,
        rt: tokio::runtime::Handle,
        mounted_at: SystemTime,
    ) -> ViewTree {
        ViewTree {
            shown: cfg.views,
            api,
            lister,
            filters: cfg.filters.clone(),
            ttl: cfg.negative_ttl,
            owner: Ownership::new(cfg),
            mounted_at,
            rt,
            index: Mutex::new(None),
            grouping: tokio::sync::Mutex::new(()),
            looked: Mutex::new(LruCache::new(capacity_of(cfg.max_views))),
            asking: tokio::sync::Mutex::new(()),
            clock: cfg.clock.clone(),
        }
    }

    /// The views shown, by name, in the mount's root.
    pub(crate) fn tops(&self) -> impl Iterator<Item = (&'static str, ViewNode)> + '_ {
        View::ALL
            .into_iter()
            .filter(|v| v.shown(&self.shown))
            .map(|v| (v.dir_name(), ViewNode::Top(v)))
    }

    pub(crate) fn top(&self, name: &str) -> Option<ViewNode> {
        self.tops().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Something changed at Persona (an event, a redaction): keys are asked again.
    pub(crate) fn forget_lookups(&self) {
        self.looked.lock().clear();
    }

    /// A directory that holds directories; its link count is left unknown (1), as btrfs
    /// does, so `find` never skips one.
    fn parent_dir(&self, ino: u64, mtime: SystemTime) -> Attr {
        Attr {
            nlink: 1,
            ..self.owner.dir(ino, 0, mtime)
        }
    }

    fn link(&self, ino: u64, group: &Group, id: &str, created: Option<SystemTime>) -> Attr {
        let size = (group.up().len() + id.len()) as u64;
        self.owner.link(ino, size, created.unwrap_or(UNIX_EPOCH))
    }

    pub(crate) async fn attr(&self, node: &ViewNode, ino: u64) -> FsResult<Attr> {
        Ok(match node {
            ViewNode::Top(_) => self.parent_dir(ino, self.mounted_at),
            ViewNode::Year(y) => self.parent_dir(ino, start_of(&LookupKey::Year(*y))),
            ViewNode::Month(y, m) => self.parent_dir(ino, start_of(&LookupKey::Month(*y, *m))),
            ViewNode::Group(g) => {
                let members = self.members(g, false).await?;
                if members.is_empty() {
                    return Err(missing());
                }
                let mtime = match g {
                    Group::Day(d) => start_of(&LookupKey::Day(*d)),
                    Group::Key(..) => members.newest().unwrap_or(UNIX_EPOCH),
                };
                self.owner.dir(ino, 0, mtime)
            }
            ViewNode::Link(g, id) => {
                let members = self.members(g, false).await?;
                let created = members.find(id).ok_or_else(missing)?;
                self.link(ino, g, id, created)
            }
        })
    }

    /// The entry `name` of view directory `parent`.
    pub(crate) async fn lookup(&self, parent: &ViewNode, name: &str) -> FsResult<ViewNode> {
        let node = match parent {
            ViewNode::Top(View::ByReferenceId) => {
                ViewNode::Group(Group::Key(Keyed::Reference, Arc::from(name)))
            }
            ViewNode::Top(View::Accounts) if plausible_account_id(name) => {
                ViewNode::Group(Group::Key(Keyed::Account, Arc::from(name)))
            }
            ViewNode::Top(View::ByDay) => {
                let y = parse_year(name).ok_or_else(missing)?;
                self.date_dir(LookupKey::Year(y)).await?;
                ViewNode::Year(y)
            }
            ViewNode::Year(y) => {
                let m = parse_two(name, 12).ok_or_else(missing)?;
                self.date_dir(LookupKey::Month(*y, m)).await?;
                ViewNode::Month(*y, m)
            }
            ViewNode::Month(y, m) => {
                let d = parse_two(name, 31).ok_or_else(missing)?;
                let day = Ymd {
                    year: *y,
                    month: *m,
                    day: d,
                };
                ViewNode::Group(Group::Day(day))
            }
            ViewNode::Group(g) if plausible_inquiry_id(name) => {
                ViewNode::Link(g.clone(), Arc::from(name))
            }
            ViewNode::Link(..) => return Err(FsError::NotDir),
            _ => return Err(missing()),
        };
        if let ViewNode::Group(g) = &node
            && self.members(g, false).await?.is_empty()
        {
            return Err(missing());
        }
        Ok(node)
    }

    /// A year or month directory exists when the listing or an answer of Persona has a
    /// day in it; else Persona is asked for one inquiry of it.
    async fn date_dir(&self, key: LookupKey) -> FsResult<()> {
        let within = |d: &Ymd| match key {
            LookupKey::Year(y) => d.year == y,
            LookupKey::Month(y, m) => d.year == y && d.month == m,
            _ => false,
        };
        if self.filters_for(&key).is_none() {
            return Err(missing());
        }
        if let Some(listing) = self.lister.current() {
            let index = self.index_of(&listing).await?;
            if index.days().any(|d| within(&d)) {
                return Ok(());
            }
        }
        if self.looked_days().iter().any(within) {
            return Ok(());
        }
        if self.ask(&key).await?.is_empty() {
            return Err(missing());
        }
        Ok(())
    }

    /// The entries of view directory `node`.
    pub(crate) async fn readdir(&self, node: &ViewNode) -> FsResult<Entries> {
        let dir = |name: Arc<str>, node: ViewNode, attr: Attr| Listed {
            node: Node::View(node),
            entry: DirEntry { name, attr },
        };
        match node {
            ViewNode::Top(View::ByReferenceId) | ViewNode::Top(View::Accounts) => {
                let keyed = match node {
                    ViewNode::Top(View::ByReferenceId) => Keyed::Reference,
                    _ => Keyed::Account,
                };
                let listing = self.fresh_listing().await?;
                let index = self.index_of(&listing).await?;
                Ok(Entries::ViewKeys(ViewKeys {
                    listing,
                    index,
                    keyed,
                }))
            }
            ViewNode::Top(View::ByDay) | ViewNode::Year(_) | ViewNode::Month(..) => {
                let mut days = self.looked_days();
                if let Some(listing) = self.listing_for_groups().await? {
                    days.extend(self.index_of(&listing).await?.days());
                }
                days.sort_unstable();
                days.dedup();
                let mut out: Vec<Listed> = Vec::new();
                for d in days {
                    let (name, child) = match *node {
                        ViewNode::Top(_) => (year_name(d.year), ViewNode::Year(d.year)),
                        ViewNode::Year(y) if d.year == y => {
                            (two_name(d.month), ViewNode::Month(y, d.month))
                        }
                        ViewNode::Month(y, m) if d.year == y && d.month == m => {
                            (two_name(d.day), ViewNode::Group(Group::Day(d)))
                        }
                        _ => continue,
                    };
                    if out.last().is_some_and(|l| l.entry.name == name) {
                        continue;
                    }
                    let attr = match &child {
                        ViewNode::Year(y) => self.parent_dir(0, start_of(&LookupKey::Year(*y))),
                        ViewNode::Month(y, m) => {
                            self.parent_dir(0, start_of(&LookupKey::Month(*y, *m)))
                        }
                        _ => self.owner.dir(0, 0, start_of(&LookupKey::Day(d))),
                    };
                    out.push(dir(name, child, attr));
                }
                Ok(Entries::Listed(out))
            }
            ViewNode::Group(g) => {
                let members = self.members(g, true).await?;
                Ok(Entries::Listed(
                    members
                        .each()
                        .into_iter()
                        .map(|(id, created)| Listed {
                            node: Node::View(ViewNode::Link(g.clone(), id.clone())),
                            entry: DirEntry {
                                attr: self.link(0, g, &id, created),
                                name: id,
                            },
                        })
                        .collect(),
                ))
            }
            ViewNode::Link(..) => Err(FsError::NotDir),
        }
    }

    /// Entry `j` of `by-reference-id/` or `accounts/`.
    pub(crate) fn entry(&self, keys: &ViewKeys, j: usize) -> Option<Listed> {
        let g = keys.index.keys(keys.keyed).get(j)?;
        let newest = keys
            .index
            .key_members(g)
            .first()
            .and_then(|&p| keys.listing.rows.created_at(p as usize));
        let name: Arc<str> = Arc::from(keys.index.name(&keys.listing.rows, g));
        Some(Listed {
            node: Node::View(ViewNode::Group(Group::Key(keys.keyed, name.clone()))),
            entry: DirEntry {
                name,
                attr: self.owner.dir(0, 0, newest.unwrap_or(UNIX_EPOCH)),
            },
        })
    }

    /// The listing, taken again when stale.
    async fn fresh_listing(&self) -> FsResult<Arc<Listing>> {
        self.lister.get().await
    }

    /// For a group's entries: the listing as `inquiries/` would show it now, when the
    /// mount has one (a mount that has listed nothing asks for the group alone).
    async fn listing_for_groups(&self) -> FsResult<Option<Arc<Listing>>> {
        if self.lister.current().is_none() {
            return Ok(None);
        }
        Ok(Some(self.fresh_listing().await?))
    }

    /// Whether `readdir(node)` answers from memory, asking Persona nothing: the listing is
    /// fresh and grouped, and a group's members are in it or were asked of Persona within
    /// the negative TTL.
    pub(crate) fn entries_at_hand(&self, node: &ViewNode) -> bool {
        let Some(listing) = self.lister.fresh_now() else {
            return false;
        };
        let Some(index) = self.cached_index(&listing) else {
            return false;
        };
        match node {
            ViewNode::Group(g) => {
                !Members::positions(&listing, &index, g).is_empty()
                    || match g {
                        Group::Key(keyed, name) => {
                            self.looked(&LookupKey::Key(*keyed, name.clone())).is_some()
                        }
                        Group::Day(d) => self.looked(&LookupKey::Day(*d)).is_some(),
                    }
            }
            _ => true,
        }
    }

    /// The groups of `listing`, if it is grouped already.
    fn cached_index(&self, listing: &Arc<Listing>) -> Option<Arc<ViewIndex>> {
        let held = self.index.lock();
        held.as_ref()
            .filter(|(l, _)| std::ptr::eq(l.as_ptr(), Arc::as_ptr(listing)))
            .map(|(_, i)| i.clone())
    }

    /// The groups of `listing`, grouping it on first use.
    async fn index_of(&self, listing: &Arc<Listing>) -> FsResult<Arc<ViewIndex>> {
        let cached = || self.cached_index(listing);
        if let Some(i) = cached() {
            return Ok(i);
        }
        // A big listing is grouped on a blocking thread, never on the caller's.
        let big = listing.rows.len() > GROUP_AT_ONCE;
        let _grouping = self.grouping.lock().await;
        if let Some(i) = cached() {
            return Ok(i);
        }
        let index = if big {
            let l = listing.clone();
            self.rt
                .spawn_blocking(move || ViewIndex::build(&l.rows))
                .await
                .map_err(FsError::task("grouping the listing"))?
        } else {
            ViewIndex::build(&listing.rows)
        };
        let index = Arc::new(index);
        *self.index.lock() = Some((Arc::downgrade(listing), index.clone()));
        Ok(index)
    }

    /// The inquiries of `group`: the listing's (for entries, a fresh listing), else those
    /// Persona answered for its key.
    async fn members(&self, group: &Group, for_entries: bool) -> FsResult<Members> {
        let listing = match for_entries {
            true => self.listing_for_groups().await?,
            false => self.lister.current(),
        };
        if let Some(listing) = listing {
            let index = self.index_of(&listing).await?;
            if !Members::positions(&listing, &index, group).is_empty() {
                return Ok(Members::Listed {
                    listing,
                    index,
                    group: group.clone(),
                });
            }
        }
        let key = match group {
            Group::Key(keyed, name) => {
                // A changed name cannot be turned back into its id: only the listing has it.
                if *keyed == Keyed::Reference && !is_plain(name) {
                    return Ok(Members::Found(Arc::from([])));
                }
                LookupKey::Key(*keyed, name.clone())
            }
            Group::Day(d) => LookupKey::Day(*d),
        };
        Ok(Members::Found(self.ask(&key).await?))
    }

    /// Days that answers of Persona have inquiries on.
    fn looked_days(&self) -> Vec<Ymd> {
        let now = self.clock.now();
        let looked = self.looked.lock();
        let mut days = Vec::new();
        for (key, l) in looked.iter().filter(|(_, l)| l.until > now) {
            match key {
                LookupKey::Day(d) if !l.found.is_empty() => days.push(*d),
                LookupKey::Year(_) | LookupKey::Month(..) => {
                    days.extend(l.found.iter().filter_map(|f| f.created.and_then(day_of)))
                }
                _ => {}
            }
        }
        days
    }

    fn looked(&self, key: &LookupKey) -> Option<Arc<[Found]>> {
        let mut looked = self.looked.lock();
        match looked.get(key) {
            Some(l) if self.clock.now() < l.until => Some(l.found.clone()),
            Some(_) => {
                looked.pop(key);
                None
            }
            None => None,
        }
    }

    /// What Persona has for `key`: asked once, then believed for the negative TTL.
    async fn ask(&self, key: &LookupKey) -> FsResult<Arc<[Found]>> {
        if let Some(found) = self.looked(key) {
            return Ok(found);
        }
        let Some(filters) = self.filters_for(key) else {
            return Ok(Arc::from([]));
        };
        let _asking = self.asking.lock().await;
        if let Some(found) = self.looked(key) {
            return Ok(found);
        }
        // A year or a month only needs to be shown to have one inquiry.
        let (page_size, pages) = match key {
            LookupKey::Year(_) | LookupKey::Month(..) => (1, 1),
            _ => (100, MAX_LOOKUP_PAGES),
        };
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..pages {
            let page = self
                .api
                .list_page(&filters, after.as_deref(), page_size)
                .await
                .map_err(FsError::from)?;
            found.extend(
                page.inquiries
                    .iter()
                    .filter(|s| plausible_inquiry_id(&s.id) && answers(key, s))
                    .map(|s| Found {
                        id: Arc::from(s.id.as_str()),
                        created: s.created_at.map(Into::into),
                    }),
            );
            match page.next_after {
                Some(next) if after.as_ref() != Some(&next) => after = Some(next),
                _ => break,
            }
        }
        let kind = match key {
            LookupKey::Key(Keyed::Reference, _) => "reference id",
            LookupKey::Key(Keyed::Account, _) => "account",
            _ => "date",
        };
        tracing::debug!(kind, found = found.len(), "a view's key asked of Persona");
        let found: Arc<[Found]> = Arc::from(found);
        self.looked.lock().put(
            key.clone(),
            Looked {
                until: self.clock.now() + self.ttl,
                found: found.clone(),
            },
        );
        Ok(found)
    }

    /// The mount's filters narrowed to `key`; `None` when nothing can match (the mount
    /// filters on another reference id or account, a date outside its window or to come).
    fn filters_for(&self, key: &LookupKey) -> Option<ListFilters> {
        let mut f = self.filters.clone();
        match key {
            LookupKey::Key(Keyed::Reference, r) => {
                if f.reference_id.as_deref().is_some_and(|m| m != &**r) {
                    return None;
                }
                f.reference_id = Some(r.to_string());
            }
            LookupKey::Key(Keyed::Account, a) => {
                if !plausible_account_id(a) || f.account_id.as_deref().is_some_and(|m| m != &**a) {
                    return None;
                }
                f.account_id = Some(a.to_string());
            }
            _ => {
                let (start, end) = window(key)?;
                let bound = |text: &Option<String>, b: Bound| {
                    let t = created_at_bound(text.as_deref()?, b).ok()?;
                    DateTime::parse_from_rfc3339(&t)
                        .ok()
                        .map(|t| t.with_timezone(&Utc))
                };
                let start = bound(&f.created_after, Bound::Start).map_or(start, |s| s.max(start));
                let end = bound(&f.created_before, Bound::End).map_or(end, |e| e.min(end));
                if start > end || start > self.clock.utc() {
                    return None;
                }
                let text = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
                f.created_after = Some(text(start));
                f.created_before = Some(text(end));
            }
        }
        Some(f)
    }
}

/// Whether an inquiry Persona listed for `key` has it (a server ignoring the filter
/// must not put strangers in a person's directory).
fn answers(key: &LookupKey, s: &InquirySummary) -> bool {
    match key {
        LookupKey::Key(Keyed::Reference, r) => s.reference_id.as_deref() == Some(&**r),
        LookupKey::Key(Keyed::Account, a) => s.account_id.as_deref() == Some(&**a),
        _ => match (window(key), s.created_at) {
            (Some((start, end)), Some(c)) => start <= c && c <= end,
            _ => false,
        },
    }
}

/// The first and last millisecond of a year, month or day (UTC); `None` for a date that
/// does not exist.
fn window(key: &LookupKey) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (first, next) = match *key {
        LookupKey::Year(y) => {
            let y = i32::from(y);
            (
                NaiveDate::from_ymd_opt(y, 1, 1)?,
                NaiveDate::from_ymd_opt(y + 1, 1, 1)?,
            )
        }
        LookupKey::Month(y, m) => {
            let first = NaiveDate::from_ymd_opt(y.into(), m.into(), 1)?;
            (first, first.checked_add_months(chrono::Months::new(1))?)
        }
        LookupKey::Day(d) => {
            let first = d.date()?;
            (first, first.succ_opt()?)
        }
        LookupKey::Key(..) => return None,
    };
    let at = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    Some((at(first)?, at(next)? - TimeDelta::milliseconds(1)))
}

/// When a year, month or day begins: its directory's time, the same on every mount.
fn start_of(key: &LookupKey) -> SystemTime {
    window(key).map_or(UNIX_EPOCH, |(start, _)| start.into())
}

/// ENOENT naming no key: a reference id may be a person's email or number, and errors
/// are logged.
fn missing() -> FsError {
    FsError::not_found("no such entry in a view")
}
