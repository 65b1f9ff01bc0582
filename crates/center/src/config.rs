//! Server configuration: flags and environment variables with defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `sota-center serve` needs.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address to listen on. Port 0 picks a free port (printed at start).
    #[arg(long, env = "SOTA_CENTER_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Directory holding `center.sqlite3` (unless `--database` names PostgreSQL) and, with the
    /// default store, `firmware/`.
    #[arg(long, env = "SOTA_CENTER_DATA_DIR", default_value = ".data/center")]
    pub data_dir: PathBuf,
    /// The metadata database: `postgres://user:password@host:port/database` for PostgreSQL.
    /// Default: SQLite, `<data-dir>/center.sqlite3`.
    #[arg(long, env = "SOTA_CENTER_DATABASE")]
    pub database: Option<String>,
    /// Firmware store: a local directory path, or `s3://bucket/prefix`
    /// (needs the `s3` cargo feature; credentials from the usual AWS_* variables).
    /// Default: `<data-dir>/firmware`.
    #[arg(long, env = "SOTA_CENTER_STORE")]
    pub store: Option<String>,
    /// Base URL put in firmware download links. Default: `http://<listen>`.
    #[arg(long, env = "SOTA_CENTER_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Lifetime of a per-device download link, in seconds.
    #[arg(long, env = "SOTA_CENTER_DOWNLOAD_TTL", default_value_t = 3600)]
    pub download_ttl: u64,
    /// The embedded MQTT broker's TCP listener. Port 0 picks a free port (printed at start).
    #[arg(
        long,
        env = "SOTA_CENTER_MQTT_LISTEN",
        default_value = "127.0.0.1:1883"
    )]
    pub mqtt_listen: SocketAddr,
    /// The embedded MQTT broker's WebSocket listener. Port 0 picks a free port.
    #[arg(
        long,
        env = "SOTA_CENTER_MQTT_WS_LISTEN",
        default_value = "127.0.0.1:8083"
    )]
    pub mqtt_ws_listen: SocketAddr,
    /// Use an external MQTT broker (`mqtt://host:port`, e.g. mosquitto configured by
    /// `sota-center broker mosquitto-config`) instead of the embedded one.
    #[arg(long, env = "SOTA_CENTER_BROKER")]
    pub broker: Option<String>,
    /// Serve the built console (Trunk's `dist`) at `/`, so the page, the API and
    /// MQTT over WebSocket (`/mqtt`) share one origin.
    #[arg(long, env = "SOTA_CENTER_CONSOLE_DIR")]
    pub console_dir: Option<PathBuf>,
    /// Devices a push cycle sends plans to per second, at most, so a fleet's downloads do not
    /// all start at once. 0: no limit.
    #[arg(long, env = "SOTA_CENTER_PUSH_RATE", default_value_t = 0)]
    pub push_rate: u32,
    /// Do not seed the demo product, package and plan into an empty database.
    #[arg(long, env = "SOTA_CENTER_NO_DEMO")]
    pub no_demo: bool,
    /// Messages a second each device may send over MQTT (sustained); more are
    /// answered with an error and not handled. 0 turns the limit off.
    #[arg(long, env = "SOTA_CENTER_DEVICE_RATE", default_value_t = 10.0)]
    pub device_rate: f64,
    /// Messages a device may send at once before its rate applies.
    #[arg(long, env = "SOTA_CENTER_DEVICE_BURST", default_value_t = 50)]
    pub device_burst: u32,
}

impl ServeConfig {
    /// The per-device rate limit of the MQTT channel.
    pub fn rate_limit(&self) -> crate::channel::limit::RateLimit {
        crate::channel::limit::RateLimit {
            per_second: self.device_rate.max(0.0),
            burst: f64::from(self.device_burst.max(1)),
        }
    }

    /// The database `--database` names, or SQLite's file in the data directory.
    pub fn database(&self) -> Result<crate::db::Database, crate::db::DbError> {
        crate::db::Database::choose(self.database.as_deref(), &self.data_dir)
    }
}
