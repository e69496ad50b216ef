//! STUB — the client work replaces this file.

use super::{RemoteFile, RetrievedInquiry};

pub fn files_of(_inquiry: &RetrievedInquiry) -> Vec<RemoteFile> {
    todo!()
}

pub fn inquiry_json(_inquiry: &RetrievedInquiry) -> Vec<u8> {
    todo!()
}
