//! The device channel: MQTT between the center and devices.
//!
//! `broker` runs the embedded broker and its access rules, `credentials`
//! decides logins and dynamic registration, `client` is the center's own MQTT
//! client (rate limit by `limit`, messages handled concurrently per device),
//! `messages` answers each device message, `offers` converts plans and
//! packages into the protocol's offers and firmware info, `active` holds the
//! active plans and decides what a device is offered, `presence` knows who is
//! connected, `push` sends plans every 10 minutes (reading devices through
//! `scan`), `reported` holds versions not yet on disk, `memory` keeps request views while the center is alone, `view` reads what a plan request needs in one statement, `writes` group-commits the channel's writes. Topics and messages
//! are `sota-protocol`'s.

pub mod active;
pub mod broker;
pub mod client;
pub mod credentials;
pub mod limit;
pub mod memory;
pub mod messages;
pub mod mosquitto;
pub mod offers;
pub mod presence;
pub mod push;
pub mod reported;
pub mod scan;
pub mod share;
pub mod verify;
pub mod view;
pub mod writes;
