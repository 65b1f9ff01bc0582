//! Field rules shared by several bodies: keys, display names, identities and versions.

use crate::Refusal;

/// Check a key (product or device): 1–64 of `A-Z a-z 0-9 _ - .`.
pub fn check_key(what: &str, key: &str) -> Result<(), Refusal> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Refusal::invalid(
            "invalid_key",
            format!("{what} {key:?} is not valid: use 1 to 64 characters from A-Z, a-z, 0-9, '_', '-', '.'"),
        ))
    }
}

/// Check a display name: 1–128 characters, not only spaces.
pub fn check_name(what: &str, name: &str) -> Result<(), Refusal> {
    if name.trim().is_empty() || name.chars().count() > 128 {
        return Err(Refusal::invalid(
            "invalid_name",
            format!("{what} must have 1 to 128 characters and not be blank"),
        ));
    }
    Ok(())
}

/// Check a component identity or version string: 1–64 printable, no spaces.
pub fn check_token(what: &str, value: &str) -> Result<(), Refusal> {
    if value.is_empty() || value.len() > 64 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Refusal::invalid(
            "invalid_value",
            format!("{what} {value:?} is not valid: use 1 to 64 printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}
