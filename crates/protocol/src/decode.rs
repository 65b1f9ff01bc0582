//! The one decoder every receiver uses: bounded in size, strict in fields,
//! and every refusal a [`DecodeError`] whose text says what to fix.
//!
//! Untrusted input is parsed twice, both times by serde_json (whose nesting
//! limit bounds the stack): first only the head (`type` and the optional
//! `productKey`/`deviceKey`), so an unknown type or a foreign device is named
//! as such, then the whole message into its type, then field rules.

use serde::Deserialize;
use sota_engine::{Status, MAX_PLANS};

use crate::message::{
    Down, ErrorCode, Job, PackageType, PlanOffer, Up, MAX_COMPONENTS, MAX_MESSAGE_CHARS,
};
use crate::topic::DeviceId;

/// Largest device → center message, bytes.
pub const MAX_UP_BYTES: usize = 16 * 1024;
/// Largest center → device message, bytes (20 plans with texts in many languages).
pub const MAX_DOWN_BYTES: usize = 1024 * 1024;

const UP_TYPES: &[&str] = &[
    "register", "versions", "request", "accept", "refuse", "status",
];
const DOWN_TYPES: &[&str] = &["registered", "plans", "firmware", "error"];

/// Why a message was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Over the size limit.
    #[error("the message has {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a JSON document.
    #[error("the message is not JSON ({0}); send one JSON object with a \"type\" field")]
    NotJson(String),
    /// No string `type`.
    #[error(
        "the message has no \"type\" string; send a JSON object such as {{\"type\":\"request\"}}"
    )]
    MissingType,
    /// A type this side does not know.
    #[error("unknown message type {0:?}; known types: {1}")]
    UnknownType(String, String),
    /// A known type with missing or invalid fields.
    #[error("the {kind:?} message is invalid: {detail}")]
    Invalid {
        /// The message's type.
        kind: String,
        /// What is wrong.
        detail: String,
    },
    /// The payload names another device than the topic it came on.
    #[error("the message names device {named} but came on the topic of {topic}; a device speaks only for itself")]
    WrongDevice {
        /// The device the payload names.
        named: String,
        /// The device of the topic.
        topic: String,
    },
}

impl DecodeError {
    /// The code sent back in a [`Down::Error`].
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::TooLarge { .. } => ErrorCode::TooLarge,
            DecodeError::NotJson(_) => ErrorCode::BadJson,
            DecodeError::MissingType => ErrorCode::MissingType,
            DecodeError::UnknownType(..) => ErrorCode::UnknownType,
            DecodeError::Invalid { .. } => ErrorCode::InvalidMessage,
            DecodeError::WrongDevice { .. } => ErrorCode::WrongDevice,
        }
    }

    /// The error answer for the sender.
    pub fn to_down(&self) -> Down {
        Down::error(self.code(), self.to_string())
    }
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
    #[serde(rename = "productKey")]
    product: Option<String>,
    #[serde(rename = "deviceKey")]
    device: Option<String>,
}

fn not_json(e: serde_json::Error) -> DecodeError {
    match e.classify() {
        serde_json::error::Category::Data => {
            DecodeError::NotJson(format!("{e}: the top level must be an object"))
        }
        _ => DecodeError::NotJson(e.to_string()),
    }
}

fn head<'a>(
    bytes: &[u8],
    max: usize,
    known: &'a [&'a str],
) -> Result<(Head, &'a str), DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            max,
        });
    }
    let head: Head = serde_json::from_slice(bytes).map_err(not_json)?;
    let Some(serde_json::Value::String(kind)) = &head.kind else {
        return Err(DecodeError::MissingType);
    };
    let Some(known_kind) = known.iter().find(|k| **k == kind.as_str()) else {
        let shown: String = kind.chars().take(64).collect();
        return Err(DecodeError::UnknownType(shown, known.join(", ")));
    };
    Ok((head, known_kind))
}

fn invalid(kind: &str, detail: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        kind: kind.to_string(),
        detail: detail.into(),
    }
}

/// A component identity or version: 1–64 printable ASCII characters, no spaces
/// (the center's rule for both).
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic())
}

fn token(kind: &str, field: &str, value: &str) -> Result<(), DecodeError> {
    if is_token(value) {
        Ok(())
    } else {
        Err(invalid(
            kind,
            format!("{field} must be 1 to 64 printable ASCII characters without spaces"),
        ))
    }
}

fn plan_id(kind: &str, id: i64) -> Result<(), DecodeError> {
    if Job::from_plan_id(id).is_some() {
        Ok(())
    } else {
        Err(invalid(
            kind,
            "planId must be the planId of a plans message (a plan, or a negative verification job), not 0",
        ))
    }
}

fn message(kind: &str, text: &str) -> Result<(), DecodeError> {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        Ok(())
    } else {
        Err(invalid(
            kind,
            format!("message has more than {MAX_MESSAGE_CHARS} characters"),
        ))
    }
}

/// Decode a device's message that arrived on `from`'s `up` topic.
pub fn decode_up(bytes: &[u8], from: &DeviceId) -> Result<Up, DecodeError> {
    let (head, kind) = head(bytes, MAX_UP_BYTES, UP_TYPES)?;
    for (named, own) in [(&head.product, &from.product), (&head.device, &from.device)] {
        if let Some(named) = named {
            if named != own {
                let (product, device) = (
                    head.product.as_deref().unwrap_or(&from.product),
                    head.device.as_deref().unwrap_or(&from.device),
                );
                return Err(DecodeError::WrongDevice {
                    named: format!(
                        "{}/{}",
                        product.chars().take(64).collect::<String>(),
                        device.chars().take(64).collect::<String>()
                    ),
                    topic: from.to_string(),
                });
            }
        }
    }
    let up: Up = serde_json::from_slice(bytes).map_err(|e| invalid(kind, e.to_string()))?;
    check_up(kind, &up)?;
    Ok(up)
}

fn check_up(kind: &str, up: &Up) -> Result<(), DecodeError> {
    match up {
        Up::Request => Ok(()),
        Up::Register { product_secret } => token(kind, "productSecret", product_secret),
        Up::Versions { components } => {
            if components.is_empty() || components.len() > MAX_COMPONENTS {
                return Err(invalid(
                    kind,
                    format!("components must list 1 to {MAX_COMPONENTS} components"),
                ));
            }
            for (i, c) in components.iter().enumerate() {
                token(kind, "compNo", &c.comp_no)?;
                token(kind, "version", &c.version)?;
                if components[..i].iter().any(|o| o.comp_no == c.comp_no) {
                    return Err(invalid(
                        kind,
                        format!("component {:?} appears twice", c.comp_no),
                    ));
                }
            }
            Ok(())
        }
        Up::Accept {
            plan_id: id,
            comp_no,
            message: text,
        } => {
            plan_id(kind, *id)?;
            token(kind, "compNo", comp_no)?;
            message(kind, text)
        }
        Up::Refuse {
            plan_id: id,
            comp_no,
            message: text,
        } => {
            plan_id(kind, *id)?;
            token(kind, "compNo", comp_no)?;
            message(kind, text)
        }
        Up::Status(s) => {
            plan_id(kind, s.plan_id)?;
            token(kind, "compNo", &s.comp_no)?;
            message(kind, &s.message)?;
            if let Some(v) = &s.version {
                token(kind, "version", v)?;
            }
            match s.percent {
                Some(p) if s.status != Status::Downloading => Err(invalid(
                    kind,
                    format!("percent ({p}) goes only with status 5 (downloading)"),
                )),
                Some(p) if p > 100 => Err(invalid(kind, format!("percent {p} is over 100"))),
                _ => Ok(()),
            }
        }
    }
}

/// Decode a center's message (a device's side of the channel).
pub fn decode_down(bytes: &[u8]) -> Result<Down, DecodeError> {
    let (_, kind) = head(bytes, MAX_DOWN_BYTES, DOWN_TYPES)?;
    let down: Down = serde_json::from_slice(bytes).map_err(|e| invalid(kind, e.to_string()))?;
    if let Down::Plans { plans } = &down {
        if plans.len() > MAX_PLANS {
            return Err(invalid(
                kind,
                format!(
                    "{} plans; a device takes at most {MAX_PLANS} at once",
                    plans.len()
                ),
            ));
        }
        for p in plans {
            check_offer(kind, p)?;
        }
    }
    Ok(down)
}

fn check_offer(kind: &str, p: &PlanOffer) -> Result<(), DecodeError> {
    plan_id(kind, p.plan_id)?;
    token(kind, "compNo", &p.comp_no)?;
    token(kind, "tgtVer", &p.tgt_ver)?;
    match (p.package_type, p.src_ver.is_empty()) {
        (PackageType::Full, true) => Ok(()),
        (PackageType::Delta, false) => token(kind, "srcVer", &p.src_ver),
        (PackageType::Full, false) => Err(invalid(kind, "a full package's srcVer must be empty")),
        (PackageType::Delta, true) => Err(invalid(kind, "a delta package needs its srcVer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> DeviceId {
        DeviceId::new("p", "d").unwrap()
    }

    #[test]
    fn each_refusal_has_its_code() {
        let cases: &[(&[u8], ErrorCode)] = &[
            (b"{", ErrorCode::BadJson),
            (b"[1,2]", ErrorCode::BadJson),
            (b"{}", ErrorCode::MissingType),
            (br#"{"type":7}"#, ErrorCode::MissingType),
            (br#"{"type":"reboot"}"#, ErrorCode::UnknownType),
            (
                br#"{"type":"accept","planId":1}"#,
                ErrorCode::InvalidMessage,
            ),
            (
                br#"{"type":"accept","planId":0,"compNo":"A"}"#,
                ErrorCode::InvalidMessage,
            ),
            (
                br#"{"type":"status","planId":1,"compNo":"A","status":7}"#,
                ErrorCode::InvalidMessage,
            ),
            (
                br#"{"type":"status","planId":1,"compNo":"A","status":9,"percent":5}"#,
                ErrorCode::InvalidMessage,
            ),
            (
                br#"{"type":"versions","components":[]}"#,
                ErrorCode::InvalidMessage,
            ),
            (
                br#"{"type":"request","deviceKey":"other"}"#,
                ErrorCode::WrongDevice,
            ),
            (
                br#"{"type":"request","productKey":"q"}"#,
                ErrorCode::WrongDevice,
            ),
        ];
        for (bytes, code) in cases {
            let e = decode_up(bytes, &me()).unwrap_err();
            assert_eq!(e.code(), *code, "{} -> {e}", String::from_utf8_lossy(bytes));
        }
        let big = vec![b' '; MAX_UP_BYTES + 1];
        assert_eq!(
            decode_up(&big, &me()).unwrap_err().code(),
            ErrorCode::TooLarge
        );
    }

    #[test]
    fn plan_ids_name_plans_and_verification_jobs() {
        assert_eq!(Job::from_plan_id(7), Some(Job::Plan(7)));
        assert_eq!(Job::from_plan_id(-7), Some(Job::Verification(7)));
        assert_eq!(Job::from_plan_id(0), None);
        assert_eq!(Job::from_plan_id(i64::MIN), None);
        assert_eq!(Job::Verification(7).plan_id(), -7);
        let up = decode_up(br#"{"type":"accept","planId":-3,"compNo":"A"}"#, &me()).unwrap();
        assert_eq!(up, Up::accept(-3, "A"));
    }

    #[test]
    fn own_device_in_payload_is_fine() {
        let up = decode_up(
            br#"{"type":"request","productKey":"p","deviceKey":"d"}"#,
            &me(),
        )
        .unwrap();
        assert_eq!(up, Up::Request);
    }

    #[test]
    fn unknown_type_names_the_known_ones() {
        let e = decode_up(br#"{"type":"reboot"}"#, &me())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"reboot\"") && e.contains("request"), "{e}");
    }
}
