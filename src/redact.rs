//! Keeping secrets out of logs, errors and `inquiry.json`.
//!
//! Stub: the persona client helper owns this file.
