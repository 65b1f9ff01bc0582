//! The one handler of the engine's I/O commands, and the small requests it leaves to adapters.
//!
//! The engine asks for a whole download (`Fetch`), a refeed of the stored image after a
//! restore (`Refeed`) and pieces for the MCU (`OfferPiece`). The handler splits these into
//! [`Io`] requests of at most [`CHUNK`] bytes, so an adapter never holds more than one chunk,
//! whatever the image size, and feeds the results back into the session in order. Adapters
//! carry the requests out and decide nothing; [`serve`] is the synchronous adapter for native
//! code and tests over a [`Source`] and an [`ImageStore`].

use crate::stamp;
use core::time::Duration;
use sota_engine::{Command, Component, Event, FirmwareInfo, Plan, Report, Session, StateKind};
use std::collections::{HashMap, VecDeque};

/// The largest range one [`Io::Fetch`] or refeed [`Io::Read`] asks for.
pub const CHUNK: u64 = 64 * 1024;

/// Work for the adapter. Requests that expect an answer say which method takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Io {
    /// The MCU asked for plans: get them for these components (from the center, or the local
    /// file) and hand them over with `provide_plans`.
    NeedPlans {
        /// What the device runs now.
        components: Vec<Component>,
    },
    /// A plan was accepted: get its firmware info and hand it over with `provide_info`.
    NeedFirmwareInfo {
        /// The accepted plan.
        plan: Plan,
    },
    /// Read bytes `start..end` of the firmware at `url`; answer with `fetched` (once or in
    /// several consecutive parts) or `fetch_failed`.
    Fetch {
        /// Component the image is for.
        component: String,
        /// Where the image is.
        url: String,
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// Append verified-stream bytes to the component's stored image at `offset` (its current
    /// end). On failure call `store_lost`.
    Store {
        /// Component.
        component: String,
        /// Where the bytes go.
        offset: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Read `len` stored bytes at `offset`; answer with `read_done` or `store_lost`.
    Read {
        /// Component.
        component: String,
        /// First byte.
        offset: u64,
        /// How many.
        len: u64,
    },
    /// The component's stored image is no longer needed.
    Discard {
        /// Component.
        component: String,
    },
    /// Send this status report to the center (or the log).
    Report(Report),
}

/// Where a download comes from, for synchronous adapters (a file, a test's map).
pub trait Source {
    /// Bytes `start..end` of the image at `url`; fewer only at its end.
    fn read(&mut self, url: &str, start: u64, end: u64) -> Result<Vec<u8>, String>;
}

/// Where the verified image is kept between download and transfer.
pub trait ImageStore {
    /// Appends `bytes` at `offset`, the current end of the component's image.
    fn append(&mut self, component: &str, offset: u64, bytes: &[u8]) -> Result<(), String>;
    /// `len` bytes at `offset`.
    fn read(&mut self, component: &str, offset: u64, len: u64) -> Result<Vec<u8>, String>;
    /// Forgets the component's image.
    fn discard(&mut self, component: &str);
}

/// An [`ImageStore`] in memory, for tests and small native runs.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    images: HashMap<String, Vec<u8>>,
}

impl MemoryStore {
    /// The stored image of `component`.
    pub fn image(&self, component: &str) -> Option<&[u8]> {
        self.images.get(component).map(Vec::as_slice)
    }
}

impl ImageStore for MemoryStore {
    fn append(&mut self, component: &str, offset: u64, bytes: &[u8]) -> Result<(), String> {
        let image = self.images.entry(component.to_string()).or_default();
        if offset != image.len() as u64 {
            return Err(format!(
                "append at {offset}, but {} bytes are stored",
                image.len()
            ));
        }
        image.extend_from_slice(bytes);
        Ok(())
    }

    fn read(&mut self, component: &str, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        let image = self
            .images
            .get(component)
            .ok_or_else(|| format!("no image stored for {component}"))?;
        let range = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(offset + len).ok());
        range
            .and_then(|(a, b)| image.get(a..b))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| format!("bytes {offset}..{} are not stored", offset + len))
    }

    fn discard(&mut self, component: &str) {
        self.images.remove(component);
    }
}

/// A flow that asks an adapter for I/O: [`serve`] and the browser drive any of them.
pub trait Driver {
    /// The next request.
    fn poll_io(&mut self) -> Option<Io>;
    /// Bytes of the current [`Io::Fetch`], starting at `offset`.
    fn fetched(&mut self, offset: u64, bytes: Vec<u8>, now: Duration);
    /// The current [`Io::Fetch`] failed.
    fn fetch_failed(&mut self, reason: String, now: Duration);
    /// The bytes of the oldest unanswered [`Io::Read`].
    fn read_done(&mut self, offset: u64, bytes: Vec<u8>, now: Duration);
    /// The store lost the image (or a write or read failed).
    fn store_lost(&mut self, now: Duration);
    /// Plans for an [`Io::NeedPlans`].
    fn provide_plans(&mut self, plans: Vec<Plan>, now: Duration);
    /// Firmware info for an [`Io::NeedFirmwareInfo`].
    fn provide_info(&mut self, info: FirmwareInfo, now: Duration);
}

/// Carries out every pending request of `driver` synchronously. `other` gets what is not
/// source or store work ([`Io::NeedPlans`], [`Io::NeedFirmwareInfo`], [`Io::Report`]) and
/// may answer through the driver it is handed.
pub fn serve<D: Driver + ?Sized>(
    driver: &mut D,
    source: &mut dyn Source,
    store: &mut dyn ImageStore,
    now: Duration,
    mut other: impl FnMut(&mut D, Io),
) {
    while let Some(io) = driver.poll_io() {
        match io {
            Io::Fetch {
                url, start, end, ..
            } => match source.read(&url, start, end) {
                Ok(bytes) if bytes.len() as u64 == end - start => driver.fetched(start, bytes, now),
                Ok(bytes) => driver.fetch_failed(
                    format!(
                        "the image ends at byte {} but {end} bytes were expected",
                        start + bytes.len() as u64
                    ),
                    now,
                ),
                Err(e) => driver.fetch_failed(e, now),
            },
            Io::Store {
                component,
                offset,
                bytes,
            } => {
                if store.append(&component, offset, &bytes).is_err() {
                    driver.store_lost(now);
                }
            }
            Io::Read {
                component,
                offset,
                len,
            } => match store.read(&component, offset, len) {
                Ok(bytes) => driver.read_done(offset, bytes, now),
                Err(_) => driver.store_lost(now),
            },
            Io::Discard { component } => store.discard(&component),
            other_io => other(driver, other_io),
        }
    }
}

/// A download in progress: the session's `Fetch`, asked for a chunk at a time.
#[derive(Clone, Debug)]
struct Fetching {
    component: String,
    url: String,
    /// Next byte expected from the adapter.
    next: u64,
    /// End of the chunk asked for.
    chunk_end: u64,
    end: u64,
}

/// What an unanswered [`Io::Read`] was for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    /// A chunk of a refeed; more follow up to `len`.
    Refeed { component: String, len: u64 },
    /// A piece for the MCU.
    Piece { offset: u64, len: u32 },
}

/// The engine's command handler: one per flow, shared by every protocol driver.
#[derive(Debug, Default)]
pub(crate) struct Handler {
    fetch: Option<Fetching>,
    reads: VecDeque<Pending>,
    out: VecDeque<Io>,
}

/// What a handled command leaves for the protocol driver.
#[derive(Debug)]
pub(crate) enum Left {
    /// Nothing: the handler took it.
    Nothing,
    /// A command only the protocol can carry out (`HandToMcu`).
    Command(Command),
}

impl Handler {
    pub(crate) fn poll_io(&mut self) -> Option<Io> {
        self.out.pop_front()
    }

    pub(crate) fn push(&mut self, io: Io) {
        self.out.push_back(io);
    }

    /// Takes one engine command.
    pub(crate) fn command(&mut self, command: Command) -> Left {
        match command {
            Command::Report(r) => self.out.push_back(Io::Report(r)),
            Command::Fetch {
                component,
                url,
                start,
                end,
            } => {
                let fetch = Fetching {
                    component,
                    url,
                    next: start,
                    chunk_end: start,
                    end,
                };
                self.fetch = Some(fetch);
                self.next_chunk();
            }
            Command::StoreChunk {
                component,
                offset,
                bytes,
            } => self.out.push_back(Io::Store {
                component,
                offset,
                bytes,
            }),
            Command::Refeed { component, len } => {
                self.reads.retain(|p| !matches!(p, Pending::Refeed { .. }));
                self.refeed_from(component, 0, len);
            }
            Command::OfferPiece {
                component,
                offset,
                len,
                ..
            } => {
                self.reads.push_back(Pending::Piece { offset, len });
                self.out.push_back(Io::Read {
                    component,
                    offset,
                    len: u64::from(len),
                });
            }
            Command::DiscardImage { component } => {
                self.fetch = None;
                self.reads.clear();
                self.out.push_back(Io::Discard { component });
            }
            Command::SetDeadline { .. } => {}
            other @ Command::HandToMcu(_) => return Left::Command(other),
        }
        Left::Nothing
    }

    fn refeed_from(&mut self, component: String, offset: u64, len: u64) {
        if offset >= len {
            return;
        }
        let chunk = CHUNK.min(len - offset);
        self.out.push_back(Io::Read {
            component: component.clone(),
            offset,
            len: chunk,
        });
        self.reads.push_back(Pending::Refeed { component, len });
    }

    fn next_chunk(&mut self) {
        let Some(f) = self.fetch.as_mut() else {
            return;
        };
        if f.next >= f.end {
            self.fetch = None;
            return;
        }
        f.chunk_end = f.end.min(f.next + CHUNK);
        self.out.push_back(Io::Fetch {
            component: f.component.clone(),
            url: f.url.clone(),
            start: f.next,
            end: f.chunk_end,
        });
    }

    /// Downloaded bytes: into the session, then the next chunk is asked for.
    pub(crate) fn fetched(
        &mut self,
        session: &mut Session,
        offset: u64,
        bytes: Vec<u8>,
        now: Duration,
    ) {
        let Some(f) = self.fetch.as_mut() else {
            return; // A late answer for a download that ended.
        };
        let len = bytes.len() as u64;
        if offset != f.next || len == 0 || offset + len > f.chunk_end {
            let reason = format!(
                "the download sent bytes {offset}..{} where {}..{} were asked for",
                offset + len,
                f.next,
                f.chunk_end
            );
            return self.fetch_failed(session, reason, now);
        }
        f.next += len;
        let chunk_done = f.next == f.chunk_end;
        let taken = session.handle(Event::Downloaded { offset, bytes }, stamp(now));
        if taken.is_err() || session.state() != StateKind::Downloading {
            // The session moved on (verified, failed, timed out): whatever it wants next
            // comes as a new command.
            if self.fetch.as_ref().is_some_and(|f| f.next == offset + len) {
                self.fetch = None;
            }
            return;
        }
        if chunk_done {
            self.next_chunk();
        }
    }

    pub(crate) fn fetch_failed(&mut self, session: &mut Session, reason: String, now: Duration) {
        if self.fetch.take().is_some() {
            // The session answers with a new Fetch from where it stands, or gives up.
            let _ = session.handle(Event::DownloadFailed { reason }, stamp(now));
        }
    }

    /// Stored bytes: a refeed chunk goes into the session; a piece is returned for the MCU.
    pub(crate) fn read_done(
        &mut self,
        session: &mut Session,
        offset: u64,
        bytes: Vec<u8>,
        now: Duration,
    ) -> Option<(u64, u32, Vec<u8>)> {
        match self.reads.pop_front()? {
            Pending::Refeed { component, len } => {
                let next = offset + bytes.len() as u64;
                let taken = session.handle(Event::Stored { offset, bytes }, stamp(now));
                if taken.is_ok()
                    && !self
                        .reads
                        .iter()
                        .any(|p| matches!(p, Pending::Refeed { .. }))
                {
                    self.refeed_from(component, next, len);
                }
                None
            }
            Pending::Piece { offset: o, len } => {
                (o == offset && bytes.len() == len as usize).then_some((o, len, bytes))
            }
        }
    }

    pub(crate) fn store_lost(&mut self, session: &mut Session, now: Duration) {
        self.reads.clear();
        self.fetch = None;
        let _ = session.handle(Event::StoreLost, stamp(now));
    }
}
