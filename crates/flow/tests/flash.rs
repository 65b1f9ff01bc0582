//! `Flash` against the simulated bootloaders through the line model: the digest gate, the
//! streaming YMODEM window, the ROM bootloader's read-back, progress and cancel.

use core::time::Duration;
use sota_engine::{Digester, ExpectedDigests};
use sota_flow::{Flash, FlashNotice, LocalFirmware, Step};
use sota_link::{an3155, ymodem, Endpoint};
use sota_sim::bootloader::{Bootloader, BootloaderConfig};
use sota_sim::line::{Faults, Line, LineConfig};
use sota_sim::test_image;
use sota_sim::ymodem_receiver::{Receiver, ReceiverConfig};

fn local(image: &[u8], expected: ExpectedDigests) -> LocalFirmware {
    LocalFirmware {
        identity: "STM32".into(),
        target_version: "2_0_0".into(),
        source_version: String::new(),
        url: "fw.bin".into(),
        own: Digester::digest(image),
        expected,
    }
}

/// A flash fed from `image` whenever it asks, as the console feeds it from the picked file.
struct Fed<'a> {
    flash: Flash,
    image: &'a [u8],
    asked: Vec<(u64, u64)>,
    notices: Vec<FlashNotice>,
    steps: Vec<Step>,
}

impl Fed<'_> {
    fn after(&mut self, now: Duration) {
        if let Some((offset, len)) = self.flash.wants() {
            self.asked.push((offset, len));
            let bytes = self.image[offset as usize..(offset + len) as usize].to_vec();
            self.flash.provide(offset, bytes, now);
        }
        self.notices
            .extend(std::iter::from_fn(|| self.flash.poll_notice()));
        let step = self.flash.state().step;
        if self.steps.last() != Some(&step) {
            self.steps.push(step);
        }
    }
}

impl Endpoint for Fed<'_> {
    fn handle_input(&mut self, now: Duration, bytes: &[u8]) {
        self.flash.handle_input(now, bytes);
        self.after(now);
    }
    fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.flash.poll_transmit(out);
    }
    fn poll_timeout(&self) -> Option<Duration> {
        self.flash.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Duration) {
        self.flash.handle_timeout(now);
        self.after(now);
    }
    fn is_done(&self) -> bool {
        self.flash.is_done()
    }
}

fn fed(flash: Flash, image: &[u8]) -> Fed<'_> {
    Fed {
        flash,
        image,
        asked: Vec::new(),
        notices: Vec::new(),
        steps: Vec::new(),
    }
}

#[test]
fn a_streamed_ymodem_flash_asks_for_each_window_once_and_delivers_byte_exact() {
    let image = test_image(150_000, 1);
    let flash = Flash::ymodem_streaming(
        &local(&image, ExpectedDigests::default()),
        "fw.bin",
        ymodem::Config::default(),
        Duration::ZERO,
    )
    .unwrap();
    assert_eq!(flash.size(), 150_000);
    assert_eq!(flash.wants(), None, "nothing before the receiver asks");
    let mut f = fed(flash, &image);
    let mut rx = Receiver::new(ReceiverConfig::default(), Duration::ZERO);
    let report = Line::new(LineConfig::n81(921_600), Faults::default()).run(
        &mut f,
        &mut rx,
        Duration::from_secs(120),
    );
    assert!(report.finished, "{report:?}");
    assert!(rx.files()[0].data == image);
    assert_eq!(f.asked, [(0, 65_536), (65_536, 65_536), (131_072, 18_928)]);
    assert_eq!(
        f.notices,
        [FlashNotice::Finished {
            summary: "the bootloader acknowledged all 150000 bytes over YMODEM".into()
        }]
    );
    assert_eq!(f.steps, [Step::Connecting, Step::Writing, Step::Done]);
    let end = f.flash.state();
    assert_eq!((end.done, end.total), (0, 0), "done has no size");
}

#[test]
fn a_file_that_differs_from_the_expected_digests_cannot_start() {
    let image = test_image(4096, 2);
    let own = Digester::digest(&image);
    let wrong = ExpectedDigests::parse(&own.md5, "", &"ab".repeat(32)).unwrap();
    let err = Flash::ymodem_streaming(
        &local(&image, wrong.clone()),
        "a",
        ymodem::Config::default(),
        Duration::ZERO,
    )
    .err()
    .unwrap();
    assert!(
        err.contains("SHA-256") && err.contains("nothing was sent"),
        "{err}"
    );
    let err = Flash::an3155(
        &local(&image, wrong),
        &image,
        an3155::Options::default(),
        an3155::Config::default(),
        Duration::ZERO,
    )
    .err()
    .unwrap();
    assert!(err.contains("SHA-256"), "{err}");
    let right = ExpectedDigests::parse(&own.md5, &own.crc32, &own.sha256).unwrap();
    assert!(Flash::ymodem(
        &local(&image, right),
        "a",
        image.clone(),
        ymodem::Config::default(),
        Duration::ZERO
    )
    .is_ok());
}

#[test]
fn the_rom_bootloader_is_identified_written_and_read_back() {
    let image = test_image(10_000, 3);
    let flash = Flash::an3155(
        &local(&image, ExpectedDigests::default()),
        &image,
        an3155::Options::default(),
        an3155::Config::default(),
        Duration::ZERO,
    )
    .unwrap();
    assert_eq!(flash.wants(), None, "the ROM bootloader holds its image");
    let mut f = fed(flash, &image);
    let mut mcu = Bootloader::new(BootloaderConfig::default());
    let report = Line::new(LineConfig::e81(115_200), Faults::default()).run(
        &mut f,
        &mut mcu,
        Duration::from_secs(120),
    );
    assert!(report.finished, "{report:?}");
    assert_eq!(&mcu.flash().contents()[..image.len()], &image[..]);
    assert!(matches!(
        &f.notices[0],
        FlashNotice::Identified {
            bootloader: 0x22,
            pid: 0x410,
            ..
        }
    ));
    assert!(
        matches!(f.notices.last(), Some(FlashNotice::Finished { summary }) if summary.contains("read back identical"))
    );
    for step in [Step::Erasing, Step::Writing, Step::ReadingBack, Step::Done] {
        assert!(
            f.steps.contains(&step),
            "{step:?} missing from {:?}",
            f.steps
        );
    }
}

#[test]
fn cancel_sends_two_cans_once_and_stops_everything() {
    let image = test_image(50_000, 4);
    let mut flash = Flash::ymodem_streaming(
        &local(&image, ExpectedDigests::default()),
        "fw.bin",
        ymodem::Config::default(),
        Duration::ZERO,
    )
    .unwrap();
    let t = Duration::from_millis(5);
    // The receiver asks; the header goes out; it asks for data.
    flash.handle_input(t, b"C");
    flash.handle_input(t, &[ymodem::ACK, b'C']);
    assert!(flash.wants().is_some());
    let mut out = Vec::new();
    flash.poll_transmit(&mut out);
    out.clear();
    flash.cancel(t);
    assert!(flash.is_done());
    assert_eq!(flash.state().step, Step::Failed);
    assert_eq!(flash.wants(), None, "nothing more is asked after a cancel");
    assert_eq!(flash.poll_timeout(), None);
    flash.poll_transmit(&mut out);
    assert_eq!(out, [ymodem::CAN, ymodem::CAN]);
    out.clear();
    flash.handle_input(t, b"C");
    flash.handle_timeout(Duration::from_secs(100));
    flash.cancel(t);
    flash.poll_transmit(&mut out);
    assert!(out.is_empty(), "nothing after the farewell: {out:?}");
}

#[test]
fn cancelling_the_rom_bootloader_sends_nothing_more() {
    let image = test_image(2048, 5);
    let mut flash = Flash::an3155(
        &local(&image, ExpectedDigests::default()),
        &image,
        an3155::Options::default(),
        an3155::Config::default(),
        Duration::ZERO,
    )
    .unwrap();
    let mut out = Vec::new();
    flash.poll_transmit(&mut out);
    assert_eq!(out, [0x7F], "it starts with the sync byte");
    out.clear();
    flash.cancel(Duration::from_millis(1));
    flash.handle_timeout(Duration::from_secs(10));
    flash.poll_transmit(&mut out);
    assert!(out.is_empty());
    assert!(flash.is_done());
}

#[test]
fn a_silent_rom_bootloader_fails_the_flash_when_its_waits_run_out() {
    let image = test_image(2048, 6);
    let config = an3155::Config::default();
    let mut flash = Flash::an3155(
        &local(&image, ExpectedDigests::default()),
        &image,
        an3155::Options::default(),
        config.clone(),
        Duration::ZERO,
    )
    .unwrap();
    let mut out = Vec::new();
    flash.poll_transmit(&mut out);
    assert_eq!(out, [0x7F]);
    // The first wait is the sync byte's answer; nothing happens before it.
    assert_eq!(flash.poll_timeout(), Some(config.response_timeout));
    flash.handle_timeout(config.response_timeout - Duration::from_millis(1));
    assert_eq!(flash.poll_notice(), None);
    // Every wait runs out: the flasher tries the sync again, then gives up.
    let mut waits = 0;
    while let Some(t) = flash.poll_timeout() {
        waits += 1;
        assert!(waits <= 100, "the flash never gave up");
        flash.handle_timeout(t);
    }
    assert!(waits > 1, "the sync was tried again");
    assert!(flash.is_done());
    assert_eq!(flash.state().step, Step::Failed);
    assert!(
        matches!(flash.poll_notice(), Some(FlashNotice::Failed(why)) if why.contains("sync byte")),
        "a failure naming the sync"
    );
}
