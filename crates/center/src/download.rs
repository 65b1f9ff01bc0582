//! Per-device, expiring download links.
//!
//! A link token is `<package>.<position>.<hex device key>.<expiry unix s>.<mac>`
//! with an HMAC-SHA256 over the rest under a secret kept in the database. It
//! is checked without a database lookup, so the download path stays as fast
//! as the store allows, and a link leaked from one device expires on its own.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;

/// What a valid link grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Package id.
    pub package_id: i64,
    /// File position in the package.
    pub position: u32,
    /// The device the link was made for.
    pub device_key: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires: i64,
}

/// Signs and checks link tokens.
#[derive(Clone)]
pub struct LinkSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(..)")
    }
}

impl LinkSigner {
    /// A signer over `secret` (at least 16 bytes).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, body: &str) -> String {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(body.as_bytes());
        sota_engine::digest::hex(&mac.finalize().into_bytes())
    }

    /// The token for a grant.
    pub fn sign(&self, g: &Grant) -> String {
        let body = format!(
            "{}.{}.{}.{}",
            g.package_id,
            g.position,
            sota_engine::digest::hex(g.device_key.as_bytes()),
            g.expires
        );
        let mac = self.mac(&body);
        format!("{body}.{mac}")
    }

    /// Check a token at time `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<Grant, ApiError> {
        let invalid = || {
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "invalid_link",
                "this download link is not valid; ask the center for a new link for your device",
            )
        };
        let (body, mac) = token.rsplit_once('.').ok_or_else(invalid)?;
        let expected = self.mac(body);
        // Constant-time compare: the MAC must not leak through timing.
        if mac.len() != expected.len()
            || mac
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                != 0
        {
            return Err(invalid());
        }
        let mut parts = body.split('.');
        let mut next = || parts.next().ok_or_else(invalid);
        let package_id = next()?.parse().map_err(|_| invalid())?;
        let position = next()?.parse().map_err(|_| invalid())?;
        let key_hex = next()?;
        let expires: i64 = next()?.parse().map_err(|_| invalid())?;
        let key_bytes = (0..key_hex.len())
            .step_by(2)
            .map(|i| {
                key_hex
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(invalid)?;
        let device_key = String::from_utf8(key_bytes).map_err(|_| invalid())?;
        if now >= expires {
            return Err(ApiError::new(
                axum::http::StatusCode::GONE,
                "link_expired",
                "this download link has expired; ask the center for a new link for your device",
            ));
        }
        Ok(Grant {
            package_id,
            position,
            device_key,
            expires,
        })
    }
}

/// A parsed `Range` header: bytes `start..end` (end exclusive) of a `size`-byte file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send the whole file.
    Full,
    /// One satisfiable range.
    Part(u64, u64),
    /// The range lies outside the file (416).
    Unsatisfiable,
}

/// Interpret a `Range` header for a file of `size` bytes. Multiple ranges and
/// unknown units are answered with the whole file, which RFC 9110 allows.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix range: the last n bytes.
        let Ok(n) = b.parse::<u64>() else {
            return RangeRequest::Full;
        };
        if n == 0 || size == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Part(size.saturating_sub(n), size);
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeRequest::Full;
    };
    let end = if b.is_empty() {
        size
    } else {
        match b.parse::<u64>() {
            Ok(last) if last >= start => last.saturating_add(1).min(size),
            _ => return RangeRequest::Full,
        }
    };
    if start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_expire_tamper() {
        let s = LinkSigner::new(b"0123456789abcdef0123456789abcdef");
        let g = Grant {
            package_id: 7,
            position: 1,
            device_key: "dev-1".into(),
            expires: 1000,
        };
        let t = s.sign(&g);
        assert_eq!(s.verify(&t, 999).unwrap(), g);
        assert_eq!(s.verify(&t, 1000).unwrap_err().code, "link_expired");
        let forged = t.replacen("7.", "8.", 1);
        assert_eq!(s.verify(&forged, 0).unwrap_err().code, "invalid_link");
        assert_eq!(
            LinkSigner::new(b"another secret!!")
                .verify(&t, 0)
                .unwrap_err()
                .code,
            "invalid_link"
        );
        assert_eq!(s.verify("garbage", 0).unwrap_err().code, "invalid_link");
    }

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 10), Full);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), Part(0, 5));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Part(5, 10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Part(7, 10));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Part(0, 10));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Part(8, 10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), Full);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Full);
    }
}
