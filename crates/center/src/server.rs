//! Start-up: open the database and store, sweep crash leftovers, seed the
//! demo on first start, then serve until Ctrl-C / SIGTERM.

use std::sync::Arc;

use crate::api::{self, AppState};
use crate::config::ServeConfig;
use crate::download::LinkSigner;
use crate::instance::Instance;
use crate::store::FirmwareStore;
use crate::{db, package, seed};

/// Why the center could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory is unusable.
    #[error("cannot create the data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    /// Database.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// Firmware store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Listening socket.
    #[error("cannot listen on {0}: {1}; pick another address with --listen")]
    Listen(String, std::io::Error),
    /// Anything reported as an API error during start-up (sweep, seed).
    #[error("start-up failed: {0}")]
    Api(#[from] crate::ApiError),
    /// The MQTT broker.
    #[error(transparent)]
    Broker(#[from] crate::channel::broker::BrokerError),
    /// `--broker` is not `mqtt://host:port`.
    #[error("--broker {0:?} is not an MQTT URL; write it as mqtt://host:port (TLS and WebSocket URLs are not supported for the center's own link)")]
    BrokerUrl(String),
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Open `database` (a `postgres://` URL), or without it the SQLite file in `data_dir`
/// (creating the directory and the file).
pub async fn open_db(
    data_dir: &std::path::Path,
    database: Option<&str>,
) -> Result<db::Pool, StartError> {
    let database = db::Database::choose(database, data_dir)?;
    if let db::Database::Sqlite(_) = database {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StartError::DataDir(data_dir.display().to_string(), e))?;
    }
    Ok(db::open(&database).await?)
}

/// Run the center until shut down. Prints `listening on http://ADDR` first.
pub async fn run(config: ServeConfig, max_file_bytes: u64) -> Result<(), StartError> {
    let pool = open_db(&config.data_dir, config.database.as_deref()).await?;
    let store_spec = config
        .store
        .clone()
        .unwrap_or_else(|| config.data_dir.join("firmware").display().to_string());
    let store = FirmwareStore::open(&store_spec)?;

    // This process among the centers sharing the database; what it writes is its own until it
    // is gone.
    let instance = Arc::new(Instance::start(&pool).await?);
    let swept = package::sweep_pending(&pool, &store, &instance).await?;
    if swept > 0 {
        tracing::info!("removed {swept} firmware object(s) left by an interrupted upload");
    }
    tokio::spawn(package::sweep_forever(
        pool.clone(),
        store.clone(),
        instance.clone(),
    ));

    let secret = db::setting_or_init(&pool, "download_link_secret", || {
        crate::random_hex(32).unwrap_or_default()
    })
    .await
    .map_err(crate::ApiError::from)?;
    if secret.len() < 32 {
        return Err(crate::ApiError::internal(
            "the download link secret is missing; the OS random source failed",
        )
        .into());
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Listen(config.listen.to_string(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(config.listen.to_string(), e))?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_string();
    let mut state = AppState::new(
        pool.clone(),
        store.clone(),
        instance.clone(),
        LinkSigner::new(secret.as_bytes()),
        public_url,
        config.download_ttl,
        max_file_bytes,
    );
    state.push_rate = config.push_rate;
    let state = Arc::new(state);
    let guard = Arc::new(crate::channel::limit::RateGuard::new(config.rate_limit()));

    // Alone with the embedded broker; with an external one, among any number of centers.
    instance.join(&pool, config.broker.is_none()).await?;
    let center_secret = crate::channel::credentials::center_secret(&pool).await?;
    let (mqtt_line, ws_line) = match &config.broker {
        Some(url) => {
            let (host, port) = external_broker(url)?;
            let _ = state.broker_tcp.set(format!("{host}:{port}"));
            crate::channel::client::spawn(state.clone(), host.clone(), port, center_secret, guard);
            (
                format!("sota-center MQTT on mqtt://{host}:{port} (external broker)"),
                None,
            )
        }
        None => {
            let (inbound, messages) = tokio::sync::mpsc::unbounded_channel();
            let broker = crate::channel::broker::start(
                state.clone(),
                guard.clone(),
                center_secret.clone(),
                inbound,
                config.mqtt_listen,
                config.mqtt_ws_listen,
            )
            .await?;
            let _ = state.broker_tcp.set(broker.tcp.to_string());
            // Devices reach only this broker: this center sees every write.
            state.memory.enable();
            crate::channel::client::spawn_embedded(state.clone(), broker.scx.clone(), messages);
            (
                format!("sota-center MQTT on mqtt://{}", broker.tcp),
                Some(format!(
                    "sota-center MQTT over WebSocket on ws://{}/mqtt",
                    broker.ws
                )),
            )
        }
    };
    tokio::spawn(crate::channel::push::run(state.clone()));
    if db::is_postgres(&pool) && config.broker.is_some() {
        // Centers sharing the database tell each other of changes for their pages' watchers.
        crate::events::connect_peers(state.clone()).await?;
    }

    let seeded = if config.no_demo {
        None
    } else {
        seed::seed_if_first_start(&pool, &store, &instance).await?
    };
    // The seed wrote plans and devices behind the channel's back.
    state.memory.clear();
    println!("sota-center listening on http://{addr}");
    println!(
        "  data: {}  database: {}  store: {store_spec}",
        config.data_dir.display(),
        config.database()?.display()
    );
    println!("  API: http://{addr}/api/v1  (OpenAPI: http://{addr}/api/v1/openapi.json)");
    println!("{mqtt_line}");
    if let Some(ws_line) = ws_line {
        println!("{ws_line}");
    }
    if let Some(s) = &seeded {
        println!(
            "  DEMO DATA seeded (product {:?}, active plan {}, package {}; all marked demo=true)",
            seed::DEMO_PRODUCT,
            s.plan_id,
            s.package_id
        );
    }
    if let Ok((_, demo)) = crate::product::get(&pool, seed::DEMO_PRODUCT).await {
        if demo.demo {
            // Demo data only: what the console's "Plans from the center" needs to try it.
            println!(
                "  demo device login: product key {:?}, product secret {} (any new device key registers)",
                seed::DEMO_PRODUCT,
                demo.product_secret
            );
        }
    }
    if let Some(package_id) = seed::demo_package(&pool).await? {
        let (url, expires) = api::devices::link_for(&state, package_id, 0, seed::DEMO_DEVICE)?;
        println!(
            "  demo firmware for {} (expires {expires}): {url}",
            seed::DEMO_DEVICE
        );
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();

    if let Some(dir) = &config.console_dir {
        println!(
            "  console: http://{addr}/ (from {}); MQTT over WebSocket also at ws://{addr}/mqtt",
            dir.display()
        );
    }
    let closing = state.clone();
    axum::serve(listener, api::router(state, config.console_dir.as_deref()))
        .with_graceful_shutdown(async move {
            shutdown().await;
            // Open event streams end, so the shutdown does not wait for their clients.
            closing.events.close();
        })
        .await
        .map_err(StartError::Serve)
}

/// Host and port of `mqtt://host:port`.
fn external_broker(url: &str) -> Result<(String, u16), StartError> {
    let bad = || StartError::BrokerUrl(url.to_string());
    let rest = url.strip_prefix("mqtt://").ok_or_else(bad)?;
    let (host, port) = rest
        .trim_end_matches('/')
        .rsplit_once(':')
        .ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Wait for Ctrl-C or SIGTERM.
pub async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
