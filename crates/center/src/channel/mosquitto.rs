//! An external broker: the mosquitto configuration the channel needs, and
//! provisioning of device credentials into it.
//!
//! mosquitto checks logins against a password file and topics against an ACL
//! file with one block per user, written here: the center may read every `up`
//! and write every `down` topic, a device only its own two. Usernames become
//! client ids (`use_username_as_clientid`), so no device takes over another's
//! session. Its static files cannot check a product secret, so dynamic
//! registration is the embedded broker's; with mosquitto, devices are
//! provisioned (`sota-center broker provision`) and mosquitto reloaded (SIGHUP).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use sota_protocol::topic::CENTER_USERNAME;
use sota_protocol::DeviceId;
use sqlx::AnyPool;

use super::credentials;
use crate::error::ApiError;

/// The files of one mosquitto configuration.
#[derive(Debug, Clone)]
pub struct Files {
    /// The directory holding them.
    pub dir: PathBuf,
}

impl Files {
    /// `mosquitto.conf`: start mosquitto with `mosquitto -c <this>`.
    pub fn conf(&self) -> PathBuf {
        self.dir.join("mosquitto.conf")
    }
    /// The password file (`mosquitto_passwd` format).
    pub fn passwd(&self) -> PathBuf {
        self.dir.join("passwd")
    }
    /// The ACL file.
    pub fn acl(&self) -> PathBuf {
        self.dir.join("acl")
    }
}

/// The configuration text: no anonymous logins, the ACL, a TCP and a WebSocket listener.
pub fn conf_text(files: &Files, tcp: SocketAddr, ws: SocketAddr) -> String {
    format!(
        "# Written by `sota-center broker mosquitto-config`; see docs/center.md.\n\
         per_listener_settings false\n\
         allow_anonymous false\n\
         password_file {}\n\
         acl_file {}\n\
         persistence false\n\
         listener {} {}\n\
         use_username_as_clientid true\n\
         listener {} {}\n\
         protocol websockets\n\
         use_username_as_clientid true\n",
        files.passwd().display(),
        files.acl().display(),
        tcp.port(),
        tcp.ip(),
        ws.port(),
        ws.ip(),
    )
}

/// Center logins written by default: as many centers may share one broker.
pub const CENTERS: i64 = 4;

/// The broker login of the center in `slot` (`instance.rs`): `sota-center`, then
/// `sota-center-1`, `sota-center-2`, … (client id = username: one session per login).
pub fn center_user(slot: i64) -> String {
    match slot {
        0 => CENTER_USERNAME.to_string(),
        n => format!("{CENTER_USERNAME}-{n}"),
    }
}

/// The ACL blocks of `centers` center logins.
pub fn center_acl(centers: i64) -> String {
    (0..centers.max(1))
        .map(|slot| {
            format!(
                "user {}\ntopic read sota/+/+/up\ntopic write sota/+/+/down\n\n",
                center_user(slot)
            )
        })
        .collect()
}

/// The ACL block of one device: its own two topics, nothing else.
pub fn device_acl(id: &DeviceId) -> String {
    format!(
        "user {}\ntopic write {}\ntopic read {}\n\n",
        id.username(),
        id.up(),
        id.down()
    )
}

fn io(what: &str, path: &Path, e: std::io::Error) -> ApiError {
    ApiError::internal(format!("cannot {what} {}: {e}", path.display()))
}

/// Set `user`'s password in the password file with Debian's `mosquitto_passwd`.
fn set_password(files: &Files, user: &str, password: &str, create: bool) -> Result<(), ApiError> {
    let mut cmd = Command::new("mosquitto_passwd");
    if create {
        cmd.arg("-c");
    }
    let out = cmd.arg("-b").arg(files.passwd()).arg(user).arg(password).output().map_err(|e| {
        ApiError::internal(format!("cannot run mosquitto_passwd ({e}); install the mosquitto package (cargo xtask setup does)"))
    })?;
    if !out.status.success() {
        return Err(ApiError::internal(format!(
            "mosquitto_passwd failed for {user}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Write a fresh configuration into `files.dir`: the config, a password file
/// holding `centers` center logins (one per center sharing the broker), and the
/// ACL with their blocks. Devices provisioned before are dropped: provision them again.
pub async fn write_config(
    pool: &AnyPool,
    files: &Files,
    tcp: SocketAddr,
    ws: SocketAddr,
    centers: i64,
) -> Result<(), ApiError> {
    if !(1..=64).contains(&centers) {
        return Err(ApiError::invalid(
            "invalid_centers",
            format!("--centers {centers}: give 1 to 64 centers"),
        ));
    }
    std::fs::create_dir_all(&files.dir).map_err(|e| io("create", &files.dir, e))?;
    let dir = files
        .dir
        .canonicalize()
        .map_err(|e| io("resolve", &files.dir, e))?;
    let files = Files { dir };
    std::fs::write(files.conf(), conf_text(&files, tcp, ws))
        .map_err(|e| io("write", &files.conf(), e))?;
    std::fs::write(files.acl(), center_acl(centers)).map_err(|e| io("write", &files.acl(), e))?;
    let secret = credentials::center_secret(pool).await?;
    for slot in 0..centers {
        set_password(&files, &center_user(slot), &secret, slot == 0)?;
    }
    Ok(())
}

/// Provision a device: create it if new, issue a new device secret, and add
/// its login and ACL block to the files. Returns the secret (shown once).
/// mosquitto reads the files again on SIGHUP.
pub async fn provision(pool: &AnyPool, files: &Files, id: &DeviceId) -> Result<String, ApiError> {
    let secret = credentials::provision(pool, id).await?;
    set_password(files, &id.username(), &secret, false)?;
    let acl = std::fs::read_to_string(files.acl()).map_err(|e| io("read", &files.acl(), e))?;
    let header = format!("user {}\n", id.username());
    if !acl.lines().any(|l| format!("{l}\n") == header) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(files.acl())
            .map_err(|e| io("open", &files.acl(), e))?;
        f.write_all(device_acl(id).as_bytes())
            .map_err(|e| io("write", &files.acl(), e))?;
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_gets_exactly_its_two_topics() {
        let id = DeviceId::new("p1", "d-1").unwrap();
        assert_eq!(
            device_acl(&id),
            "user p1&d-1\ntopic write sota/p1/d-1/up\ntopic read sota/p1/d-1/down\n\n"
        );
        let conf = conf_text(
            &Files { dir: "/x".into() },
            "127.0.0.1:1883".parse().unwrap(),
            "127.0.0.1:9001".parse().unwrap(),
        );
        assert!(
            conf.contains("allow_anonymous false\n")
                && conf.contains("listener 9001 127.0.0.1\nprotocol websockets\n"),
            "{conf}"
        );
    }
}
