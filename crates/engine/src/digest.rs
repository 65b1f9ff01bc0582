//! One streaming pass that yields MD5, CRC32 (IEEE, as zlib) and SHA-256 of a firmware image.
//!
//! The image is fed in chunks of any size, so a caller never needs it whole in memory.

use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;

/// The three digests of a firmware image and its size, in the center's formats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    /// Size in bytes.
    pub size: u64,
    /// MD5, 32 lowercase hex digits.
    pub md5: String,
    /// CRC32 (IEEE 802.3, as zlib's `crc32`), 8 lowercase hex digits.
    pub crc32: String,
    /// SHA-256, 64 lowercase hex digits.
    pub sha256: String,
}

impl Digests {
    /// The CRC32 as a number (the AT SOTA protocol sends it in decimal).
    pub fn crc32_value(&self) -> u32 {
        u32::from_str_radix(&self.crc32, 16).unwrap_or(0)
    }
}

/// Computes [`Digests`] over data fed in chunks.
#[derive(Clone, Default)]
pub struct Digester {
    md5: Md5,
    sha256: Sha256,
    crc32: crc32fast::Hasher,
    size: u64,
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digester")
            .field("size", &self.size)
            .finish()
    }
}

impl Digester {
    /// A digester that has seen no bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of the image.
    pub fn update(&mut self, chunk: &[u8]) {
        self.md5.update(chunk);
        self.sha256.update(chunk);
        self.crc32.update(chunk);
        self.size += chunk.len() as u64;
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digests of everything fed.
    pub fn finish(self) -> Digests {
        Digests {
            size: self.size,
            md5: hex(&self.md5.finalize()),
            crc32: format!("{:08x}", self.crc32.finalize()),
            sha256: hex(&self.sha256.finalize()),
        }
    }

    /// Digests of a whole slice in one call.
    pub fn digest(data: &[u8]) -> Digests {
        let mut d = Self::new();
        d.update(data);
        d.finish()
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Why an expected digest typed or pasted by a person was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// A character that is not a hex digit.
    #[error("{kind}: '{ch}' at position {pos} is not a hex digit (0-9, a-f)")]
    NotHex {
        /// Which digest.
        kind: &'static str,
        /// The offending character.
        ch: char,
        /// Its 1-based position.
        pos: usize,
    },
    /// The right digits but not the right count.
    #[error("{kind}: expected {expected} hex digits, got {got}")]
    WrongLength {
        /// Which digest.
        kind: &'static str,
        /// How many digits this digest has.
        expected: usize,
        /// How many were given.
        got: usize,
    },
}

/// Normalizes a pasted digest: trims, drops an optional `0x`, lowercases, and checks length.
/// An empty input means "not given" and yields `Ok(None)`.
pub fn parse_expected(
    kind: &'static str,
    input: &str,
    digits: usize,
) -> Result<Option<String>, HexError> {
    let t = input.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.is_empty() {
        return Ok(None);
    }
    if let Some((i, ch)) = t.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(HexError::NotHex {
            kind,
            ch,
            pos: i + 1,
        });
    }
    if t.len() != digits {
        return Err(HexError::WrongLength {
            kind,
            expected: digits,
            got: t.chars().count(),
        });
    }
    Ok(Some(t.to_ascii_lowercase()))
}

/// Expected digests a person supplied, any subset of the three.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpectedDigests {
    /// Expected MD5, normalized.
    pub md5: Option<String>,
    /// Expected CRC32, normalized.
    pub crc32: Option<String>,
    /// Expected SHA-256, normalized.
    pub sha256: Option<String>,
}

/// How one expected digest compares with the computed one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No expectation was given.
    NotGiven,
    /// Equal.
    Match,
    /// Different.
    Mismatch,
}

impl ExpectedDigests {
    /// Parses the three inputs; empty ones are "not given".
    pub fn parse(md5: &str, crc32: &str, sha256: &str) -> Result<Self, HexError> {
        Ok(Self {
            md5: parse_expected("MD5", md5, 32)?,
            crc32: parse_expected("CRC32", crc32, 8)?,
            sha256: parse_expected("SHA-256", sha256, 64)?,
        })
    }

    /// Compares each given expectation with the computed digests: (md5, crc32, sha256).
    pub fn check(&self, got: &Digests) -> (Verdict, Verdict, Verdict) {
        fn v(exp: &Option<String>, got: &str) -> Verdict {
            match exp {
                None => Verdict::NotGiven,
                Some(e) if e == got => Verdict::Match,
                Some(_) => Verdict::Mismatch,
            }
        }
        (
            v(&self.md5, &got.md5),
            v(&self.crc32, &got.crc32),
            v(&self.sha256, &got.sha256),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input() {
        let d = Digester::digest(b"");
        assert_eq!(d.size, 0);
        assert_eq!(d.md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.crc32, "00000000");
        assert_eq!(
            d.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn abc() {
        let d = Digester::digest(b"abc");
        assert_eq!(d.size, 3);
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.crc32, "352441c2");
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.crc32_value(), 0x352441c2);
    }

    #[test]
    fn chunking_does_not_change_the_result() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = Digester::digest(&data);
        for chunk in [1, 3, 64, 1000, 4096] {
            let mut d = Digester::new();
            data.chunks(chunk).for_each(|c| d.update(c));
            assert_eq!(d.finish(), whole, "chunk size {chunk}");
        }
    }

    #[test]
    fn expected_parsing() {
        let e = ExpectedDigests::parse("", " 0x352441C2 ", "").unwrap();
        assert_eq!(e.crc32.as_deref(), Some("352441c2"));
        assert_eq!(e.md5, None);
        assert_eq!(
            ExpectedDigests::parse("zz", "", "").unwrap_err(),
            HexError::NotHex {
                kind: "MD5",
                ch: 'z',
                pos: 1
            }
        );
        assert_eq!(
            ExpectedDigests::parse("", "1234", "").unwrap_err(),
            HexError::WrongLength {
                kind: "CRC32",
                expected: 8,
                got: 4
            }
        );
        let msg = ExpectedDigests::parse("", "", "abcé")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("'é' at position 4"), "{msg}");
    }

    #[test]
    fn verdicts() {
        let d = Digester::digest(b"abc");
        let e = ExpectedDigests::parse("900150983cd24fb0d6963f7d28e17f72", "00000000", "").unwrap();
        assert_eq!(
            e.check(&d),
            (Verdict::Match, Verdict::Mismatch, Verdict::NotGiven)
        );
    }
}
