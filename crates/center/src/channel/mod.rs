//! The device channel: MQTT between the center and devices.
//!
//! `broker` runs the embedded broker and its access rules, `credentials`
//! decides logins and dynamic registration, `client` is the center's own MQTT
//! client, `messages` answers each device message, `offers` converts plans and
//! packages into the protocol's offers and firmware info, `presence` knows
//! who is connected, `push` sends plans every 10 minutes. Topics and messages
//! are `sota-protocol`'s.

pub mod broker;
pub mod client;
pub mod credentials;
pub mod messages;
pub mod mosquitto;
pub mod offers;
pub mod presence;
pub mod push;
pub mod verify;
