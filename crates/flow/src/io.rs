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
    /// The bytes of the unanswered [`Io::Read`] at `offset`; reads may be answered in any order.
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

/// An unanswered [`Io::Read`]: the range asked for, so that an answer finds its read whatever
/// the order, and what it was for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    /// A chunk of a refeed; more follow up to `total`.
    Refeed {
        component: String,
        offset: u64,
        len: u64,
        total: u64,
    },
    /// A piece for the MCU.
    Piece { offset: u64, len: u32 },
}

impl Pending {
    fn range(&self) -> (u64, u64) {
        match self {
            Pending::Refeed { offset, len, .. } => (*offset, *len),
            Pending::Piece { offset, len } => (*offset, u64::from(*len)),
        }
    }
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
                // The old refeed's answers that still come find no read and are dropped.
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

    fn refeed_from(&mut self, component: String, offset: u64, total: u64) {
        if offset >= total {
            return;
        }
        let len = CHUNK.min(total - offset);
        self.out.push_back(Io::Read {
            component: component.clone(),
            offset,
            len,
        });
        self.reads.push_back(Pending::Refeed {
            component,
            offset,
            len,
            total,
        });
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
    /// The answer goes to the read it answers, found by its range: the stored image is
    /// append-only, so any answer at an offset holds the bytes a read there asked for. An
    /// answer no read is waiting for (one of a refeed started over) is dropped.
    pub(crate) fn read_done(
        &mut self,
        session: &mut Session,
        offset: u64,
        bytes: Vec<u8>,
        now: Duration,
    ) -> Option<(u64, u32, Vec<u8>)> {
        let got = bytes.len() as u64;
        let at = self
            .reads
            .iter()
            .position(|p| p.range() == (offset, got))
            // A refeed chunk may come back short: what came is fed and the rest asked for.
            .or_else(|| {
                self.reads.iter().position(|p| {
                    let (o, len) = p.range();
                    matches!(p, Pending::Refeed { .. }) && o == offset && got < len
                })
            })?;
        match self.reads.remove(at)? {
            Pending::Refeed {
                component, total, ..
            } => {
                let taken = session.handle(Event::Stored { offset, bytes }, stamp(now));
                if taken.is_ok() {
                    self.refeed_from(component, offset + got, total);
                }
                None
            }
            Pending::Piece { offset, len } => Some((offset, len, bytes)),
        }
    }

    pub(crate) fn store_lost(&mut self, session: &mut Session, now: Duration) {
        self.reads.clear();
        self.fetch = None;
        let _ = session.handle(Event::StoreLost, stamp(now));
    }
}

#[cfg(test)]
mod tests {
    //! The handler between a session and an adapter: chunking, partial and wrong answers,
    //! refeeds after a restart, pieces; and `serve` as the synchronous adapter.

    use super::*;
    use sota_engine::{
        ComponentType, Config, Digester, DownloadMode, FirmwareInfo, Plan, Readings, StateKind,
    };
    use sota_sim::test_image;

    const T0: Duration = Duration::ZERO;

    fn plan(size: u64) -> Plan {
        Plan {
            identity: "STM32".into(),
            component_type: ComponentType::Mcu,
            source_version: String::new(),
            target_version: "2_0_0".into(),
            min_battery: 30,
            min_signal_dbm: -113,
            space_needed: size,
            package_size: size,
            download_retries: None,
        }
    }

    fn info(image: &[u8]) -> FirmwareInfo {
        let d = Digester::digest(image);
        FirmwareInfo {
            identity: "STM32".into(),
            version: "2_0_0".into(),
            md5: d.md5,
            crc32: d.crc32,
            sha256: d.sha256,
            url: "fw.bin".into(),
            size: image.len() as u64,
            mode: DownloadMode::ConsoleDownloads,
        }
    }

    /// A session and its handler, as a flow holds them: every command goes to the handler.
    struct Rig {
        session: Session,
        handler: Handler,
    }

    impl Rig {
        /// Downloading `image`: the session's first `Fetch` is handled, its requests drained.
        fn downloading(image: &[u8]) -> Rig {
            let config = Config {
                piece_size: 100,
                ..Config::default()
            };
            let mut rig = Rig {
                session: Session::new(config, Vec::new()),
                handler: Handler::default(),
            };
            let size = image.len() as u64;
            let t = stamp(T0);
            rig.session
                .handle(Event::Plans(vec![plan(size)]), t)
                .unwrap();
            let readings = Readings {
                battery: 80,
                signal_dbm: -80,
                free_flash: size,
            };
            let readings = Event::Readings {
                readings,
                override_reason: None,
            };
            rig.session.handle(readings, t).unwrap();
            rig.session
                .handle(Event::FirmwareInfo(info(image)), t)
                .unwrap();
            assert_eq!(rig.session.state(), StateKind::Downloading);
            rig
        }

        /// Verified and transferring, the first piece's read drained.
        fn transferring(image: &[u8]) -> Rig {
            let mut rig = Rig::downloading(image);
            let mut ios = rig.ios();
            while let Some((start, end)) = fetches(&ios).first().copied() {
                ios = rig.fetched(start, &image[start as usize..end as usize]);
            }
            assert_eq!(rig.session.state(), StateKind::Transferring);
            // The first piece goes to the MCU.
            let first = &image[..100];
            assert_eq!(reads(&ios), [(0, 100)]);
            let piece = rig
                .handler
                .read_done(&mut rig.session, 0, first.to_vec(), T0);
            assert_eq!(piece, Some((0, 100, first.to_vec())));
            rig
        }

        /// Hands the session's commands to the handler and returns its requests.
        fn ios(&mut self) -> Vec<Io> {
            while let Some(command) = self.session.poll_command() {
                assert!(matches!(self.handler.command(command), Left::Nothing));
            }
            std::iter::from_fn(|| self.handler.poll_io()).collect()
        }

        fn fetched(&mut self, offset: u64, bytes: &[u8]) -> Vec<Io> {
            let bytes = bytes.to_vec();
            self.handler.fetched(&mut self.session, offset, bytes, T0);
            self.ios()
        }

        fn read_done(&mut self, offset: u64, bytes: &[u8], now: Duration) -> Vec<Io> {
            let bytes = bytes.to_vec();
            let piece = self
                .handler
                .read_done(&mut self.session, offset, bytes, now);
            assert_eq!(piece, None, "a refeed chunk is no piece");
            self.ios()
        }
    }

    fn fetches(ios: &[Io]) -> Vec<(u64, u64)> {
        ios.iter()
            .filter_map(|io| match io {
                Io::Fetch { start, end, .. } => Some((*start, *end)),
                _ => None,
            })
            .collect()
    }

    fn reads(ios: &[Io]) -> Vec<(u64, u64)> {
        ios.iter()
            .filter_map(|io| match io {
                Io::Read { offset, len, .. } => Some((*offset, *len)),
                _ => None,
            })
            .collect()
    }

    fn stores(ios: &[Io]) -> Vec<(u64, usize)> {
        ios.iter()
            .filter_map(|io| match io {
                Io::Store { offset, bytes, .. } => Some((*offset, bytes.len())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_download_is_asked_for_in_chunks_of_64_kib() {
        let image = test_image(150_000, 1);
        let mut rig = Rig::downloading(&image);
        assert_eq!(CHUNK, 65_536);
        assert_eq!(fetches(&rig.ios()), [(0, 65_536)]);
        let after = rig.fetched(0, &image[..65_536]);
        assert_eq!(fetches(&after), [(65_536, 131_072)]);
        assert_eq!(stores(&after), [(0, 65_536)]);
        assert_eq!(
            fetches(&rig.fetched(65_536, &image[65_536..131_072])),
            [(131_072, 150_000)]
        );
        let last = rig.fetched(131_072, &image[131_072..]);
        assert!(fetches(&last).is_empty(), "{last:?}");
        assert_eq!(rig.session.state(), StateKind::Transferring);
        assert_eq!(reads(&last), [(0, 100)], "the first piece is read back");
    }

    #[test]
    fn a_chunk_answered_in_parts_is_taken_and_the_next_asked_for_once_it_is_complete() {
        let image = test_image(70_000, 2);
        let mut rig = Rig::downloading(&image);
        assert_eq!(fetches(&rig.ios()), [(0, 65_536)]);
        assert!(fetches(&rig.fetched(0, &image[..1_000])).is_empty());
        assert!(fetches(&rig.fetched(1_000, &image[1_000..40_000])).is_empty());
        assert_eq!(rig.session.download_offset(), Some(40_000));
        let after = rig.fetched(40_000, &image[40_000..65_536]);
        assert_eq!(fetches(&after), [(65_536, 70_000)]);
        assert_eq!(rig.session.download_offset(), Some(65_536));
    }

    #[test]
    fn a_part_at_the_wrong_offset_empty_or_past_the_chunk_fails_the_download_there() {
        let image = test_image(70_000, 3);
        // Each wrong answer is a failed download: the session asks again from its offset.
        let wrong: [(u64, &[u8]); 4] = [
            (2_000, &image[2_000..3_000]),
            (999, &image[999..1_500]),
            (1_000, &[]),
            (1_000, &image[1_000..65_537]),
        ];
        for (offset, bytes) in wrong {
            let mut rig = Rig::downloading(&image);
            rig.ios();
            rig.fetched(0, &image[..1_000]);
            let again = rig.fetched(offset, bytes);
            assert_eq!(
                fetches(&again),
                [(1_000, 66_536)],
                "answer at {offset}, {} bytes",
                bytes.len()
            );
            assert_eq!(rig.session.download_offset(), Some(1_000));
        }
        // The last byte of a chunk is still in it.
        let mut rig = Rig::downloading(&image);
        rig.ios();
        rig.fetched(0, &image[..1_000]);
        assert_eq!(
            fetches(&rig.fetched(1_000, &image[1_000..65_536])),
            [(65_536, 70_000)]
        );
    }

    #[test]
    fn a_part_the_session_refuses_ends_the_download_on_the_handlers_side() {
        let image = test_image(70_000, 4);
        let mut rig = Rig::downloading(&image);
        assert_eq!(fetches(&rig.ios()), [(0, 65_536)]);
        // The session holds 10 bytes the handler did not pass on: it refuses the handler's
        // part at 0, so the handler stops feeding this download.
        let t = stamp(T0);
        let first = Event::Downloaded {
            offset: 0,
            bytes: image[..10].to_vec(),
        };
        rig.session.handle(first, t).unwrap();
        assert_eq!(stores(&rig.ios()), [(0, 10)]);
        assert!(rig.fetched(0, &image[..1_000]).is_empty());
        assert!(rig.fetched(1_000, &image[1_000..2_000]).is_empty());
        assert_eq!(
            rig.session.download_offset(),
            Some(10),
            "a later part is dropped too"
        );
        // The session asks again itself when its wait runs out; a late failure of the
        // handler's download is no failure of the session's.
        rig.handler
            .fetch_failed(&mut rig.session, "late".into(), T0);
        assert!(
            rig.ios().is_empty(),
            "no failure is reported for a download that ended"
        );
    }

    #[test]
    fn after_the_last_part_late_answers_change_nothing() {
        let image = test_image(1_000, 5);
        let mut rig = Rig::downloading(&image);
        rig.ios();
        rig.fetched(0, &image);
        assert_eq!(rig.session.state(), StateKind::Transferring);
        rig.ios();
        assert!(rig.fetched(0, &image).is_empty());
        rig.handler
            .fetch_failed(&mut rig.session, "late".into(), T0);
        assert!(rig.ios().is_empty());
        assert_eq!(rig.session.state(), StateKind::Transferring);
    }

    #[test]
    fn a_restart_refeeds_the_stored_image_in_chunks_then_offers_the_piece() {
        let image = test_image(70_000, 6);
        let mut rig = Rig::transferring(&image);
        rig.session.resume(stamp(T0));
        assert_eq!(reads(&rig.ios()), [(0, 65_536)]);
        let next = rig.read_done(0, &image[..65_536], T0);
        assert_eq!(reads(&next), [(65_536, 4_464)]);
        let piece = rig.read_done(65_536, &image[65_536..], T0);
        assert_eq!(
            reads(&piece),
            [(0, 100)],
            "rechecked: the piece is read for the MCU"
        );
        let got = rig
            .handler
            .read_done(&mut rig.session, 0, image[..100].to_vec(), T0);
        assert_eq!(got, Some((0, 100, image[..100].to_vec())));
    }

    #[test]
    fn a_second_restart_during_a_refeed_starts_it_over() {
        let image = test_image(70_000, 7);
        let mut rig = Rig::transferring(&image);
        rig.session.resume(stamp(T0));
        assert_eq!(reads(&rig.ios()), [(0, 65_536)]);
        rig.session.resume(stamp(T0));
        assert_eq!(reads(&rig.ios()), [(0, 65_536)]);
        // The newer refeed goes on past its first chunk. The first refeed's answer holds the
        // same stored bytes: the new refeed takes it, and its own answer, coming after, is the
        // late one, fed nowhere.
        assert_eq!(
            reads(&rig.read_done(0, &image[..65_536], T0)),
            [(65_536, 4_464)]
        );
        assert!(rig.read_done(0, &image[..65_536], T0).is_empty());
        let rechecked = rig.read_done(65_536, &image[65_536..], T0);
        assert_eq!(
            reads(&rechecked),
            [(0, 100)],
            "rechecked: the piece is read"
        );
        assert_eq!(
            piece(&mut rig, 0, &image[..100]),
            Some((0, 100, image[..100].to_vec()))
        );
    }

    #[test]
    fn a_refeed_chunk_that_comes_after_the_session_gave_up_asks_for_no_more() {
        let image = test_image(70_000, 8);
        let mut rig = Rig::transferring(&image);
        rig.session.resume(stamp(T0));
        assert_eq!(reads(&rig.ios()), [(0, 65_536)]);
        // Long after the MCU's wait for the piece ended.
        let late = Duration::from_secs(3600);
        let after = rig.read_done(0, &image[..65_536], late);
        assert!(reads(&after).is_empty(), "{after:?}");
        assert!(
            after.iter().any(|io| matches!(io, Io::Discard { .. })),
            "{after:?}"
        );
        assert!(rig.session.is_finished());
    }

    #[test]
    fn a_piece_read_back_at_another_offset_or_length_is_not_handed_out() {
        let image = test_image(1_000, 9);
        for (offset, len) in [(100, 99), (101, 100), (100, 101)] {
            let mut rig = Rig::transferring(&image);
            let taken = Event::McuTookPiece {
                offset: 0,
                len: 100,
            };
            rig.session.handle(taken, stamp(T0)).unwrap();
            assert_eq!(reads(&rig.ios()), [(100, 100)]);
            let bytes = image[offset..offset + len].to_vec();
            let got = rig
                .handler
                .read_done(&mut rig.session, offset as u64, bytes, T0);
            assert_eq!(got, None, "{offset}, {len}");
        }
    }

    /// The piece the handler hands out for an answer at `offset`, or `None`.
    fn piece(rig: &mut Rig, offset: u64, bytes: &[u8]) -> Option<(u64, u32, Vec<u8>)> {
        let bytes = bytes.to_vec();
        rig.handler.read_done(&mut rig.session, offset, bytes, T0)
    }

    #[test]
    fn a_second_restart_while_a_refeed_read_is_out_ignores_its_late_answer() {
        let image = test_image(70_000, 10);
        let mut rig = Rig::transferring(&image);
        rig.session.resume(stamp(T0));
        assert_eq!(reads(&rig.ios()), [(0, 65_536)]);
        assert_eq!(
            reads(&rig.read_done(0, &image[..65_536], T0)),
            [(65_536, 4_464)]
        );
        // Restarted again while the first refeed's second chunk is still being read.
        rig.session.resume(stamp(T0));
        assert_eq!(reads(&rig.ios()), [(0, 65_536)]);
        // That read's answer comes late: it belongs to no read the new refeed made.
        let stale = rig.read_done(65_536, &image[65_536..], T0);
        assert!(stale.is_empty(), "{stale:?}");
        assert_eq!(
            reads(&rig.read_done(0, &image[..65_536], T0)),
            [(65_536, 4_464)]
        );
        let rechecked = rig.read_done(65_536, &image[65_536..], T0);
        assert_eq!(
            reads(&rechecked),
            [(0, 100)],
            "rechecked: the piece is read"
        );
        assert_eq!(
            piece(&mut rig, 0, &image[..100]),
            Some((0, 100, image[..100].to_vec()))
        );
        assert_eq!(rig.session.state(), StateKind::Transferring);
    }

    #[test]
    fn an_answer_no_read_is_waiting_for_leaves_the_pending_piece_read_alone() {
        let image = test_image(70_000, 12);
        let mut rig = Rig::transferring(&image);
        let taken = Event::McuTookPiece {
            offset: 0,
            len: 100,
        };
        rig.session.handle(taken, stamp(T0)).unwrap();
        assert_eq!(reads(&rig.ios()), [(100, 100)]);
        // Late answers of reads nobody waits for: another offset, and the piece's offset with
        // a refeed chunk's length.
        assert_eq!(piece(&mut rig, 65_536, &image[65_536..]), None);
        assert_eq!(piece(&mut rig, 100, &image[100..65_636]), None);
        assert!(rig.ios().is_empty());
        assert_eq!(
            piece(&mut rig, 100, &image[100..200]),
            Some((100, 100, image[100..200].to_vec()))
        );
        assert_eq!(rig.session.state(), StateKind::Transferring);
    }

    #[test]
    fn a_piece_read_and_a_refeed_read_answered_out_of_order_each_go_where_they_belong() {
        let image = test_image(70_000, 13);
        let mut rig = Rig::transferring(&image);
        let taken = Event::McuTookPiece {
            offset: 0,
            len: 100,
        };
        rig.session.handle(taken, stamp(T0)).unwrap();
        assert_eq!(reads(&rig.ios()), [(100, 100)]);
        rig.session.resume(stamp(T0));
        assert_eq!(reads(&rig.ios()), [(0, 65_536)]);
        // The refeed's chunk comes back before the piece asked for earlier.
        assert_eq!(
            reads(&rig.read_done(0, &image[..65_536], T0)),
            [(65_536, 4_464)]
        );
        assert_eq!(
            piece(&mut rig, 100, &image[100..200]),
            Some((100, 100, image[100..200].to_vec()))
        );
        assert!(rig.ios().is_empty());
        let rechecked = rig.read_done(65_536, &image[65_536..], T0);
        assert_eq!(
            reads(&rechecked),
            [(100, 100)],
            "rechecked: the piece is read again"
        );

        // The same at one offset: a piece offered again (as the AT flow does when the MCU
        // confirms the plan again) while a refeed reads from 0.
        let mut rig = Rig::transferring(&image);
        rig.session.resume(stamp(T0));
        assert_eq!(reads(&rig.ios()), [(0, 65_536)]);
        let again = Command::OfferPiece {
            component: "STM32".into(),
            component_type: ComponentType::Mcu,
            offset: 0,
            len: 100,
            total: image.len() as u64,
        };
        assert!(matches!(rig.handler.command(again), Left::Nothing));
        assert_eq!(reads(&rig.ios()), [(0, 100)]);
        assert_eq!(
            reads(&rig.read_done(0, &image[..65_536], T0)),
            [(65_536, 4_464)]
        );
        assert_eq!(
            piece(&mut rig, 0, &image[..100]),
            Some((0, 100, image[..100].to_vec()))
        );
        let rechecked = rig.read_done(65_536, &image[65_536..], T0);
        assert_eq!(
            reads(&rechecked),
            [(0, 100)],
            "rechecked: the piece is read again"
        );
    }

    #[test]
    fn a_refeed_chunk_that_comes_back_short_is_fed_and_the_rest_asked_for() {
        let image = test_image(70_000, 14);
        let mut rig = Rig::transferring(&image);
        rig.session.resume(stamp(T0));
        assert_eq!(reads(&rig.ios()), [(0, 65_536)]);
        assert_eq!(
            reads(&rig.read_done(0, &image[..1_000], T0)),
            [(1_000, 65_536)]
        );
        assert_eq!(
            reads(&rig.read_done(1_000, &image[1_000..66_536], T0)),
            [(66_536, 3_464)]
        );
        let rechecked = rig.read_done(66_536, &image[66_536..], T0);
        assert_eq!(reads(&rechecked), [(0, 100)]);
    }

    #[test]
    fn the_memory_store_keeps_what_was_appended_in_order() {
        let mut store = MemoryStore::default();
        assert_eq!(store.image("STM32"), None);
        store.append("STM32", 0, b"abc").unwrap();
        store.append("STM32", 3, b"de").unwrap();
        assert!(store.append("STM32", 7, b"x").is_err());
        assert_eq!(store.image("STM32"), Some(&b"abcde"[..]));
        assert_eq!(store.read("STM32", 1, 3).unwrap(), b"bcd");
        assert!(store.read("STM32", 4, 2).is_err());
        store.discard("STM32");
        assert_eq!(store.image("STM32"), None);
    }

    /// A driver that records what `serve` answered.
    #[derive(Default)]
    struct Answers {
        asked: VecDeque<Io>,
        fetched: Vec<(u64, usize)>,
        failed: Vec<String>,
    }

    impl Driver for Answers {
        fn poll_io(&mut self) -> Option<Io> {
            self.asked.pop_front()
        }
        fn fetched(&mut self, offset: u64, bytes: Vec<u8>, _: Duration) {
            self.fetched.push((offset, bytes.len()));
        }
        fn fetch_failed(&mut self, reason: String, _: Duration) {
            self.failed.push(reason);
        }
        fn read_done(&mut self, _: u64, _: Vec<u8>, _: Duration) {}
        fn store_lost(&mut self, _: Duration) {}
        fn provide_plans(&mut self, _: Vec<Plan>, _: Duration) {}
        fn provide_info(&mut self, _: FirmwareInfo, _: Duration) {}
    }

    struct File(Vec<u8>);

    impl Source for File {
        fn read(&mut self, _: &str, start: u64, end: u64) -> Result<Vec<u8>, String> {
            let end = end.min(self.0.len() as u64);
            Ok(self.0[start as usize..end as usize].to_vec())
        }
    }

    #[test]
    fn serve_passes_whole_ranges_on_and_fails_a_range_the_file_cannot_fill() {
        let fetch = |start, end| Io::Fetch {
            component: "STM32".into(),
            url: "fw.bin".into(),
            start,
            end,
        };
        let mut driver = Answers::default();
        driver.asked.extend([fetch(100, 300), fetch(300, 600)]);
        let mut store = MemoryStore::default();
        serve(
            &mut driver,
            &mut File(vec![7; 500]),
            &mut store,
            T0,
            |_, io| panic!("{io:?} is source work"),
        );
        assert_eq!(driver.fetched, [(100, 200)]);
        assert_eq!(
            driver.failed,
            ["the image ends at byte 500 but 600 bytes were expected"]
        );
    }
}
