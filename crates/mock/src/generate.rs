//! Deterministic synthetic inquiries with the variety of a real organisation (`--generate N`).
//!
//! The same `(count, seed)` always gives the same dataset: ids, JSON and bytes. Only JSON is
//! built here; file bodies are `content.rs` objects that compute their bytes when read.
//!
//! Shapes follow Persona's 2023-01-05 schemas (`inquiry`, `document-government-id`,
//! `document-generic`, `selfie`, `verification-government-id`, `verification-selfie`,
//! `verification-document`). Choices made where Persona is silent:
//! - created-at is spread over the 182 days before [`epoch`] (2026-06-01T00:00:00Z), whole
//!   seconds; every other timestamp follows it by seconds to days, never after the epoch
//!   except an inquiry's `expires-at`.
//! - A verification points at the same files (same placeholder keys) as its document.
//! - A redacted inquiry keeps its objects, with PII and file attributes `null` (file arrays,
//!   which the spec types as arrays, become `[]`) and no entries in `Dataset::files`.
//! - A selfie object (`selfie/*`) carries no URLs, as in the spec; the photos are on the
//!   `verification/selfie`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::content::{
    JpegContent, Mp4Content, NoiseContent, PdfContent, Rng, content_type_for, mix64, sized_file,
};
use crate::data::{Content, Dataset, FILE_URL_PLACEHOLDER, MockFile, MockInquiry};
use crate::ids::{BASE58, IdCodec, Minter, Space};

/// The fixed "now" of generated data (2026-06-01T00:00:00Z), so no output depends on the clock.
pub fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_272_000, 0).unwrap_or_default()
}

/// How far back created-at goes.
const SPREAD_DAYS: i64 = 182;

/// Every inquiry status Persona documents.
pub const STATUSES: [&str; 8] = [
    "created",
    "pending",
    "completed",
    "expired",
    "failed",
    "needs_review",
    "approved",
    "declined",
];

/// One inquiry in this many has a hostile reference id.
const HOSTILE_EVERY: u64 = 40;

/// Reference ids a customer's system could send that are not safe file names as they are.
const HOSTILE_REFERENCES: [&str; 10] = [
    "../../etc/passwd",
    "a/b",
    "..",
    ".",
    "tab\there",
    "line\nbreak",
    "nul\0byte",
    "50% off 🙂 café",
    "user-000001~0123456789ab",
    "LONG",
];

/// Hostile reference id `pick`; `LONG` stands for one of 300 bytes.
fn hostile_reference(pick: usize) -> String {
    match HOSTILE_REFERENCES[pick] {
        "LONG" => format!("long-{}", "x".repeat(295)),
        s => s.to_string(),
    }
}

/// Which objects and files an inquiry has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Nothing uploaded.
    NoFiles,
    /// Driver licence: front, back and portrait, then a three-photo selfie.
    DriverLicense,
    /// Passport (no back), then a selfie, sometimes with video.
    Passport,
    /// Two or three government-id documents: the earlier attempts failed.
    IdRetries,
    /// A generic document with several PDFs, two of them with the same name.
    ProofOfAddress,
    /// Driver licence and selfie, then a proof of address.
    IdAndAddress,
    /// A selfie only (sometimes center-only).
    SelfieOnly,
    /// An old-style inquiry: a government-id verification with files but no document object.
    VerificationOnly,
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    shape: Shape,
    status: &'static str,
    redacted: bool,
}

impl Plan {
    const fn new(shape: Shape, status: &'static str, redacted: bool) -> Plan {
        Plan {
            shape,
            status,
            redacted,
        }
    }
}

/// Plans every dataset of this size or more contains, so each variety is always present.
const REQUIRED: [Plan; 14] = [
    Plan::new(Shape::NoFiles, "created", false),
    Plan::new(Shape::NoFiles, "expired", false),
    Plan::new(Shape::DriverLicense, "approved", false),
    Plan::new(Shape::Passport, "completed", false),
    Plan::new(Shape::Passport, "pending", false),
    Plan::new(Shape::IdRetries, "declined", false),
    Plan::new(Shape::ProofOfAddress, "needs_review", false),
    Plan::new(Shape::IdAndAddress, "approved", false),
    Plan::new(Shape::SelfieOnly, "pending", false),
    Plan::new(Shape::DriverLicense, "failed", false),
    Plan::new(Shape::VerificationOnly, "completed", false),
    Plan::new(Shape::DriverLicense, "expired", false),
    Plan::new(Shape::DriverLicense, "approved", true),
    Plan::new(Shape::ProofOfAddress, "declined", true),
];

/// One generated inquiry and the files its JSON points to.
#[derive(Clone)]
pub struct Generated {
    pub inquiry: MockInquiry,
    /// Placeholder key → file.
    pub files: HashMap<String, MockFile>,
}

/// What the list filters look at, computed without building the inquiry.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub status: &'static str,
    pub redacted: bool,
    /// Index of the account (see [`Generator::account_id`]), if any.
    pub account: Option<u64>,
    pub reference_id: Option<String>,
    pub template_id: String,
}

/// `count` inquiries derived from `seed`, each computed from its index when asked, so a
/// million of them cost no memory until served. Index 0 is the newest.
#[derive(Debug, Clone)]
pub struct Generator {
    count: u64,
    seed: u64,
    codec: IdCodec,
    org: Org,
}

impl Generator {
    pub fn new(count: u64, seed: u64) -> Generator {
        let codec = IdCodec::new(seed);
        let org = Org::new(&codec, count);
        Generator {
            count,
            seed,
            codec,
            org,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn codec(&self) -> &IdCodec {
        &self.codec
    }

    /// `created-at` of inquiry `index`: spread over [`SPREAD_DAYS`] before the epoch, never
    /// newer than a smaller index (so index order is newest-first order).
    pub fn created_at(&self, index: u64) -> DateTime<Utc> {
        let spread = (SPREAD_DAYS * 86_400 - 3_600) as u128;
        let jitter = u128::from(mix64(self.seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407)) >> 44);
        let scaled =
            ((u128::from(index) << 20) + jitter) * spread / (u128::from(self.count.max(1)) << 20);
        epoch() - Duration::seconds(3_600 + scaled as i64)
    }

    /// The number of indices whose `created-at` is after `t` (they come first).
    pub fn newer_than(&self, t: DateTime<Utc>) -> u64 {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.created_at(mid) > t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    pub fn inquiry_id(&self, index: u64) -> String {
        self.codec.mint("inq_", Space::Generated, index, 0)
    }

    /// The index of a generated inquiry id, or of the inquiry a generated object belongs to.
    pub fn index_of(&self, id: &str) -> Option<u64> {
        let decoded = self.codec.decode(id)?;
        (decoded.space == Space::Generated && decoded.index < self.count).then_some(decoded.index)
    }

    pub fn account_id(&self, account: u64) -> String {
        self.codec.mint("act_", Space::Org, account, 0)
    }

    /// Independent draws for the plan, the summary and the body of inquiry `index`.
    fn rngs(&self, index: u64) -> (Rng, Rng, Rng) {
        let mut base = Rng::new(self.seed ^ mix64(index ^ 0x1D_5EED));
        (base.fork(), base.fork(), base.fork())
    }

    fn plan(&self, index: u64, rng: &mut Rng) -> Plan {
        let required = REQUIRED.len() as u64;
        if self.count <= required {
            // Every required plan that fits, in a seeded order: the order earlier versions
            // gave, so small datasets that tests know by seed keep their inquiries.
            let mut rng = Rng::new(self.seed);
            let _builder = rng.fork();
            let mut plans = REQUIRED[..self.count as usize].to_vec();
            shuffle(&mut plans, &mut rng.fork());
            return plans[index as usize];
        }
        // One required plan at a seeded place in each of the first REQUIRED buckets.
        let bucket = self.count / required;
        let k = index / bucket;
        if k < required && index == k * bucket + mix64(self.seed ^ k) % bucket {
            return REQUIRED[k as usize];
        }
        random_plan(rng)
    }

    pub fn summary(&self, index: u64) -> Summary {
        let (mut plan_rng, mut summary_rng, _) = self.rngs(index);
        let plan = self.plan(index, &mut plan_rng);
        self.summarize(plan, &mut summary_rng, index)
    }

    /// Reference ids the way customers set them: one per person, so an account's
    /// inquiries share it (about three each); a fifth have none; and one inquiry in
    /// `HOSTILE_EVERY` carries a hostile one (`HOSTILE_REFERENCES`).
    fn summarize(&self, plan: Plan, rng: &mut Rng, index: u64) -> Summary {
        let account = rng.chance(0.9).then(|| rng.below(self.org.accounts));
        let with_reference = rng.chance(0.8);
        let guest = rng.below(self.org.accounts);
        let reference_id = if index % HOSTILE_EVERY == HOSTILE_EVERY / 3 {
            let pick = (index / HOSTILE_EVERY) as usize % HOSTILE_REFERENCES.len();
            Some(hostile_reference(pick))
        } else if with_reference {
            Some(match account {
                Some(a) => format!("user-{:06}", a + 1),
                None => format!("guest-{:06}", guest + 1),
            })
        } else {
            None
        };
        Summary {
            status: plan.status,
            redacted: plan.redacted,
            account,
            reference_id,
            template_id: self.org.template_for(plan.shape).id().to_string(),
        }
    }

    /// Inquiry `index` (`< count`) with its files.
    pub fn inquiry(&self, index: u64) -> Generated {
        let (mut plan_rng, mut summary_rng, rng) = self.rngs(index);
        let plan = self.plan(index, &mut plan_rng);
        let summary = self.summarize(plan, &mut summary_rng, index);
        let minter = Minter::new(self.codec.clone(), Space::Generated, index);
        let mut builder = Builder::new(rng, minter, self);
        let inquiry = builder.inquiry(plan, &summary, self.created_at(index));
        Generated {
            inquiry,
            files: builder.files,
        }
    }

    /// A new inquiry made while the server runs (`POST /_mock/inquiries`), number `n` of
    /// those, created at `created_at`.
    pub fn added(
        &self,
        n: u64,
        status: &'static str,
        with_files: bool,
        created_at: DateTime<Utc>,
    ) -> Generated {
        let mut rng = Rng::new(self.seed ^ mix64(n ^ 0x000A_DDED));
        let shape = if with_files {
            Shape::DriverLicense
        } else {
            Shape::NoFiles
        };
        let plan = Plan::new(shape, status, false);
        let summary = self.summarize(plan, &mut rng.fork(), 0);
        let minter = Minter::new(self.codec.clone(), Space::Added, n);
        let mut builder = Builder::new(rng, minter, self);
        let inquiry = builder.inquiry(plan, &summary, created_at);
        Generated {
            inquiry,
            files: builder.files,
        }
    }

    /// A new processed generic document for inquiry `inquiry_id`, holding one file of `size`
    /// bytes named `filename`: (document object, its files). Ids come from change `n`.
    pub fn added_document(
        &self,
        n: u64,
        inquiry_id: &str,
        filename: &str,
        size: u64,
        created_at: DateTime<Utc>,
    ) -> (Value, HashMap<String, MockFile>) {
        let mut minter = Minter::new(self.codec.clone(), Space::Added, n);
        let doc_id = minter.mint("doc_");
        let key = format!("{doc_id}-files-0");
        let file = sized_file(filename, size, self.seed ^ mix64(n));
        let object = json!({
            "type": "document/generic",
            "id": doc_id,
            "attributes": {
                "status": "processed",
                "created-at": ts(created_at),
                "processed-at": ts(created_at),
                "processed-at-ts": created_at.timestamp(),
                "kind": "document",
                "files": [{
                    "filename": filename,
                    "url": format!("{FILE_URL_PLACEHOLDER}{key}"),
                    "byte-size": size,
                }],
                "files-normalized": [],
                "extraction-responses": [],
                "document-type": "other",
                "fields": {},
            },
            "relationships": {
                "inquiry": rel("inquiry", inquiry_id),
                "document-files": {"data": []},
            },
        });
        (object, HashMap::from([(key, file)]))
    }
}

/// Generate `count` inquiries from `seed`, newest first, all in memory (the server derives
/// them one at a time instead; both give the same inquiries).
pub fn generate(count: usize, seed: u64) -> Dataset {
    let generator = Generator::new(count as u64, seed);
    let mut dataset = Dataset::default();
    for index in 0..count as u64 {
        let generated = generator.inquiry(index);
        dataset.inquiries.push(generated.inquiry);
        dataset.files.extend(generated.files);
    }
    dataset
}

/// Add one inquiry, newer than every other, with one generic document holding a single PDF of
/// exactly `size` bytes (200 MB and more cost no memory). Returns the inquiry id.
pub fn add_large_document(dataset: &mut Dataset, size: u64, seed: u64) -> String {
    add_large_document_after(dataset, size, seed, None)
}

/// As [`add_large_document`], newer than `newest` too (the newest generated inquiry, which is
/// not in `dataset`).
pub fn add_large_document_after(
    dataset: &mut Dataset,
    size: u64,
    seed: u64,
    newest: Option<DateTime<Utc>>,
) -> String {
    let generator = Generator::new(0, seed ^ 0x1A59_E000);
    let created_at = dataset
        .inquiries
        .iter()
        .map(|i| i.created_at)
        .chain(newest)
        .max()
        .map_or(epoch() - Duration::hours(1), |t| t + Duration::minutes(1));
    // An index whose id no inquiry has yet (fixtures may use any ids).
    let mut n = dataset.inquiries.len() as u64;
    let taken = |id: &str| dataset.inquiries.iter().any(|i| i.id == id);
    while taken(&generator.codec.mint("inq_", Space::Large, n, 0)) {
        n += 1;
    }
    let plan = Plan::new(Shape::ProofOfAddress, "completed", false);
    let mut rng = Rng::new(seed ^ 0x1A59_E000 ^ mix64(n));
    let summary = generator.summarize(plan, &mut rng.fork(), 0);
    let minter = Minter::new(generator.codec.clone(), Space::Large, n);
    let mut builder = Builder::new(rng, minter, &generator);
    let mut inquiry = builder.inquiry(plan, &summary, created_at);
    // Replace the generated generic document's files with the one large file.
    let key = format!("{}-large", inquiry.id);
    let file = sized_file("large_statement.pdf", size, seed);
    let file_object = json!({
        "filename": file.filename,
        "url": format!("{FILE_URL_PLACEHOLDER}{key}"),
        "byte-size": size,
    });
    for object in &mut inquiry.included {
        let attrs = &mut object["attributes"];
        for list in ["files", "files-normalized"] {
            if let Some(files) = attrs.get_mut(list).and_then(Value::as_array_mut) {
                files.clear();
                if list == "files" {
                    files.push(file_object.clone());
                }
            }
        }
    }
    // The small files generated for that inquiry are dropped with `builder`.
    dataset.files.insert(key, file);
    let id = inquiry.id.clone();
    dataset.inquiries.insert(0, inquiry);
    id
}

fn random_plan(rng: &mut Rng) -> Plan {
    const SHAPES: [(Shape, u64); 8] = [
        (Shape::DriverLicense, 30),
        (Shape::Passport, 15),
        (Shape::IdRetries, 10),
        (Shape::ProofOfAddress, 10),
        (Shape::IdAndAddress, 8),
        (Shape::NoFiles, 15),
        (Shape::SelfieOnly, 6),
        (Shape::VerificationOnly, 3),
    ];
    const WITH_FILES: [(&str, u64); 7] = [
        ("approved", 40),
        ("completed", 15),
        ("declined", 10),
        ("needs_review", 10),
        ("failed", 8),
        ("pending", 10),
        ("expired", 7),
    ];
    const WITHOUT_FILES: [(&str, u64); 3] = [("created", 40), ("expired", 40), ("pending", 20)];
    let shape = weighted(rng, &SHAPES);
    let status = if shape == Shape::NoFiles {
        weighted(rng, &WITHOUT_FILES)
    } else {
        weighted(rng, &WITH_FILES)
    };
    let finished = matches!(status, "approved" | "declined" | "completed" | "failed");
    let redacted = finished && shape != Shape::NoFiles && rng.chance(0.03);
    Plan::new(shape, status, redacted)
}

fn weighted<T: Copy>(rng: &mut Rng, items: &[(T, u64)]) -> T {
    let total: u64 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.below(total);
    for (item, weight) in items {
        if roll < *weight {
            return *item;
        }
        roll -= weight;
    }
    items[items.len() - 1].0
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// ISO-8601 with milliseconds and `Z`, as Persona writes it.
fn ts(t: DateTime<Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn ts_opt(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, ts)
}

fn unix_opt(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(t.timestamp()))
}

/// A to-one relationship.
fn rel(kind: &str, id: &str) -> Value {
    json!({"data": {"type": kind, "id": id}})
}

fn rel_none() -> Value {
    json!({"data": null})
}

/// A to-many relationship from `(type, id)` pairs.
fn rel_list(items: &[(String, String)]) -> Value {
    let data: Vec<Value> = items
        .iter()
        .map(|(kind, id)| json!({"type": kind, "id": id}))
        .collect();
    json!({ "data": data })
}

/// Merge the keys of `extra` (an object) into `target` (an object).
fn merge(target: &mut Value, extra: Value) {
    if let (Value::Object(t), Value::Object(e)) = (target, extra) {
        t.extend(e);
    }
}

/// The inquiry template an inquiry runs: Dynamic Flow (`itmpl_` + version) or Legacy 2.0.
#[derive(Debug, Clone)]
enum TemplateRef {
    Dynamic { id: String, version: String },
    Legacy(String),
}

/// Ids shared by the whole organisation.
#[derive(Debug, Clone)]
struct Org {
    /// Number of accounts; their ids come from [`Generator::account_id`].
    accounts: u64,
    kyc: TemplateRef,
    address: TemplateRef,
    kyc_and_address: TemplateRef,
    legacy: TemplateRef,
    /// (verification template, version) for government id, selfie, document.
    vt_government_id: (String, String),
    vt_selfie: (String, String),
    vt_document: (String, String),
}

impl Org {
    fn new(codec: &IdCodec, count: u64) -> Org {
        let mut minter = Minter::new(codec.clone(), Space::Org, 0);
        let mut id = |prefix: &str| minter.mint(prefix);
        let mut dynamic = || TemplateRef::Dynamic {
            id: id("itmpl_"),
            version: id("itmplv_"),
        };
        let (kyc, address, kyc_and_address) = (dynamic(), dynamic(), dynamic());
        let legacy = TemplateRef::Legacy(id("tmpl_"));
        Org {
            // About three inquiries per account, so account filters select several.
            accounts: count / 3 + 1,
            kyc,
            address,
            kyc_and_address,
            legacy,
            vt_government_id: (id("vtmpl_"), id("vtmplv_")),
            vt_selfie: (id("vtmpl_"), id("vtmplv_")),
            vt_document: (id("vtmpl_"), id("vtmplv_")),
        }
    }

    fn template_for(&self, shape: Shape) -> &TemplateRef {
        match shape {
            Shape::ProofOfAddress => &self.address,
            Shape::IdAndAddress => &self.kyc_and_address,
            Shape::VerificationOnly => &self.legacy,
            _ => &self.kyc,
        }
    }
}

impl TemplateRef {
    fn id(&self) -> &str {
        match self {
            TemplateRef::Dynamic { id, .. } | TemplateRef::Legacy(id) => id,
        }
    }
}

struct Person {
    first: &'static str,
    middle: Option<&'static str>,
    last: &'static str,
    birthdate: String,
    street: String,
    city: &'static str,
    subdivision: &'static str,
    subdivision_abbr: &'static str,
    postal_code: String,
    email: String,
    phone: Option<String>,
    id_number: String,
}

const FIRST_NAMES: [&str; 16] = [
    "Jane", "John", "Amara", "Wei", "Lucía", "Mohammed", "Olga", "Kenji", "Priya", "Tomás",
    "Chloé", "Ade", "Sven", "Fatima", "Noah", "Hana",
];
const MIDDLE_NAMES: [&str; 6] = ["Marie", "James", "Lee", "Ann", "Ray", "Jo"];
const LAST_NAMES: [&str; 16] = [
    "Doe", "Smith", "Okafor", "Chen", "García", "Haddad", "Ivanova", "Sato", "Patel", "Silva",
    "Dubois", "Bello", "Larsen", "Khan", "Miller", "Kim",
];
const CITIES: [(&str, &str, &str, &str); 6] = [
    ("San Francisco", "California", "CA", "941"),
    ("Austin", "Texas", "TX", "787"),
    ("Brooklyn", "New York", "NY", "112"),
    ("Seattle", "Washington", "WA", "981"),
    ("Miami", "Florida", "FL", "331"),
    ("Denver", "Colorado", "CO", "802"),
];
const STREETS: [&str; 6] = [
    "Main St",
    "Oak Ave",
    "Market St",
    "Pine St",
    "2nd Ave",
    "Elm Rd",
];

impl Person {
    fn random(rng: &mut Rng) -> Person {
        let first = *rng.pick(&FIRST_NAMES);
        let last = *rng.pick(&LAST_NAMES);
        let (city, subdivision, subdivision_abbr, zip) = *rng.pick(&CITIES);
        Person {
            first,
            middle: rng.chance(0.4).then(|| *rng.pick(&MIDDLE_NAMES)),
            last,
            birthdate: format!(
                "{}-{:02}-{:02}",
                rng.range(1950, 2005),
                rng.range(1, 12),
                rng.range(1, 28)
            ),
            street: format!("{} {}", rng.range(1, 9999), rng.pick(&STREETS)),
            city,
            subdivision,
            subdivision_abbr,
            postal_code: format!("{zip}{:02}", rng.range(1, 99)),
            email: format!(
                "{}.{}{}@example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                rng.range(1, 99)
            ),
            phone: rng
                .chance(0.7)
                .then(|| format!("+1-555-{:03}-{:04}", rng.range(100, 999), rng.below(10_000))),
            id_number: format!(
                "{}{}",
                (b'A' + rng.below(26) as u8) as char,
                rng.range(1_000_000, 9_999_999)
            ),
        }
    }
}

/// Everything an object of one inquiry needs to know about it.
struct InquiryCtx {
    id: String,
    template: TemplateRef,
    redacted: bool,
}

impl InquiryCtx {
    /// Relationships every document and verification carries.
    fn child_relationships(&self) -> Value {
        let (template, itmpl, itmplv) = match &self.template {
            TemplateRef::Dynamic { id, version } => (
                rel_none(),
                rel("inquiry-template", id),
                rel("inquiry-template-version", version),
            ),
            TemplateRef::Legacy(id) => (rel("template", id), rel_none(), rel_none()),
        };
        json!({
            "inquiry": rel("inquiry", &self.id),
            "template": template,
            "inquiry-template-version": itmplv,
            "inquiry-template": itmpl,
        })
    }
}

/// A file slot being created: the file object JSON (or `null` when redacted).
struct FileSlot {
    object: Value,
}

impl FileSlot {
    fn url(&self) -> Value {
        self.object.get("url").cloned().unwrap_or(Value::Null)
    }
    fn is_some(&self) -> bool {
        !self.object.is_null()
    }
}

#[derive(Clone, Copy)]
enum FileKind {
    Photo,
    Portrait,
    Pdf,
    Video,
}

struct Builder<'g> {
    rng: Rng,
    ids: Minter,
    files: HashMap<String, MockFile>,
    generator: &'g Generator,
}

impl<'g> Builder<'g> {
    fn new(rng: Rng, ids: Minter, generator: &'g Generator) -> Builder<'g> {
        Builder {
            rng,
            ids,
            files: HashMap::new(),
            generator,
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        self.ids.mint(prefix)
    }

    /// Register one file and return its file object, or a null slot when redacted.
    fn file(&mut self, ctx: &InquiryCtx, key: String, filename: &str, kind: FileKind) -> FileSlot {
        if ctx.redacted {
            return FileSlot {
                object: Value::Null,
            };
        }
        let seed = self.rng.next_u64();
        let (lo, hi) = match kind {
            FileKind::Photo => (100_000, 2_000_000),
            FileKind::Portrait => (100_000, 400_000),
            FileKind::Pdf => (20_000, 500_000),
            FileKind::Video => (1_000_000, 5_000_000),
        };
        // Skewed towards the small end, like real uploads.
        let u = self.rng.below(1 << 20) as f64 / f64::from(1 << 20);
        let size = lo + ((hi - lo) as f64 * u * u) as u64;
        let content: Option<Arc<dyn Content>> = match kind {
            FileKind::Photo | FileKind::Portrait => {
                JpegContent::new(size, seed).map(|c| Arc::new(c) as _)
            }
            FileKind::Pdf => PdfContent::new(size, seed, filename).map(|c| Arc::new(c) as _),
            FileKind::Video => Mp4Content::new(size, seed).map(|c| Arc::new(c) as _),
        };
        let content = content.unwrap_or_else(|| Arc::new(NoiseContent::new(size, seed)) as _);
        let object = json!({
            "filename": filename,
            "url": format!("{FILE_URL_PLACEHOLDER}{key}"),
            "byte-size": content.len(),
        });
        self.files.insert(
            key,
            MockFile {
                filename: filename.to_string(),
                content_type: content_type_for(filename).to_string(),
                content,
            },
        );
        FileSlot { object }
    }

    fn inquiry(&mut self, plan: Plan, summary: &Summary, created_at: DateTime<Utc>) -> MockInquiry {
        let id = self.id("inq_");
        let template = self.generator.org.template_for(plan.shape).clone();
        let ctx = InquiryCtx {
            id,
            template,
            redacted: plan.redacted,
        };
        let person = Person::random(&mut self.rng);
        let mut story = Story {
            ctx: &ctx,
            person: (!plan.redacted).then_some(&person),
            status: plan.status,
            clock: created_at,
            objects: Vec::new(),
            documents: Vec::new(),
            selfies: Vec::new(),
            verifications: Vec::new(),
        };
        let started = plan.status != "created";
        if started {
            story.clock += Duration::seconds(self.rng.range(5, 600) as i64);
        }
        let started_at = started.then_some(story.clock);
        self.build_objects(&mut story, plan);
        let last_activity = story.clock;
        let objects = std::mem::take(&mut story.objects);
        let (documents, selfies, verifications) = (
            std::mem::take(&mut story.documents),
            std::mem::take(&mut story.selfies),
            std::mem::take(&mut story.verifications),
        );
        let data = self.inquiry_data(
            &ctx,
            plan,
            summary,
            &person,
            created_at,
            started_at,
            last_activity,
            [documents, selfies, verifications],
        );
        MockInquiry {
            id: ctx.id.clone(),
            created_at,
            data,
            included: objects,
        }
    }

    /// The documents, selfies and verifications of one inquiry, in the order they happened.
    fn build_objects(&mut self, story: &mut Story, plan: Plan) {
        let unfinished = matches!(plan.status, "pending" | "expired");
        match plan.shape {
            Shape::NoFiles => {}
            Shape::DriverLicense | Shape::Passport => {
                let passport = plan.shape == Shape::Passport;
                let outcome = if plan.status == "failed" {
                    "failed"
                } else {
                    "passed"
                };
                self.government_id(story, passport, outcome, !unfinished, true);
                if plan.status != "expired" {
                    self.selfie(story, !unfinished, passport, false);
                }
            }
            Shape::IdRetries => {
                let attempts = self.rng.range(2, 3);
                for attempt in 1..=attempts {
                    let last = attempt == attempts;
                    let outcome = if !last || plan.status == "declined" {
                        "failed"
                    } else {
                        "passed"
                    };
                    let passport = self.rng.chance(0.3);
                    self.government_id(story, passport, outcome, !unfinished || !last, true);
                }
                if !unfinished {
                    self.selfie(story, true, false, false);
                }
            }
            Shape::ProofOfAddress => {
                self.generic_document(story, !unfinished, plan.status);
            }
            Shape::IdAndAddress => {
                self.government_id(story, false, "passed", true, true);
                let video = self.rng.chance(0.3);
                self.selfie(story, true, video, false);
                self.generic_document(story, !unfinished, plan.status);
            }
            Shape::SelfieOnly => {
                let center_only = self.rng.chance(0.5);
                self.selfie(story, !unfinished, false, center_only);
            }
            Shape::VerificationOnly => {
                let outcome = if plan.status == "failed" {
                    "failed"
                } else {
                    "passed"
                };
                self.government_id(story, false, outcome, !unfinished, false);
            }
        }
    }

    /// A government-id document (unless `with_document` is false) and its verification.
    fn government_id(
        &mut self,
        story: &mut Story,
        passport: bool,
        outcome: &str,
        processed: bool,
        with_document: bool,
    ) {
        let ctx = story.ctx;
        let doc_id = self.id("doc_");
        let ver_id = self.id("ver_");
        // Files belong to the document; the verification points at the same ones.
        let owner = if with_document { &doc_id } else { &ver_id };
        let front_name = match self.rng.below(3) {
            0 => "image.jpg".to_string(),
            1 => "id_front.jpg".to_string(),
            _ => format!("persona_camera_{}.jpg", story.clock.timestamp_millis()),
        };
        let back_name = if front_name == "image.jpg" {
            "image.jpg"
        } else {
            "id_back.jpg"
        };
        let front = self.file(
            ctx,
            format!("{owner}-front-photo"),
            &front_name,
            FileKind::Photo,
        );
        let back = if passport {
            FileSlot {
                object: Value::Null,
            }
        } else {
            self.file(
                ctx,
                format!("{owner}-back-photo"),
                back_name,
                FileKind::Photo,
            )
        };
        let portrait = self.file(
            ctx,
            format!("{owner}-selfie-photo"),
            "selfie_photo.jpg",
            FileKind::Portrait,
        );
        let created = story.tick(&mut self.rng, 20, 240);
        let submitted = story.tick(&mut self.rng, 2, 30);
        let done = processed.then(|| story.tick(&mut self.rng, 3, 20));
        let id_class = if passport { "pp" } else { "dl" };
        let person_attrs = story.id_person_attributes(id_class, passport);

        if with_document {
            let mut attrs = json!({
                "status": if processed { "processed" } else { "submitted" },
                "created-at": ts(created),
                "processed-at": ts_opt(done),
                "processed-at-ts": unix_opt(done),
                "front-photo": front.object,
                "back-photo": back.object,
                "selfie-photo": portrait.object,
                "id-class": id_class,
            });
            merge(&mut attrs, person_attrs.clone());
            let mut relationships = ctx.child_relationships();
            merge(&mut relationships, json!({"document-files": {"data": []}}));
            story.push_document("document/government-id", &doc_id, attrs, relationships);
        }

        let mut photo_urls = Vec::new();
        for (page, slot) in [("front", &front), ("back", &back)] {
            if let Value::Object(file) = &slot.object {
                photo_urls.push(json!({
                    "page": page,
                    "url": file["url"],
                    "normalized-url": file["url"],
                    "original-urls": [file["url"]],
                    "byte-size": file["byte-size"],
                    "filename": file["filename"],
                }));
            }
        }
        let status = if processed { outcome } else { "submitted" };
        let mut attrs = story.verification_times(status, created, Some(submitted), done);
        merge(
            &mut attrs,
            json!({
                "country-code": "US",
                "checks": [],
                "entity-confidence-score": if outcome == "passed" { 96.5 } else { 41.0 },
                "entity-confidence-reasons": ["generic"],
                "front-photo-url": front.url(),
                "back-photo-url": back.url(),
                "photo-urls": photo_urls,
                "selfie-photo": portrait.object,
                "selfie-photo-url": portrait.url(),
                "video-url": null,
                "id-class": id_class,
                "capture-method": if self.rng.chance(0.5) { "upload" } else { "auto" },
                "from-reusable-persona": false,
            }),
        );
        merge(&mut attrs, person_attrs);
        let mut relationships = ctx.child_relationships();
        let (template, version) = self.generator.org.vt_government_id.clone();
        merge(
            &mut relationships,
            json!({
                "transaction": rel_none(),
                "verification-template": rel("verification-template/government-id", &template),
                "verification-template-version":
                    rel("verification-template-version/government-id", &version),
            }),
        );
        if with_document {
            merge(
                &mut relationships,
                json!({"document": {"data": {"type": "document/government-id", "id": doc_id}}}),
            );
        }
        story.push_verification("verification/government-id", &ver_id, attrs, relationships);
    }

    /// A selfie object and its verification with the photos (and sometimes a video).
    fn selfie(&mut self, story: &mut Story, processed: bool, video: bool, center_only: bool) {
        let ctx = story.ctx;
        let self_id = self.id("self_");
        let ver_id = self.id("ver_");
        let kind = if center_only {
            "selfie/center-only"
        } else {
            "selfie/profile-and-center"
        };
        let created = story.tick(&mut self.rng, 10, 120);
        // An unfinished selfie was never captured: no photos yet.
        let captured = processed;
        let named = self.rng.chance(0.5);
        let mut slots = Vec::new();
        let poses: &[(&str, &str)] = if center_only {
            &[("center", "center_photo")]
        } else {
            &[
                ("left", "left_photo"),
                ("center", "center_photo"),
                ("right", "right_photo"),
            ]
        };
        for (pose, page) in poses {
            let slot = if captured {
                let filename = if named {
                    format!("selfie_{pose}.jpg")
                } else {
                    "image.jpg".to_string()
                };
                self.file(
                    ctx,
                    format!("{ver_id}-{pose}-photo"),
                    &filename,
                    FileKind::Photo,
                )
            } else {
                FileSlot {
                    object: Value::Null,
                }
            };
            slots.push((*pose, *page, slot));
        }
        let video_slot = if captured && video {
            self.file(
                ctx,
                format!("{ver_id}-video"),
                "selfie_video.mp4",
                FileKind::Video,
            )
        } else {
            FileSlot {
                object: Value::Null,
            }
        };
        let submitted = captured.then(|| story.tick(&mut self.rng, 5, 60));
        let done = processed.then(|| story.tick(&mut self.rng, 2, 15));

        story.push_selfie(
            kind,
            &self_id,
            json!({
                "status": if processed { "processed" } else { "initiated" },
                "created-at": ts(created),
                "processed-at": ts_opt(done),
            }),
        );

        let url_of = |pose: &str| {
            slots
                .iter()
                .find(|(p, _, _)| *p == pose)
                .map_or(Value::Null, |(_, _, s)| s.url())
        };
        let photo_urls: Vec<Value> = slots
            .iter()
            .filter_map(|(_, page, slot)| match &slot.object {
                Value::Object(file) => Some(json!({
                    "page": page,
                    "url": file["url"],
                    "byte-size": file["byte-size"],
                    "filename": file["filename"],
                })),
                _ => None,
            })
            .collect();
        let status = match (processed, story.status) {
            (false, _) => "initiated",
            (true, "failed" | "declined") => "failed",
            (true, _) => "passed",
        };
        let mut attrs = story.verification_times(status, created, submitted, done);
        merge(
            &mut attrs,
            json!({
                "country-code": null,
                "checks": [],
                "capture-method": if video { "video" } else { "photo" },
                "document-similarity-score": null,
                "selfie-similarity-score-left": if center_only { Value::Null } else { json!(100) },
                "selfie-similarity-score-right": if center_only { Value::Null } else { json!(100) },
                "left-photo-url": url_of("left"),
                "center-photo-url": url_of("center"),
                "right-photo-url": url_of("right"),
                "photo-urls": photo_urls,
                "video-url": video_slot.url(),
                "center-photo-face-coordinates": null,
            }),
        );
        let mut relationships = ctx.child_relationships();
        let (template, version) = self.generator.org.vt_selfie.clone();
        merge(
            &mut relationships,
            json!({
                "transaction": rel_none(),
                "verification-template": rel("verification-template/selfie", &template),
                "verification-template-version":
                    rel("verification-template-version/selfie", &version),
            }),
        );
        story.push_verification("verification/selfie", &ver_id, attrs, relationships);
    }

    /// A generic document with several PDFs (the first two share a name) and its verification.
    fn generic_document(&mut self, story: &mut Story, processed: bool, inquiry_status: &str) {
        const NAMES: [(&str, &str); 4] = [
            ("bank_statement.pdf", "bank_statement"),
            ("utility_bill.pdf", "standard_utility_bill"),
            ("pay_stub.pdf", "other"),
            ("lease_agreement.pdf", "other"),
        ];
        let ctx = story.ctx;
        let doc_id = self.id("doc_");
        let (first, document_type) = *self.rng.pick(&NAMES);
        let mut names = vec![first.to_string(), first.to_string()];
        for _ in 0..self.rng.below(3) {
            names.push(if self.rng.chance(0.3) {
                format!("IMG_{:04}.jpg", self.rng.below(10_000))
            } else {
                self.rng.pick(&NAMES).0.to_string()
            });
        }
        let mut files = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let kind = if name.ends_with(".pdf") {
                FileKind::Pdf
            } else {
                FileKind::Photo
            };
            let slot = self.file(ctx, format!("{doc_id}-files-{i}"), name, kind);
            files.extend(slot.is_some().then_some(slot.object));
        }
        let mut normalized = Vec::new();
        if processed {
            for (i, name) in names.iter().enumerate() {
                // Persona normalizes every upload to a PDF.
                let pdf_name = match name.rsplit_once('.') {
                    Some((stem, _)) => format!("{stem}.pdf"),
                    None => format!("{name}.pdf"),
                };
                let key = format!("{doc_id}-files-normalized-{i}");
                let slot = self.file(ctx, key, &pdf_name, FileKind::Pdf);
                normalized.extend(slot.is_some().then_some(slot.object));
            }
        }
        let created = story.tick(&mut self.rng, 30, 600);
        let submitted = story.tick(&mut self.rng, 2, 60);
        let done = processed.then(|| story.tick(&mut self.rng, 5, 90));
        let mut relationships = ctx.child_relationships();
        merge(&mut relationships, json!({"document-files": {"data": []}}));
        story.push_document(
            "document/generic",
            &doc_id,
            json!({
                "status": if processed { "processed" } else { "submitted" },
                "created-at": ts(created),
                "processed-at": ts_opt(done),
                "processed-at-ts": unix_opt(done),
                "kind": "document",
                "files": files,
                "files-normalized": normalized,
                "extraction-responses": [],
                "document-type": processed.then_some(document_type),
                "fields": {},
            }),
            relationships,
        );

        let ver_id = self.id("ver_");
        let status = match (processed, inquiry_status) {
            (false, _) => "submitted",
            (true, "declined" | "failed") => "failed",
            (true, _) => "passed",
        };
        let mut attrs = story.verification_times(status, created, Some(submitted), done);
        merge(
            &mut attrs,
            json!({
                "country-code": "US",
                "checks": [],
                "fields": {},
                "files": files,
                "files-normalized": normalized,
                "extraction-responses": [],
                "document-type": processed.then_some(document_type),
            }),
        );
        let mut relationships = ctx.child_relationships();
        let (template, version) = self.generator.org.vt_document.clone();
        merge(
            &mut relationships,
            json!({
                "transaction": rel_none(),
                "verification-template": rel("verification-template/document", &template),
                "verification-template-version":
                    rel("verification-template-version/document", &version),
                "document": {"data": {"type": "document/generic", "id": doc_id}},
            }),
        );
        story.push_verification("verification/document", &ver_id, attrs, relationships);
    }

    #[allow(clippy::too_many_arguments)]
    fn inquiry_data(
        &mut self,
        ctx: &InquiryCtx,
        plan: Plan,
        summary: &Summary,
        person: &Person,
        created_at: DateTime<Utc>,
        started_at: Option<DateTime<Utc>>,
        last_activity: DateTime<Utc>,
        [documents, selfies, verifications]: [Vec<(String, String)>; 3],
    ) -> Value {
        let rng = &mut self.rng;
        let status = plan.status;
        let mut t = last_activity;
        let mut at = |lo: u64, hi: u64| {
            t += Duration::seconds(rng.range(lo, hi) as i64);
            t
        };
        let completed = matches!(
            status,
            "completed" | "needs_review" | "approved" | "declined"
        )
        .then(|| at(1, 10));
        let failed = (status == "failed").then(|| at(1, 10));
        let marked_for_review = (status == "needs_review").then(|| at(1, 5));
        let decisioned = matches!(status, "approved" | "declined").then(|| at(60, 86_400));
        let expires = created_at + Duration::hours(24);
        let expired = (status == "expired").then_some(expires);
        let redacted = plan.redacted.then(|| at(86_400, 30 * 86_400));
        let updated = [Some(last_activity), completed, failed, marked_for_review]
            .into_iter()
            .chain([decisioned, expired, redacted])
            .flatten()
            .max()
            .unwrap_or(created_at);
        // Keep everything at or before the epoch (the generated "now"), except expires-at.
        let cap = |t: Option<DateTime<Utc>>| t.map(|t| t.min(epoch()));
        let (next_step, previous_step) = match status {
            "created" => ("start", None),
            "pending" | "expired" => ("verification_selfie", Some("verification_government_id")),
            "failed" => ("fail", Some("verification_government_id")),
            _ => ("success", Some("verification_selfie")),
        };
        let p = (!plan.redacted).then_some(person);
        let s = |f: fn(&Person) -> Option<String>| p.and_then(f).map_or(Value::Null, Value::from);
        let field = |kind: &str, value: Value| json!({"type": kind, "value": value});
        let fields = json!({
            "name-first": field("string", s(|p| Some(p.first.into()))),
            "name-middle": field("string", s(|p| p.middle.map(Into::into))),
            "name-last": field("string", s(|p| Some(p.last.into()))),
            "address-street-1": field("string", s(|p| Some(p.street.clone()))),
            "address-street-2": field("string", Value::Null),
            "address-city": field("string", s(|p| Some(p.city.into()))),
            "address-subdivision": field("string", s(|p| Some(p.subdivision.into()))),
            "address-postal-code": field("string", s(|p| Some(p.postal_code.clone()))),
            "address-country-code": field("string", s(|_| Some("US".into()))),
            "birthdate": field("date", s(|p| Some(p.birthdate.clone()))),
            "email-address": field("string", s(|p| Some(p.email.clone()))),
            "phone-number": field("string", s(|p| p.phone.clone())),
            "identification-number": field("string", s(|p| Some(p.id_number.clone()))),
        });
        let rng = &mut self.rng;
        let tags: Vec<&str> = match rng.below(6) {
            0 => vec!["vip"],
            1 => vec!["manual-review", "retry"],
            _ => vec![],
        };
        let mut attributes = json!({
            "status": status,
            "reference-id": summary.reference_id,
            "note": null,
            "behaviors": {},
            "tags": tags,
            "creator": if rng.chance(0.8) { "API" } else { "ops@example.com" },
            "reviewer-comment": (status == "approved" && rng.chance(0.3)).then_some("Looks good"),
            "created-at": ts(created_at),
            "updated-at": ts(cap(Some(updated)).unwrap_or(updated)),
            "started-at": ts_opt(started_at),
            "expires-at": ts(expires),
            "completed-at": ts_opt(cap(completed)),
            "failed-at": ts_opt(cap(failed)),
            "marked-for-review-at": ts_opt(cap(marked_for_review)),
            "decisioned-at": ts_opt(cap(decisioned)),
            "expired-at": ts_opt(cap(expired)),
            "redacted-at": ts_opt(cap(redacted)),
            "previous-step-name": previous_step,
            "next-step-name": next_step,
            "fields": fields,
        });
        merge(
            &mut attributes,
            json!({
                "name-first": s(|p| Some(p.first.into())),
                "name-middle": s(|p| p.middle.map(Into::into)),
                "name-last": s(|p| Some(p.last.into())),
                "birthdate": s(|p| Some(p.birthdate.clone())),
                "address-street-1": s(|p| Some(p.street.clone())),
                "address-street-2": null,
                "address-city": s(|p| Some(p.city.into())),
                "address-subdivision": s(|p| Some(p.subdivision.into())),
                "address-subdivision-abbr": s(|p| Some(p.subdivision_abbr.into())),
                "address-postal-code": s(|p| Some(p.postal_code.clone())),
                "address-postal-code-abbr": s(|p| Some(p.postal_code.clone())),
                "social-security-number": null,
                "identification-number": s(|p| Some(p.id_number.clone())),
                "email-address": s(|p| Some(p.email.clone())),
                "phone-number": s(|p| p.phone.clone()),
            }),
        );

        let account = match summary.account {
            Some(account) => rel("account", &self.generator.account_id(account)),
            None => rel_none(),
        };
        let (template, itmpl, itmplv) = match &ctx.template {
            TemplateRef::Dynamic { id, version } => (
                rel_none(),
                rel("inquiry-template", id),
                rel("inquiry-template-version", version),
            ),
            TemplateRef::Legacy(id) => (rel("template", id), rel_none(), rel_none()),
        };
        let reviewer = match decisioned {
            Some(_) => {
                let id = format!("wfr_{}", base58(rng, 24));
                rel("workflow-run", &id)
            }
            None => rel_none(),
        };
        let relationships = json!({
            "account": account,
            "template": template,
            "inquiry-template": itmpl,
            "inquiry-template-version": itmplv,
            "transaction": rel_none(),
            "reviewer": reviewer,
            "reports": {"data": []},
            "verifications": rel_list(&verifications),
            "sessions": {"data": []},
            "documents": rel_list(&documents),
            "selfies": rel_list(&selfies),
        });
        json!({
            "type": "inquiry",
            "id": ctx.id,
            "attributes": attributes,
            "relationships": relationships,
        })
    }
}

/// The objects of one inquiry as they are created, with a clock that moves forward.
struct Story<'a> {
    ctx: &'a InquiryCtx,
    person: Option<&'a Person>,
    status: &'static str,
    clock: DateTime<Utc>,
    objects: Vec<Value>,
    documents: Vec<(String, String)>,
    selfies: Vec<(String, String)>,
    verifications: Vec<(String, String)>,
}

impl Story<'_> {
    /// Move the clock forward by `lo..=hi` seconds and return it.
    fn tick(&mut self, rng: &mut Rng, lo: u64, hi: u64) -> DateTime<Utc> {
        self.clock += Duration::seconds(rng.range(lo, hi) as i64);
        self.clock
    }

    fn object(kind: &str, id: &str, attributes: Value, relationships: Value) -> Value {
        json!({"type": kind, "id": id, "attributes": attributes, "relationships": relationships})
    }

    fn push_document(&mut self, kind: &str, id: &str, attributes: Value, relationships: Value) {
        self.documents.push((kind.into(), id.into()));
        self.objects
            .push(Self::object(kind, id, attributes, relationships));
    }

    fn push_selfie(&mut self, kind: &str, id: &str, attributes: Value) {
        self.selfies.push((kind.into(), id.into()));
        let relationships = json!({"inquiry": rel("inquiry", &self.ctx.id)});
        self.objects
            .push(Self::object(kind, id, attributes, relationships));
    }

    fn push_verification(&mut self, kind: &str, id: &str, attributes: Value, relationships: Value) {
        self.verifications.push((kind.into(), id.into()));
        self.objects
            .push(Self::object(kind, id, attributes, relationships));
    }

    /// The timestamps every verification carries (`*-at` and `*-at-ts`).
    fn verification_times(
        &self,
        status: &str,
        created: DateTime<Utc>,
        submitted: Option<DateTime<Utc>>,
        completed: Option<DateTime<Utc>>,
    ) -> Value {
        json!({
            "status": status,
            "created-at": ts(created),
            "created-at-ts": created.timestamp(),
            "submitted-at": ts_opt(submitted),
            "submitted-at-ts": unix_opt(submitted),
            "completed-at": ts_opt(completed),
            "completed-at-ts": unix_opt(completed),
            "redacted-at": null,
        })
    }

    /// What an ID says about its holder (all `null` when redacted).
    fn id_person_attributes(&self, id_class: &str, passport: bool) -> Value {
        let p = self.person;
        let s = |f: &dyn Fn(&Person) -> String| p.map_or(Value::Null, |p| Value::from(f(p)));
        let issue_year = p.map_or(0, |p| p.birthdate[..4].parse::<i32>().unwrap_or(1990) + 18);
        json!({
            "name-first": s(&|p| p.first.to_uppercase()),
            "name-middle": p.and_then(|p| p.middle).map(str::to_uppercase),
            "name-last": s(&|p| p.last.to_uppercase()),
            "name-suffix": null,
            "birthdate": s(&|p| p.birthdate.clone()),
            "address-street-1": if passport { Value::Null } else { s(&|p| p.street.to_uppercase()) },
            "address-street-2": null,
            "address-city": if passport { Value::Null } else { s(&|p| p.city.to_uppercase()) },
            "address-subdivision":
                if passport { Value::Null } else { s(&|p| p.subdivision_abbr.into()) },
            "address-postal-code":
                if passport { Value::Null } else { s(&|p| p.postal_code.clone()) },
            "issuing-authority": if passport { s(&|_| "USA".into()) } else { Value::Null },
            "issuing-subdivision":
                if passport { Value::Null } else { s(&|p| p.subdivision_abbr.into()) },
            "nationality": if passport { s(&|_| "USA".into()) } else { Value::Null },
            "document-number": if id_class == "pp" { s(&|p| p.id_number.clone()) } else { Value::Null },
            "visa-status": null,
            "issue-date": p.map(|_| format!("{}-05-01", issue_year.max(2018))),
            "expiration-date": p.map(|_| format!("{}-05-01", issue_year.max(2018) + 10)),
            "designations": [],
            "birthplace": null,
            "height": null,
            "sex": null,
            "endorsements": null,
            "restrictions": null,
            "vehicle-class": null,
            "identification-number": s(&|p| p.id_number.clone()),
        })
    }
}

fn base58(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| BASE58[rng.below(BASE58.len() as u64) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Every placeholder key in `value`, with the `byte-size` beside it when there is one.
    fn file_refs(value: &Value, out: &mut Vec<(String, Option<u64>)>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(url)) = map.get("url")
                    && let Some(key) = url.strip_prefix(FILE_URL_PLACEHOLDER)
                {
                    out.push((
                        key.to_string(),
                        map.get("byte-size").and_then(Value::as_u64),
                    ));
                }
                for (name, v) in map {
                    match v {
                        Value::String(s) if name != "url" => {
                            if let Some(key) = s.strip_prefix(FILE_URL_PLACEHOLDER) {
                                out.push((key.to_string(), None));
                            }
                        }
                        _ => file_refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| file_refs(v, out)),
            _ => {}
        }
    }

    fn refs_of(inquiry: &MockInquiry) -> Vec<(String, Option<u64>)> {
        let mut out = Vec::new();
        file_refs(&inquiry.data, &mut out);
        inquiry.included.iter().for_each(|o| file_refs(o, &mut out));
        out
    }

    fn read(file: &MockFile, offset: u64, len: u64) -> Vec<u8> {
        let len = len.min(file.content.len() - offset);
        let mut buf = vec![0u8; len as usize];
        file.content.read_at(offset, &mut buf);
        buf
    }

    fn attr<'a>(object: &'a Value, name: &str) -> &'a Value {
        &object["attributes"][name]
    }

    fn objects_of<'a>(dataset: &'a Dataset, kind: &'a str) -> impl Iterator<Item = &'a Value> {
        dataset
            .inquiries
            .iter()
            .flat_map(|i| &i.included)
            .filter(move |o| o["type"] == kind)
    }

    #[test]
    fn same_count_and_seed_give_the_same_dataset() {
        let a = generate(60, 7);
        let b = generate(60, 7);
        assert_eq!(a.inquiries.len(), 60);
        for (x, y) in a.inquiries.iter().zip(&b.inquiries) {
            assert_eq!(x.id, y.id);
            assert_eq!(x.created_at, y.created_at);
            assert_eq!(x.data, y.data);
            assert_eq!(x.included, y.included);
        }
        assert_eq!(a.files.len(), b.files.len());
        let mut keys: Vec<&String> = a.files.keys().collect();
        keys.sort();
        for (n, key) in keys.into_iter().enumerate() {
            let (fa, fb) = (&a.files[key], &b.files[key]);
            assert_eq!(
                (&fa.filename, &fa.content_type),
                (&fb.filename, &fb.content_type)
            );
            assert_eq!(fa.content.len(), fb.content.len());
            let len = fa.content.len();
            assert_eq!(read(fa, len / 2, 100), read(fb, len / 2, 100), "{key}");
            // The ends hold the encoded image of a photo, costly in debug builds: sample them.
            if n % 10 == 0 {
                assert_eq!(read(fa, 0, 4096), read(fb, 0, 4096), "{key}");
                assert_eq!(read(fa, len - 100, 100), read(fb, len - 100, 100), "{key}");
            }
        }
        let other = generate(60, 8);
        assert_ne!(a.inquiries[0].id, other.inquiries[0].id);
        assert_ne!(a.inquiries[0].data, other.inquiries[0].data);
    }

    #[test]
    fn ids_are_unique_and_look_like_personas() {
        let dataset = generate(500, 3);
        let mut seen = HashSet::new();
        let mut check = |id: &str, prefixes: &[&str]| {
            let prefix = prefixes
                .iter()
                .find(|p| id.starts_with(**p))
                .unwrap_or_else(|| panic!("{id}: expected one of {prefixes:?}"));
            let rest = &id[prefix.len()..];
            assert!((24..=28).contains(&rest.len()), "{id}");
            assert!(rest.bytes().all(|b| BASE58.contains(&b)), "{id}");
            assert!(seen.insert(id.to_string()), "duplicate id {id}");
        };
        for inquiry in &dataset.inquiries {
            assert_eq!(inquiry.data["id"], inquiry.id.as_str());
            check(&inquiry.id, &["inq_"]);
            for object in &inquiry.included {
                let kind = object["type"].as_str().unwrap();
                let prefixes: &[&str] = match kind.split('/').next() {
                    Some("document") => &["doc_"],
                    Some("selfie") => &["self_"],
                    Some("verification") => &["ver_"],
                    _ => panic!("unexpected type {kind}"),
                };
                check(object["id"].as_str().unwrap(), prefixes);
            }
        }
    }

    #[test]
    fn newest_first_within_six_months_before_the_epoch() {
        let dataset = generate(300, 11);
        let oldest = epoch() - Duration::days(SPREAD_DAYS);
        for pair in dataset.inquiries.windows(2) {
            assert!(pair[0].created_at >= pair[1].created_at);
        }
        for inquiry in &dataset.inquiries {
            assert!(inquiry.created_at < epoch() && inquiry.created_at >= oldest);
            assert_eq!(attr(&inquiry.data, "created-at"), &ts(inquiry.created_at));
        }
        let first = dataset.inquiries.first().unwrap().created_at;
        let last = dataset.inquiries.last().unwrap().created_at;
        assert!(first - last > Duration::days(120), "spread over months");
    }

    /// `2026-03-04T10:11:12.000Z`
    fn is_persona_timestamp(s: &str) -> bool {
        let b = s.as_bytes();
        s.len() == 24
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'.',
                23 => *c == b'Z',
                _ => c.is_ascii_digit(),
            })
            && DateTime::parse_from_rfc3339(s).is_ok()
    }

    #[test]
    fn timestamps_are_iso_with_milliseconds_and_never_after_the_epoch() {
        fn walk(value: &Value, name: &str, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => map.iter().for_each(|(k, v)| walk(v, k, out)),
                Value::Array(items) => items.iter().for_each(|v| walk(v, name, out)),
                Value::String(s) if name.ends_with("-at") => out.push(format!("{name}={s}")),
                _ => {}
            }
        }
        let dataset = generate(200, 5);
        let mut stamps = Vec::new();
        for inquiry in &dataset.inquiries {
            walk(&inquiry.data, "", &mut stamps);
            inquiry
                .included
                .iter()
                .for_each(|o| walk(o, "", &mut stamps));
        }
        assert!(stamps.len() > 1000);
        for stamp in stamps {
            let (name, value) = stamp.split_once('=').unwrap();
            assert!(is_persona_timestamp(value), "{stamp}");
            let t = DateTime::parse_from_rfc3339(value).unwrap();
            assert!(name == "expires-at" || t <= epoch(), "{stamp}");
        }
    }

    #[test]
    fn every_variety_is_present_in_fifty() {
        for seed in [1, 2, 42] {
            let d = generate(50, seed);
            let statuses: HashSet<&str> = d
                .inquiries
                .iter()
                .map(|i| attr(&i.data, "status").as_str().unwrap())
                .collect();
            assert_eq!(statuses, STATUSES.into_iter().collect(), "seed {seed}");

            let gov_docs: Vec<&Value> = objects_of(&d, "document/government-id").collect();
            assert!(
                gov_docs
                    .iter()
                    .any(|o| attr(o, "back-photo").is_null() && attr(o, "front-photo").is_object())
            );
            assert!(
                gov_docs
                    .iter()
                    .any(|o| attr(o, "back-photo").is_object()
                        && attr(o, "selfie-photo").is_object())
            );
            assert!(
                gov_docs.iter().any(
                    |o| attr(o, "processed-at").is_null() && attr(o, "front-photo").is_object()
                )
            );
            assert!(
                d.inquiries.iter().any(|i| {
                    i.data["relationships"]["documents"]["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|r| r["type"] == "document/government-id")
                        .count()
                        >= 2
                }),
                "retries"
            );

            assert!(objects_of(&d, "document/generic").any(|o| {
                let names: Vec<&Value> = attr(o, "files")
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| &f["filename"])
                    .collect();
                let repeated = names
                    .iter()
                    .enumerate()
                    .any(|(i, n)| names[..i].contains(n));
                names.len() >= 2
                    && repeated
                    && names.iter().all(|n| {
                        n.as_str().unwrap().ends_with(".pdf")
                            || n.as_str().unwrap().ends_with(".jpg")
                    })
                    && !attr(o, "files-normalized").as_array().unwrap().is_empty()
            }));

            // Verifications point at the document's own files.
            let gov_vers: Vec<&Value> = objects_of(&d, "verification/government-id").collect();
            assert!(gov_vers.iter().any(|v| {
                let Some(doc_id) = v["relationships"]["document"]["data"]["id"].as_str() else {
                    return false;
                };
                let doc = gov_docs.iter().find(|o| o["id"] == doc_id).unwrap();
                let front = &attr(doc, "front-photo")["url"];
                front.is_string()
                    && attr(v, "front-photo-url") == front
                    && attr(v, "photo-urls")[0]["url"] == *front
            }));
            assert!(
                gov_vers
                    .iter()
                    .any(|v| v["relationships"].get("document").is_none()
                        && attr(v, "front-photo-url").is_string()),
                "verification without document"
            );

            let selfie_vers: Vec<&Value> = objects_of(&d, "verification/selfie").collect();
            assert!(selfie_vers.iter().any(|v| {
                attr(v, "photo-urls").as_array().unwrap().len() == 3
                    && ["left", "center", "right"]
                        .iter()
                        .all(|p| attr(v, &format!("{p}-photo-url")).is_string())
            }));
            assert!(selfie_vers.iter().any(|v| attr(v, "video-url").is_string()));
            assert!(
                selfie_vers
                    .iter()
                    .any(|v| attr(v, "video-url").is_null()
                        && attr(v, "center-photo-url").is_string())
            );
            let selfies: Vec<&Value> = d
                .inquiries
                .iter()
                .flat_map(|i| &i.included)
                .filter(|o| o["type"].as_str().unwrap().starts_with("selfie/"))
                .collect();
            assert!(!selfies.is_empty());
            for s in &selfies {
                let keys: HashSet<&str> = s["attributes"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                assert_eq!(keys, ["status", "created-at", "processed-at"].into());
            }

            assert!(
                d.inquiries
                    .iter()
                    .any(|i| refs_of(i).is_empty() && i.included.is_empty()),
                "an inquiry with nothing at all"
            );
            let redacted: Vec<&MockInquiry> = d
                .inquiries
                .iter()
                .filter(|i| attr(&i.data, "redacted-at").is_string())
                .collect();
            assert!(!redacted.is_empty() && redacted.len() < 10);
            for inquiry in redacted {
                assert!(!inquiry.included.is_empty());
                assert!(
                    refs_of(inquiry).is_empty(),
                    "redacted {} has files",
                    inquiry.id
                );
                assert!(attr(&inquiry.data, "name-first").is_null());
            }
        }
    }

    #[test]
    fn relationships_and_included_match() {
        let dataset = generate(100, 9);
        for inquiry in &dataset.inquiries {
            let rels = &inquiry.data["relationships"];
            let mut listed: Vec<(String, String)> = Vec::new();
            for name in ["documents", "selfies", "verifications"] {
                for r in rels[name]["data"].as_array().unwrap() {
                    listed.push((r["type"].to_string(), r["id"].to_string()));
                }
            }
            let mut included: Vec<(String, String)> = inquiry
                .included
                .iter()
                .map(|o| (o["type"].to_string(), o["id"].to_string()))
                .collect();
            listed.sort();
            included.sort();
            assert_eq!(listed, included, "{}", inquiry.id);
            for object in &inquiry.included {
                let back = &object["relationships"]["inquiry"]["data"]["id"];
                assert_eq!(back, inquiry.id.as_str());
            }
        }
    }

    #[test]
    fn every_file_exists_with_its_declared_size_and_type() {
        let dataset = generate(120, 21);
        let mut referenced = HashSet::new();
        for inquiry in &dataset.inquiries {
            for (key, size) in refs_of(inquiry) {
                let file = dataset
                    .files
                    .get(&key)
                    .unwrap_or_else(|| panic!("{}: no file {key}", inquiry.id));
                if let Some(size) = size {
                    assert_eq!(file.content.len(), size, "{key}");
                }
                assert_eq!(file.content_type, content_type_for(&file.filename));
                let len = file.content.len();
                let expect = match file.content_type.as_str() {
                    "image/jpeg" => 100_000..=2_000_000,
                    "application/pdf" => 20_000..=500_000,
                    "video/mp4" => 1_000_000..=5_000_000,
                    other => panic!("unexpected type {other}"),
                };
                assert!(expect.contains(&len), "{key}: {len}");
                referenced.insert(key);
            }
        }
        let all: HashSet<String> = dataset.files.keys().cloned().collect();
        assert_eq!(all, referenced, "no file without a URL");
    }

    #[test]
    fn file_bodies_are_real_and_readable_in_pieces() {
        let dataset = generate(40, 4);
        let mut photos = 0;
        let mut keys: Vec<&String> = dataset.files.keys().collect();
        keys.sort();
        for key in keys {
            let file = &dataset.files[key];
            let len = file.content.len();
            match file.content_type.as_str() {
                "image/jpeg" if photos < 6 => {
                    photos += 1;
                    let bytes = read(file, 0, len);
                    let mut decoder = jpeg_decoder::Decoder::new(&bytes[..]);
                    decoder.decode().unwrap_or_else(|e| panic!("{key}: {e}"));
                    // Ranges, including ones that straddle the image and the padding.
                    for (offset, n) in [(0, 1), (100, 5_000), (len / 2, 70_000), (len - 3, 3)] {
                        let part = read(file, offset, n);
                        assert_eq!(part, bytes[offset as usize..offset as usize + part.len()]);
                    }
                }
                "application/pdf" => {
                    assert_eq!(read(file, 0, 5), b"%PDF-");
                    assert_eq!(read(file, len - 6, 6), b"%%EOF\n");
                }
                "video/mp4" => assert_eq!(&read(file, 4, 4), b"ftyp"),
                _ => {}
            }
        }
        assert_eq!(photos, 6);
    }

    #[test]
    fn five_thousand_inquiries_generate_quickly() {
        // Untimed on purpose; it only has to finish fast because contents are lazy.
        let dataset = generate(5000, 99);
        assert_eq!(dataset.inquiries.len(), 5000);
        assert!(dataset.files.len() > 5000);
        let statuses: HashSet<&str> = dataset
            .inquiries
            .iter()
            .map(|i| attr(&i.data, "status").as_str().unwrap())
            .collect();
        assert_eq!(statuses.len(), STATUSES.len());
    }

    #[test]
    fn reference_ids_and_accounts_are_shared_missing_or_hostile_as_in_real_organisations() {
        let g = Generator::new(2_000, 11);
        let summaries: Vec<Summary> = (0..2_000).map(|i| g.summary(i)).collect();
        let with_ref: Vec<&str> = summaries
            .iter()
            .filter_map(|s| s.reference_id.as_deref())
            .collect();
        assert!(
            with_ref.len() > 1_400 && with_ref.len() < 1_800,
            "most have one"
        );
        let distinct: HashSet<&str> = with_ref.iter().copied().collect();
        assert!(
            distinct.len() * 2 < with_ref.len(),
            "several inquiries per reference id: {} of {}",
            distinct.len(),
            with_ref.len()
        );
        let accounts: Vec<u64> = summaries.iter().filter_map(|s| s.account).collect();
        let distinct_accounts: HashSet<u64> = accounts.iter().copied().collect();
        assert!(accounts.len() < 2_000, "some have no account");
        assert!(
            distinct_accounts.len() * 2 < accounts.len(),
            "several per account"
        );
        let hostile: HashSet<&str> = distinct
            .iter()
            .copied()
            .filter(|r| {
                r.contains('/') || r.chars().any(char::is_control) || *r == "." || *r == ".."
            })
            .collect();
        assert!(hostile.len() >= 5, "{hostile:?}");
        assert!(distinct.iter().any(|r| r.len() > 255), "a very long one");
        assert!(distinct.contains("50% off 🙂 café"));
        // The JSON carries exactly the summary's.
        let inquiry = g.inquiry(13).inquiry;
        assert_eq!(
            attr(&inquiry.data, "reference-id").as_str(),
            summaries[13].reference_id.as_deref()
        );
    }

    #[test]
    fn small_counts_work() {
        assert!(generate(0, 1).inquiries.is_empty());
        assert!(generate(0, 1).files.is_empty());
        let one = generate(1, 1);
        assert_eq!(one.inquiries.len(), 1);
    }

    #[test]
    fn a_large_document_is_added_newest_and_reads_anywhere() {
        let mut dataset = generate(10, 2);
        let before = dataset.files.len();
        let size = 210 * 1024 * 1024;
        let id = add_large_document(&mut dataset, size, 5);
        assert_eq!(dataset.inquiries[0].id, id);
        assert_eq!(dataset.inquiries.len(), 11);
        assert!(dataset.inquiries[0].created_at > dataset.inquiries[1].created_at);
        let refs = refs_of(&dataset.inquiries[0]);
        assert!(!refs.is_empty());
        let (key, declared) = &refs[0];
        assert_eq!(*declared, Some(size));
        assert!(refs.iter().all(|(k, _)| k == key), "only the large file");
        assert_eq!(dataset.files.len(), before + 1);
        let file = &dataset.files[key];
        assert_eq!(file.content.len(), size);
        assert_eq!(read(file, size - 6, 6), b"%%EOF\n");
        assert_eq!(read(file, 0, 5), b"%PDF-");
        let middle = read(file, size / 2, 1 << 20);
        assert_eq!(middle, read(file, size / 2, 1 << 20));
        // A second one gets a different id.
        let again = add_large_document(&mut dataset, 1_000_000, 5);
        assert_ne!(again, id);
    }
}
