//! `files_of` and `inquiry_json` against the official spec's examples and our own fixtures.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use super::*;
use crate::model::parse_inquiry;

fn crate_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn inquiry_from(body: &Value) -> RetrievedInquiry {
    parse_inquiry("test", body.to_string().as_bytes(), SystemTime::UNIX_EPOCH).unwrap()
}

fn fixture(name: &str) -> RetrievedInquiry {
    let path = crate_root().join("tests/fixtures/client").join(name);
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_inquiry("fixture", &body, SystemTime::UNIX_EPOCH).unwrap()
}

fn names(files: &[RemoteFile], section: Section) -> Vec<&str> {
    files
        .iter()
        .filter(|f| f.section == section)
        .map(|f| f.name.as_str())
        .collect()
}

fn at(s: &str) -> SystemTime {
    SystemTime::from(crate::model::parse_time(s).unwrap())
}

// ---------------------------------------------------------------------------------------
// The official spec's examples.

/// `components.examples` of the 2023-01-05 spec as JSON, or `None` (after saying so) when
/// the spec is absent. `PERSONAFS_OPENAPI_DIR` overrides `../shared/persona-openapi`.
fn spec_examples() -> Option<&'static Value> {
    static SPEC: OnceLock<Option<Value>> = OnceLock::new();
    SPEC.get_or_init(|| {
        let dir = std::env::var_os("PERSONAFS_OPENAPI_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate_root().join("../shared/persona-openapi"));
        let path = dir.join("2023-01-05.yaml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "the official spec {} is missing, and CI must run these tests",
                path.display()
            );
            eprintln!(
                "SKIPPED: {} is absent; set PERSONAFS_OPENAPI_DIR to run the spec tests",
                path.display()
            );
            return None;
        };
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("spec is valid YAML");
        let json: Value = serde_json::to_value(yaml).expect("spec converts to JSON");
        Some(json["components"]["examples"].clone())
    })
    .as_ref()
}

/// `value.data` of a named example (for a webhook body, the event payload's `data`).
fn example_object(examples: &Value, name: &str) -> Value {
    let value = &examples[name]["value"];
    let data = if value["data"]["type"] == "event" {
        &value["data"]["attributes"]["payload"]["data"]
    } else {
        &value["data"]
    };
    assert!(data.is_object(), "spec example {name} not found");
    data.clone()
}

/// The selfie verification example of the spec: the one webhook body whose payload is a
/// `verification/selfie` with file URLs.
const SELFIE_VERIFICATION_EXAMPLE: &str = "verification-requires-retry-webhook-body";

fn spec_inquiry(examples: &Value, names: &[&str]) -> RetrievedInquiry {
    let included: Vec<Value> = names.iter().map(|n| example_object(examples, n)).collect();
    inquiry_from(&json!({
        "data": {"type": "inquiry", "id": "inq_spec", "attributes": {
            "status": "completed", "created-at": "2024-01-01T00:00:00.000Z", "redacted-at": null}},
        "included": included,
    }))
}

#[test]
fn spec_documents_and_selfie_verification() {
    let Some(examples) = spec_examples() else {
        return;
    };
    let inquiry = spec_inquiry(
        examples,
        &[
            "document-government-id",
            "document-generic",
            "verification-government-id-passed",
            SELFIE_VERIFICATION_EXAMPLE,
        ],
    );
    let files = files_of(&inquiry);
    // Documents exist, so the government-id verification is not shown; `files-normalized[0]`
    // is the very URL of `files[0]` in the example, so it is shown once.
    assert_eq!(
        names(&files, Section::Document),
        [
            "doc_bzyijToBPnSHtbW2mMdpKM8W-abc123.JPEG",
            "doc_vXwNeVfVCcgedQ2Sg4R5F9VD-front-photo.jpg",
            "doc_vXwNeVfVCcgedQ2Sg4R5F9VD-selfie-photo.jpg",
        ]
    );
    // The example's four URLs are all the literal `https://files.withpersona.com/...`: one file.
    assert_eq!(
        names(&files, Section::Selfie),
        ["ver_uHDiwtcx3htjajvEaeMjPQcE-center-photo.bin"]
    );
    let front = &files[1];
    assert_eq!(front.role, "front-photo");
    assert_eq!(front.size, Some(298279));
    assert_eq!(front.mtime, at("2024-01-23T20:54:14Z"));
    assert_eq!(files[0].size, Some(124917));
    assert_eq!(files[0].role, "abc123.JPEG");
    assert!(
        front
            .url
            .starts_with("https://files.withpersona.com/persona_camera_")
    );
    // No processed-at: created-at.
    assert_eq!(files[3].mtime, at("2024-02-15T23:45:01Z"));
}

#[test]
fn spec_verifications_stand_in_when_there_are_no_documents() {
    let Some(examples) = spec_examples() else {
        return;
    };
    let mut selfie = example_object(examples, SELFIE_VERIFICATION_EXAMPLE);
    // Give each of the example's placeholder URLs its own token, as real responses do.
    for key in [
        "center-photo-url",
        "left-photo-url",
        "right-photo-url",
        "video-url",
    ] {
        selfie["attributes"][key] = json!(format!(
            "https://files.withpersona.com/...?access_token={key}"
        ));
    }
    let mut inquiry = spec_inquiry(examples, &["verification-government-id-passed"]);
    inquiry
        .included
        .extend(inquiry_from(&json!({"data": {"id": "inq_x"}, "included": [selfie]})).included);
    let files = files_of(&inquiry);
    assert_eq!(
        names(&files, Section::Document),
        ["ver_ABC123-selfie-photo.jpg", "ver_ABC123-front-photo.jpg"]
    );
    assert_eq!(
        names(&files, Section::Selfie),
        [
            "ver_uHDiwtcx3htjajvEaeMjPQcE-center-photo.bin",
            "ver_uHDiwtcx3htjajvEaeMjPQcE-left-photo.bin",
            "ver_uHDiwtcx3htjajvEaeMjPQcE-right-photo.bin",
            "ver_uHDiwtcx3htjajvEaeMjPQcE-video.bin",
        ]
    );
    assert_eq!(files[0].size, Some(201105));
    assert_eq!(files[2].size, None);
}

#[test]
fn spec_verification_document_files() {
    let Some(examples) = spec_examples() else {
        return;
    };
    let files = files_of(&spec_inquiry(examples, &["verification-document"]));
    assert_eq!(
        names(&files, Section::Document),
        ["ver_ABC123-multipage_example.pdf"]
    );
    assert!(names(&files, Section::Selfie).is_empty());
}

// ---------------------------------------------------------------------------------------
// Our fixtures.

#[test]
fn several_documents_with_repeated_filenames() {
    let files = files_of(&fixture("several-documents.json"));
    assert_eq!(
        names(&files, Section::Document),
        [
            "doc_A1-front-photo.jpg",
            "doc_A1-back-photo.jpeg",
            "doc_A1-selfie-photo.jpg",
            "doc_B2-front-photo.png",
            "doc_C3-bank_statement.pdf",
            "doc_C3-bank_statement-2.pdf",
            "doc_C3-bank_statement-3.pdf",
            "doc_C3-scan.bin",
            "doc_C3-normalized-bank_statement.pdf",
            "doc_C3-normalized-bank_statement-2.pdf",
        ]
    );
    // selfie/ objects without URLs: the selfie verification's files, each once although
    // `photo-urls[]` repeats the `*-url` attributes.
    assert_eq!(
        names(&files, Section::Selfie),
        [
            "ver_S1-center-photo.jpg",
            "ver_S1-left-photo.jpg",
            "ver_S1-right-photo.jpg",
            "ver_S1-video.mp4",
        ]
    );
    let back = files
        .iter()
        .find(|f| f.name == "doc_A1-back-photo.jpeg")
        .unwrap();
    assert_eq!(back.size, None, "null byte-size");
    assert_eq!(back.mtime, at("2024-05-01T10:00:05Z"), "processed-at");
    let b2 = files.iter().find(|f| f.object_id == "doc_B2").unwrap();
    assert_eq!(
        b2.mtime,
        at("2024-05-02T09:00:00Z"),
        "created-at without processed-at"
    );
    let c3 = files.iter().find(|f| f.object_id == "doc_C3").unwrap();
    assert_eq!(
        c3.mtime,
        at("2024-04-30T00:00:00Z"),
        "the inquiry's created-at"
    );
    assert_eq!(c3.role, "bank_statement.pdf");
}

#[test]
fn names_depend_only_on_the_object() {
    let inquiry = fixture("several-documents.json");
    let all = files_of(&inquiry);
    let mut reordered = inquiry.clone();
    reordered.included.reverse();
    reordered.included.retain(|o| o.id != "doc_A1");
    let fewer = files_of(&reordered);
    assert!(!fewer.is_empty());
    for file in &fewer {
        let same = all
            .iter()
            .find(|f| f.url == file.url)
            .expect("file still there");
        assert_eq!(same.name, file.name);
    }
    assert_eq!(all.len(), fewer.len() + 3);
}

#[test]
fn selfie_objects_with_urls_win_over_verifications() {
    let files = files_of(&inquiry_from(&json!({
        "data": {"id": "inq_s"},
        "included": [
            {"type": "selfie/profile-and-center", "id": "self_1",
             "attributes": {"center-photo-url": "https://files.withpersona.com/c.jpg?access_token=t1",
                            "photo-urls": [{"page": "left_photo", "url": "https://files.withpersona.com/l.jpg?access_token=t2"}]}},
            {"type": "verification/selfie", "id": "ver_9",
             "attributes": {"center-photo-url": "https://files.withpersona.com/c.jpg?access_token=t9"}}
        ]
    })));
    assert_eq!(
        names(&files, Section::Selfie),
        ["self_1-center-photo.jpg", "self_1-left-photo.jpg"]
    );
}

#[test]
fn selfies_from_verification_objects_only() {
    let files = files_of(&fixture("verifications-only.json"));
    assert_eq!(
        names(&files, Section::Document),
        [
            "ver_G1-front-photo.jpg",
            "ver_G1-back-photo.jpg",
            "ver_G1-normalized-front-photo.jpg",
        ]
    );
    assert_eq!(
        names(&files, Section::Selfie),
        [
            "ver_S1-center-photo.jpg",
            "ver_S1-left-photo.png",
            "ver_S1-video.webm"
        ]
    );
}

#[test]
fn redacted_inquiry_has_no_files() {
    let inquiry = fixture("redacted.json");
    assert!(inquiry.redacted_at.is_some());
    assert!(files_of(&inquiry).is_empty());
    // Even if a stale body still carried URLs.
    let mut stale = fixture("several-documents.json");
    stale.redacted_at = inquiry.redacted_at;
    assert!(files_of(&stale).is_empty());
}

#[test]
fn hostile_names_are_sanitized() {
    let files = files_of(&fixture("hostile-names.json"));
    let names = names(&files, Section::Document);
    for name in &names {
        assert!(!name.contains('/') && !name.contains('\0'), "{name:?}");
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(name.len() <= 255, "{} bytes", name.len());
        assert!(*name != "." && *name != "..");
    }
    let unique: HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    assert_eq!(names[0], "doc_.._evil-.._x.bin");
    assert_eq!(names[1], "doc_.._evil-a_b.pdf");
    assert_eq!(names[2], "doc_.._evil-line_break.jpg");
    assert_eq!(names[3], "doc_.._evil-_etc_passwd.bin");
    assert_eq!(names[4], "doc_.._evil-résumé-日本.pdf");
    assert_eq!(names[5], "doc_.._evil-...bin");
    // 1000-byte names are cut to 255 bytes at a character boundary, keeping suffix and
    // extension, and stay distinct.
    let long: Vec<_> = names.iter().filter(|n| n.len() > 200).collect();
    assert_eq!(long.len(), 3, "{names:?}");
    assert!(
        long[0].ends_with("éé.pdf") || long[0].ends_with("é.pdf"),
        "{}",
        long[0]
    );
    assert!(long[1].ends_with("-2.pdf"), "{}", long[1]);
    assert!(long[2].ends_with(".jpg"), "{}", long[2]);
    assert!(long.iter().all(|n| n.len() <= 255 && n.len() >= 250));
}

#[test]
fn truncation_keeps_utf8_and_extension() {
    let name = build_name("doc_1", &"日".repeat(400), "pdf", 1).unwrap();
    assert!(name.len() <= MAX_NAME_BYTES && name.ends_with("日.pdf"));
    let name = build_name("doc_1", &"x".repeat(400), "pdf", 12).unwrap();
    assert_eq!(name.len(), MAX_NAME_BYTES);
    assert!(name.ends_with("x-12.pdf"));
    assert_eq!(truncate_utf8("aé", 2), "a");
    assert_eq!(sanitize("a/b\0c\nd\u{7f}e\u{85}f"), "a_b_c_d_e_f");
}

#[test]
fn extensions_come_from_filename_then_url_then_bin() {
    assert_eq!(extension("a.JPEG"), Some("JPEG"));
    assert_eq!(extension(".bashrc"), None);
    assert_eq!(extension("a."), None);
    assert_eq!(extension("x.tar/../y"), None);
    assert_eq!(extension("a.waytoolongext"), None);
    let c = named(
        "front-photo",
        Some("noext"),
        "https://f.example/p/img.png?access_token=t",
        None,
    );
    assert_eq!(c.ext, "png");
    let c = named(
        "front-photo",
        None,
        "https://f.example/p/img?access_token=t",
        None,
    );
    assert_eq!(c.ext, "bin");
    let c = named(
        "front-photo",
        Some("a.webp"),
        "https://f.example/img.png",
        None,
    );
    assert_eq!(c.ext, "webp");
}

#[test]
fn tolerates_nulls_and_odd_shapes() {
    let files = files_of(&inquiry_from(&json!({
        "data": {"id": "inq_n", "attributes": {"created-at": "2024-01-01T00:00:00Z"},
                 "relationships": {"documents": {"data": null}, "selfies": {"data": {}}}},
        "included": [
            {"type": "document/government-id", "id": "doc_n",
             "attributes": {"front-photo": null, "back-photo": {"filename": "b.jpg"}, "selfie-photo": 7}},
            {"type": "document/generic", "id": "doc_g",
             "attributes": {"files": null, "files-normalized": [null, 3, {"url": null}]}},
            {"type": "document/generic", "id": "doc_h", "attributes": {}},
            {"type": "unknown/thing", "id": "x_1", "attributes": {"files": [{"url": "https://files.withpersona.com/z.pdf"}]}},
            {"type": "verification/selfie", "id": "ver_n", "attributes": null}
        ]
    })));
    assert!(files.is_empty(), "{files:?}");
}

#[test]
fn inquiry_json_has_no_tokens_and_ends_in_newline() {
    let inquiry = fixture("several-documents.json");
    let raw = inquiry.raw.to_string();
    assert!(raw.contains("access_token=tok-"), "fixture has tokens");
    let out = inquiry_json(&inquiry);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.ends_with("}\n"));
    assert!(!text.contains("tok-"), "{text}");
    assert!(!text.contains("OLDTOKEN"), "{text}");
    assert!(text.contains("access_token=REDACTED"));
    let back: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(back["data"]["id"], "inq_several");
    assert_eq!(
        back["included"].as_array().unwrap().len(),
        inquiry.raw["included"].as_array().unwrap().len()
    );
}

#[test]
fn fetched_at_does_not_change_names() {
    let mut a = fixture("verifications-only.json");
    let before = files_of(&a);
    a.fetched_at += Duration::from_secs(3600);
    assert_eq!(files_of(&a), before);
}
