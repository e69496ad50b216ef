//! Reading what a server sends, bounded: a body is taken a chunk at a time up to a size cap
//! and before a deadline, so neither a huge body nor one that trickles can hold memory or a
//! caller for longer than the configuration allows.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::header::CONTENT_LENGTH;
use tokio::time::Instant;

use crate::client::network_error;
use crate::{Error, Result};

/// Error bodies are only read for Persona's `title`/`details`: a few KiB say it all.
pub const ERROR_BODY_CAP: usize = 64 * 1024;

/// The instant by which one operation must be over, and the limit it came from (for
/// messages).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub limit: Duration,
}

impl Deadline {
    pub fn after(limit: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + limit,
            limit,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether a pause of `wait` from now would end past the deadline.
    pub fn too_late_after(&self, wait: Duration) -> bool {
        Instant::now() + wait >= self.at
    }

    /// What a request that ran out of time fails with.
    pub fn passed(&self, context: &str, waiting_for: &str) -> Error {
        Error::Network {
            context: context.to_string(),
            message: format!(
                "timed out: {waiting_for} was not over within the {} s deadline (--io-timeout)",
                secs(self.limit)
            ),
        }
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s:.1}")
    }
}

/// The whole body of `resp`, at most `cap` bytes, complete before `deadline` (and with no
/// gap between chunks longer than `idle`). A `Content-Length` over the cap fails before any
/// byte is read; a body that grows past it fails at the first chunk beyond it.
pub async fn read_capped(
    resp: reqwest::Response,
    cap: u64,
    deadline: &Deadline,
    idle: Duration,
    context: &str,
) -> Result<Bytes> {
    let announced = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = announced.filter(|&len| len > cap) {
        return Err(Error::TooLarge {
            context: context.to_string(),
            limit: cap,
            announced: Some(len),
        });
    }
    // Room for what was announced (within the cap), else grown as it comes.
    let mut body = BytesMut::with_capacity(announced.unwrap_or(0).min(cap) as usize);
    let mut stream = resp.bytes_stream();
    loop {
        let until = deadline.at.min(Instant::now() + idle);
        let chunk = match tokio::time::timeout_at(until, stream.next()).await {
            Err(_) if Instant::now() >= deadline.at => {
                return Err(deadline.passed(context, "reading the body"));
            }
            Err(_) => {
                return Err(Error::Network {
                    context: context.to_string(),
                    message: format!("timed out: no data for {} s", secs(idle)),
                });
            }
            Ok(None) => return Ok(body.freeze()),
            Ok(Some(Err(e))) => return Err(network_error(context, e)),
            Ok(Some(Ok(chunk))) => chunk,
        };
        if body.len() as u64 + chunk.len() as u64 > cap {
            return Err(Error::TooLarge {
                context: context.to_string(),
                limit: cap,
                announced,
            });
        }
        body.extend_from_slice(&chunk);
    }
}

/// An error body, read only up to [`ERROR_BODY_CAP`] and for at most `wait`: it is only for
/// the message.
pub async fn read_error_body(resp: reqwest::Response, wait: Duration) -> Vec<u8> {
    let until = Instant::now() + wait;
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(until, stream.next()).await {
        let room = ERROR_BODY_CAP.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= ERROR_BODY_CAP {
            break;
        }
    }
    body
}

/// The longest string kept from an inquiry. Persona's longest are signed URLs and free-text
/// fields of a few KiB; a longer one is cut (see [`cut_long_strings`]) so that one attribute
/// cannot fill memory, the metadata store and `inquiry.json`.
pub const MAX_STRING_BYTES: usize = 64 * 1024;
/// What is kept of a string cut for its length.
const CUT_KEEP_BYTES: usize = 1024;
/// The largest `inquiry.json` served, pretty-printed (a real one is well under 1 MiB).
pub const MAX_INQUIRY_JSON: usize = 16 << 20;

/// Cut every string of `value` longer than `max` bytes (keys too) to its first KiB and a note
/// of its length; how many were cut.
pub fn cut_long_strings(value: &mut serde_json::Value, max: usize) -> usize {
    use serde_json::Value;
    let cut = |s: &mut String| {
        let keep = crate::files::truncate_utf8(s, CUT_KEEP_BYTES.min(max)).to_string();
        *s = format!("{keep}… [cut by personafs: {} bytes in all]", s.len());
    };
    let mut count = 0;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if s.len() > max => {
                cut(s);
                count += 1;
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(map) => {
                if map.keys().any(|k| k.len() > max) {
                    let entries = std::mem::take(map);
                    for (mut k, v) in entries {
                        if k.len() > max {
                            cut(&mut k);
                            count += 1;
                        }
                        map.insert(k, v);
                    }
                }
                stack.extend(map.values_mut());
            }
            _ => {}
        }
    }
    count
}

/// `n` bytes in the unit that reads best (`64 MiB`, `1.5 KiB`, `300 bytes`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            let v = n as f64 / size as f64;
            return if n.is_multiple_of(size) {
                format!("{} {unit}", n / size)
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_are_cut_with_a_note() {
        let long = "é".repeat(MAX_STRING_BYTES);
        let mut v = serde_json::json!({"a": [long.clone(), "short"], long.clone(): {"b": long}});
        assert_eq!(cut_long_strings(&mut v, MAX_STRING_BYTES), 3);
        let text = v.to_string();
        assert!(text.len() < 8 * 1024, "{}", text.len());
        assert!(
            text.contains("[cut by personafs: 131072 bytes in all]"),
            "{text}"
        );
        assert!(text.contains("short"));
        let mut small = serde_json::json!({"a": "x"});
        assert_eq!(cut_long_strings(&mut small, MAX_STRING_BYTES), 0);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(300), "300 bytes");
    }

    #[tokio::test]
    async fn deadlines_know_what_is_too_late() {
        let d = Deadline::after(Duration::from_secs(10));
        assert!(!d.too_late_after(Duration::from_secs(1)));
        assert!(d.too_late_after(Duration::from_secs(11)));
        let e = d.passed("retrieve inquiry inq_1", "the answer").to_string();
        assert!(e.contains("10 s deadline"), "{e}");
    }
}
