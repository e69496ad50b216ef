//! Signed file tokens: url-safe base64 of (kind, expiry, file key) followed by an
//! HMAC-SHA256 tag under a per-server random secret. Nothing outside the server can mint one,
//! and a token for one file cannot be edited into a token for another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const TAG_LEN: usize = 32;
/// kind (1 byte) + expiry (8 bytes, big endian).
const HEADER_LEN: usize = 9;

/// Which URL form a token belongs to; a token of one form is refused by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `files host/<name>?access_token=…`: expires, needs no API key.
    Signed,
    /// `api host/api/v1/files/<token>/<name>`: never expires, needs the API key.
    Legacy,
}

impl TokenKind {
    fn byte(self) -> u8 {
        match self {
            TokenKind::Signed => b's',
            TokenKind::Legacy => b'l',
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token we minted (bad encoding, wrong tag, wrong kind).
    Forged,
    /// A genuine token past its expiry.
    Expired,
}

/// Mints and checks tokens with one secret.
pub struct Signer {
    secret: [u8; 32],
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer { secret: <hidden> }")
    }
}

impl Signer {
    pub fn random() -> Signer {
        Signer {
            secret: rand::random(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts any key length")
    }

    /// A token for `key`, valid until `expires_ms` (unix milliseconds; ignored for legacy).
    pub fn mint(&self, kind: TokenKind, key: &str, expires_ms: u64) -> String {
        let mut payload = Vec::with_capacity(HEADER_LEN + key.len() + TAG_LEN);
        payload.push(kind.byte());
        payload.extend_from_slice(&expires_ms.to_be_bytes());
        payload.extend_from_slice(key.as_bytes());
        let mut mac = self.mac();
        mac.update(&payload);
        payload.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// The file key of a genuine, unexpired token of `kind`.
    pub fn verify(&self, kind: TokenKind, token: &str, now_ms: u64) -> Result<String, TokenError> {
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| TokenError::Forged)?;
        if raw.len() < HEADER_LEN + TAG_LEN {
            return Err(TokenError::Forged);
        }
        let (payload, tag) = raw.split_at(raw.len() - TAG_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_slice(tag).map_err(|_| TokenError::Forged)?;
        if payload[0] != kind.byte() {
            return Err(TokenError::Forged);
        }
        let expires_ms = u64::from_be_bytes(payload[1..HEADER_LEN].try_into().expect("8 bytes"));
        let key =
            String::from_utf8(payload[HEADER_LEN..].to_vec()).map_err(|_| TokenError::Forged)?;
        if kind == TokenKind::Signed && now_ms >= expires_ms {
            return Err(TokenError::Expired);
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_expiry() {
        let s = Signer::random();
        let t = s.mint(TokenKind::Signed, "doc_1/front", 1_000);
        assert_eq!(s.verify(TokenKind::Signed, &t, 999).unwrap(), "doc_1/front");
        assert_eq!(
            s.verify(TokenKind::Signed, &t, 1_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn legacy_tokens_never_expire_and_kinds_do_not_mix() {
        let s = Signer::random();
        let t = s.mint(TokenKind::Legacy, "k", 0);
        assert_eq!(s.verify(TokenKind::Legacy, &t, u64::MAX).unwrap(), "k");
        assert_eq!(s.verify(TokenKind::Signed, &t, 0), Err(TokenError::Forged));
    }

    #[test]
    fn forged_tokens_are_refused() {
        let s = Signer::random();
        let t = s.mint(TokenKind::Signed, "key-a", u64::MAX);
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[HEADER_LEN] ^= 1; // change the key, keep the tag
        let edited = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(
            s.verify(TokenKind::Signed, &edited, 0),
            Err(TokenError::Forged)
        );
        assert_eq!(
            s.verify(TokenKind::Signed, "not base64!", 0),
            Err(TokenError::Forged)
        );
        let other = Signer::random();
        assert_eq!(
            other.verify(TokenKind::Signed, &t, 0),
            Err(TokenError::Forged)
        );
    }
}
