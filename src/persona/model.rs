//! STUB — the client work replaces this file.

#[derive(Debug, Clone)]
pub struct IncludedObject {
    pub kind: String,
    pub id: String,
    pub attributes: serde_json::Value,
}
