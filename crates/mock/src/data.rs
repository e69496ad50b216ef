//! The mock's data model: inquiries as JSON (Persona's shapes) plus the file bodies they point to.
//!
//! Both the generator (`generate.rs`) and the fixture loader (`fixtures.rs`) produce a
//! `Dataset`; the server (`server.rs`) serves it. File URLs inside the JSON are written as
//! placeholders `mockfile:<key>`; the server replaces each with its own signed URL (new form
//! `<files>/<filename>?access_token=…` or old form `<api>/files/<token>/<filename>`, by
//! `Persona-Version`) every time it sends the JSON, so a URL is transport, not identity.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Prefix of a file URL placeholder inside dataset JSON.
pub const FILE_URL_PLACEHOLDER: &str = "mockfile:";

/// The bytes of one file, produced on demand so a 200 MB file costs no 200 MB of memory.
pub trait Content: Send + Sync {
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill `buf` with the bytes at `offset..offset + buf.len()` (the caller keeps it in range).
    fn read_at(&self, offset: u64, buf: &mut [u8]);
}

/// Plain bytes in memory (fixtures, small files).
pub struct BytesContent(pub Vec<u8>);

impl Content for BytesContent {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) {
        let start = offset as usize;
        buf.copy_from_slice(&self.0[start..start + buf.len()]);
    }
}

/// One file the files host serves.
#[derive(Clone)]
pub struct MockFile {
    /// The Persona filename (last path segment of its URL), e.g. `selfie_photo.jpg`; not unique.
    pub filename: String,
    pub content_type: String,
    pub content: Arc<dyn Content>,
}

/// One inquiry, as Persona would hold it.
#[derive(Clone)]
pub struct MockInquiry {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// The `data` object of a Retrieve-an-Inquiry response (type, id, attributes,
    /// relationships), in the 2023-01-05 shape.
    pub data: serde_json::Value,
    /// Every object this inquiry's relationships point to (documents, selfies,
    /// verifications, and others such as accounts/templates if present), each a full JSON:API
    /// object with `type`, `id`, `attributes`, `relationships`. File URLs are placeholders.
    pub included: Vec<serde_json::Value>,
}

/// Everything a mock server serves.
#[derive(Clone, Default)]
pub struct Dataset {
    /// Newest first.
    pub inquiries: Vec<MockInquiry>,
    /// Placeholder key (the text after `mockfile:`) → file.
    pub files: HashMap<String, MockFile>,
}
