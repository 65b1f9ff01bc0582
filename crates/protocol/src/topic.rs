//! Topics and broker identities: `sota/<product>/<device>/up` carries a
//! device's messages to the center, `…/down` the center's to the device.
//!
//! A device logs in with the username `<product>&<device>` (QuecThing's
//! `productKey&deviceKey`) and the same text as its MQTT client id; it may
//! publish only on its `up` topic and subscribe only to its `down` topic.

use std::fmt;

/// Prefix of every channel topic.
pub const PREFIX: &str = "sota";
/// The filter the center subscribes to: every device's `up` topic.
pub const UP_FILTER: &str = "sota/+/+/up";
/// The username (and client id) the center logs in with.
pub const CENTER_USERNAME: &str = "sota-center";
/// Separates product and device key in a device's username.
pub const USERNAME_SEPARATOR: char = '&';

/// Which way a topic carries messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Device → center.
    Up,
    /// Center → device.
    Down,
}

/// A device as the channel names it: product key and device key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId {
    /// Product key.
    pub product: String,
    /// Device key, unique within the product.
    pub device: String,
}

/// Whether `key` is a valid product or device key: 1–64 of `A-Z a-z 0-9 _ - .`
/// (the center's rule; no MQTT wildcard, separator or `&` can appear).
pub fn is_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl DeviceId {
    /// A device id, if both keys are valid.
    pub fn new(product: &str, device: &str) -> Option<Self> {
        (is_key(product) && is_key(device)).then(|| Self {
            product: product.to_string(),
            device: device.to_string(),
        })
    }

    /// The topic a device publishes on.
    pub fn up(&self) -> String {
        format!("{PREFIX}/{}/{}/up", self.product, self.device)
    }

    /// The topic a device subscribes to.
    pub fn down(&self) -> String {
        format!("{PREFIX}/{}/{}/down", self.product, self.device)
    }

    /// The device's MQTT username and client id: `<product>&<device>`.
    pub fn username(&self) -> String {
        format!("{}{USERNAME_SEPARATOR}{}", self.product, self.device)
    }

    /// The device a username names, if it is a device username.
    pub fn from_username(username: &str) -> Option<Self> {
        let (product, device) = username.split_once(USERNAME_SEPARATOR)?;
        Self::new(product, device)
    }

    /// The device and direction of a channel topic; `None` for any other topic.
    pub fn parse_topic(topic: &str) -> Option<(Self, Direction)> {
        let mut parts = topic.split('/');
        let (prefix, product, device, dir) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if prefix != PREFIX || parts.next().is_some() {
            return None;
        }
        let dir = match dir {
            "up" => Direction::Up,
            "down" => Direction::Down,
            _ => return None,
        };
        Some((Self::new(product, device)?, dir))
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.product, self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_usernames_round_trip() {
        let d = DeviceId::new("p1", "dev-1.a").unwrap();
        assert_eq!(d.up(), "sota/p1/dev-1.a/up");
        assert_eq!(d.down(), "sota/p1/dev-1.a/down");
        assert_eq!(
            DeviceId::parse_topic(&d.up()),
            Some((d.clone(), Direction::Up))
        );
        assert_eq!(
            DeviceId::parse_topic(&d.down()),
            Some((d.clone(), Direction::Down))
        );
        assert_eq!(DeviceId::from_username(&d.username()), Some(d));
    }

    #[test]
    fn wildcards_and_strangers_are_no_device() {
        for t in [
            "sota/+/d/up",
            "sota/p/#",
            "sota/p/d/up/x",
            "other/p/d/up",
            "sota/p/d/side",
            "sota//d/up",
        ] {
            assert_eq!(DeviceId::parse_topic(t), None, "{t}");
        }
        for u in ["sota-center", "p&", "&d", "p&d&e", "p&d/x", "p&+"] {
            assert_eq!(DeviceId::from_username(u), None, "{u}");
        }
        assert!(!is_key(&"k".repeat(65)));
    }
}
