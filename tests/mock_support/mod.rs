//! A tiny hand-built dataset for the mock server tests (a stand-in for the generator).

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use personafs_mock::data::{BytesContent, Dataset, MockFile, MockInquiry};
use serde_json::{Value, json};

pub const STATUSES: [&str; 6] = [
    "approved",
    "declined",
    "completed",
    "pending",
    "approved",
    "needs_review",
];

/// Bytes of a test file: varied so a wrong offset shows.
pub fn file_bytes(len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ salt).collect()
}

pub const FRONT_LEN: usize = 200_000;
pub const PDF_LEN: usize = 3_000;

/// Six inquiries `inq_1` (oldest) … `inq_6` (newest); `inq_6` has files.
pub fn dataset() -> Dataset {
    let mut inquiries = Vec::new();
    for n in 1..=6u32 {
        let created = Utc.with_ymd_and_hms(2024, 1, n, 12, 0, 0).unwrap();
        let id = format!("inq_{n}");
        let account = if n % 2 == 1 { "act_A" } else { "act_B" };
        let template = if n <= 3 { "itmpl_X" } else { "itmpl_Y" };
        let mut data = json!({
            "type": "inquiry",
            "id": id,
            "attributes": {
                "status": STATUSES[n as usize - 1],
                "reference-id": format!("ref-{n}"),
                "created-at": created.to_rfc3339(),
                "redacted-at": null,
                "name-first": "Jane",
                "fields": {"name-first": {"type": "string", "value": "Jane"}},
            },
            "relationships": {
                "account": {"data": {"type": "account", "id": account}},
                "inquiry-template": {"data": {"type": "inquiry-template", "id": template}},
                "documents": {"data": []},
                "selfies": {"data": []},
                "verifications": {"data": []},
            },
        });
        let mut included = Vec::new();
        if n == 6 {
            data["relationships"]["documents"]["data"] = json!([
                {"type": "document/government-id", "id": "doc_gov"},
                {"type": "document/generic", "id": "doc_gen"},
            ]);
            data["relationships"]["selfies"]["data"] =
                json!([{"type": "selfie/profile-and-center", "id": "self_1"}]);
            data["relationships"]["verifications"]["data"] =
                json!([{"type": "verification/selfie", "id": "ver_selfie"}]);
            included = vec![
                json!({"type": "document/government-id", "id": "doc_gov", "attributes": {
                    "status": "processed",
                    "name-first": "Jane",
                    "front-photo": {"filename": "front photo.jpg", "url": "mockfile:front", "byte-size": FRONT_LEN},
                    "back-photo": null,
                    "selfie-photo": {"filename": "selfie_photo.jpg", "url": "mockfile:portrait", "byte-size": 1000},
                }}),
                json!({"type": "document/generic", "id": "doc_gen", "attributes": {
                    "status": "processed",
                    "files": [
                        {"filename": "statement.pdf", "url": "mockfile:pdf1", "byte-size": PDF_LEN},
                        {"filename": "statement.pdf", "url": "mockfile:pdf2", "byte-size": PDF_LEN},
                    ],
                }}),
                json!({"type": "selfie/profile-and-center", "id": "self_1", "attributes": {"status": "processed"}}),
                json!({"type": "verification/selfie", "id": "ver_selfie", "attributes": {
                    "status": "passed",
                    "center-photo-url": "mockfile:center",
                    "photo-urls": [{"page": "center_photo", "url": "mockfile:center", "byte-size": 500, "filename": "center.jpg"}],
                }}),
            ];
        }
        inquiries.push(MockInquiry {
            id,
            created_at: created,
            data,
            included,
        });
    }
    inquiries.reverse();
    let file = |name: &str, ty: &str, bytes: Vec<u8>| MockFile {
        filename: name.into(),
        content_type: ty.into(),
        content: Arc::new(BytesContent(bytes)),
    };
    let files: HashMap<String, MockFile> = [
        (
            "front",
            file("front photo.jpg", "image/jpeg", file_bytes(FRONT_LEN, 1)),
        ),
        (
            "portrait",
            file("selfie_photo.jpg", "image/jpeg", file_bytes(1000, 2)),
        ),
        (
            "pdf1",
            file("statement.pdf", "application/pdf", file_bytes(PDF_LEN, 3)),
        ),
        (
            "pdf2",
            file("statement.pdf", "application/pdf", file_bytes(PDF_LEN, 4)),
        ),
        (
            "center",
            file("center.jpg", "image/jpeg", file_bytes(500, 5)),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Dataset { inquiries, files }
}

/// Find the first string at `key` anywhere in `value`.
pub fn find_str<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    match value {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .or_else(|| map.values().find_map(|v| find_str(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find_str(v, key)),
        _ => None,
    }
}

/// Whether the program `tool` (from the Debian package `package`) can run here. When it is
/// missing and we are root, it is installed with apt-get. Still missing: a failure under
/// `CI=true`, else a loud skip (false).
pub fn require_tool(tool: &str, package: &str) -> bool {
    let runs = || {
        std::process::Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs() {
        return true;
    }
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        let _ = std::process::Command::new("apt-get")
            .args(["install", "-y", "-q", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        if runs() {
            return true;
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but {tool} (Debian package {package}) is missing and could not be installed"
        );
    }
    eprintln!("SKIPPED: {tool} not found (install the Debian package {package})");
    false
}
