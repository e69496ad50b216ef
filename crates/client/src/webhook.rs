//! Checking a webhook's `Persona-Signature` header: `t=<unix time>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, one `t=…,v1=…` pair per active secret, space-separated (two during a
//! secret rotation). Pure: the caller gives the time, the secrets and the raw body. Nothing
//! of the body is parsed before this says yes.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a signature's time may be from ours (Persona's advice: 5 minutes).
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// Why a signature was refused (safe to log: it names no secret and no body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Persona-Signature header")]
    Missing,
    #[error("the Persona-Signature header is malformed")]
    Malformed,
    #[error("the signature's time is more than 5 minutes from ours")]
    Stale,
    #[error("no signature matches a configured secret")]
    Mismatch,
}

/// Check `header` (the `Persona-Signature` value, if any) for `body` against `secrets`, at
/// unix time `now`. Any `v1` that matches any secret, with a time within [`TOLERANCE`],
/// accepts.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let mut pairs = Vec::new();
    for pair in header.split_whitespace() {
        let mut t = None;
        let mut v1 = Vec::new();
        for part in pair.split(',') {
            match part.split_once('=') {
                Some(("t", value)) => {
                    t = Some(
                        value
                            .parse::<i64>()
                            .map_err(|_| SignatureError::Malformed)?,
                    )
                }
                Some(("v1", value)) => {
                    v1.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?)
                }
                Some(_) => {} // another scheme: ignored, as Persona advises
                None => return Err(SignatureError::Malformed),
            }
        }
        let t = t.ok_or(SignatureError::Malformed)?;
        if v1.is_empty() {
            return Err(SignatureError::Malformed);
        }
        pairs.push((t, v1));
    }
    let mut stale = false;
    for (t, signatures) in &pairs {
        if now.abs_diff(*t) > TOLERANCE.as_secs() {
            stale = true;
            continue;
        }
        for secret in secrets {
            for sig in signatures {
                let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
                    continue;
                };
                mac.update(format!("{t}.").as_bytes());
                mac.update(body);
                // Constant time: `verify_slice` compares without an early exit.
                if mac.verify_slice(sig).is_ok() {
                    return Ok(());
                }
            }
        }
    }
    Err(if stale {
        SignatureError::Stale
    } else {
        SignatureError::Mismatch
    })
}

/// A signature header for `body` at `t`, one pair per secret (as Persona sends it); for
/// tests and tools.
pub fn sign(secrets: &[String], t: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| {
            let mut mac =
                HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
            mac.update(format!("{t}.").as_bytes());
            mac.update(body);
            format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The secrets of a secrets file: one per line, blank lines and `#` comments skipped.
pub fn parse_secrets(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"data":{"type":"event","id":"evt_1"}}"#;

    fn secrets(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_good_signature_is_accepted() {
        let header = sign(&secrets(&["whsec_a"]), NOW, BODY);
        assert_eq!(
            verify(Some(&header), BODY, &secrets(&["whsec_a"]), NOW + 10),
            Ok(())
        );
    }

    #[test]
    fn a_rotated_pair_is_accepted_by_either_secret() {
        let header = sign(&secrets(&["whsec_old", "whsec_new"]), NOW, BODY);
        for ours in [
            &["whsec_old"][..],
            &["whsec_new"],
            &["whsec_x", "whsec_new"],
        ] {
            assert_eq!(verify(Some(&header), BODY, &secrets(ours), NOW), Ok(()));
        }
        // One header pair holding two v1 values.
        let one = sign(&secrets(&["whsec_new"]), NOW, BODY);
        let v1 = one.split_once("v1=").unwrap().1;
        let header = format!("t={NOW},v1={},v1={v1}", "00".repeat(32));
        assert_eq!(
            verify(Some(&header), BODY, &secrets(&["whsec_new"]), NOW),
            Ok(())
        );
    }

    #[test]
    fn a_wrong_secret_or_another_body_is_refused() {
        let header = sign(&secrets(&["whsec_a"]), NOW, BODY);
        assert_eq!(
            verify(Some(&header), BODY, &secrets(&["whsec_b"]), NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), b"{}", &secrets(&["whsec_a"]), NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), BODY, &[], NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_stale_time_is_refused() {
        let s = secrets(&["whsec_a"]);
        let header = sign(&s, NOW, BODY);
        assert_eq!(verify(Some(&header), BODY, &s, NOW + 300), Ok(()));
        assert_eq!(
            verify(Some(&header), BODY, &s, NOW + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&header), BODY, &s, NOW - 301),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn a_missing_header_is_refused() {
        let s = secrets(&["whsec_a"]);
        assert_eq!(verify(None, BODY, &s, NOW), Err(SignatureError::Missing));
        assert_eq!(
            verify(Some("  "), BODY, &s, NOW),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn a_malformed_header_is_refused() {
        let s = secrets(&["whsec_a"]);
        let good = sign(&s, NOW, BODY);
        let v1 = good.split_once("v1=").unwrap().1.to_string();
        for bad in [
            format!("v1={v1}"),
            format!("t=soon,v1={v1}"),
            format!("t={NOW}"),
            format!("t={NOW},v1=zz{v1}"),
            format!("t={NOW};v1={v1}"),
            "garbage".to_string(),
        ] {
            assert_eq!(
                verify(Some(&bad), BODY, &s, NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_files_take_one_per_line() {
        assert_eq!(
            parse_secrets("# rotation\nwhsec_a\n\n  whsec_b  \n"),
            ["whsec_a", "whsec_b"]
        );
    }
}
