//! Downloading through the verifier, resuming after failures and restores, and the
//! verification that gates every byte that goes to the MCU.

use super::phase::{Current, Hasher, Phase, Recheck, Steps, Transfer};
use super::{offer, unreachable_state, Command, DigestKind, Failure, Mismatch, Outcome, Rejected};
use super::{Session, Stage, StateKind, UiEvent};
use crate::digest::{Digests, ExpectedDigests, Verdict};
use crate::plan::FirmwareInfo;
use crate::status::{Report, Status};
use crate::time::Timestamp;

impl Session {
    pub(super) fn on_downloaded(
        &mut self,
        offset: u64,
        bytes: Vec<u8>,
        now: Timestamp,
    ) -> Result<(), Rejected> {
        let stall = self.config.timeouts.download_stall_ms;
        let Some(Current {
            plan,
            phase: Phase::Downloading(d),
        }) = self.current.as_mut()
        else {
            unreachable_state()
        };
        let Hasher::Live(hasher) = &mut d.hasher else {
            return Err(Rejected::NotRefed);
        };
        if offset != d.received {
            return Err(Rejected::OutOfOrder {
                expected: d.received,
                got: offset,
            });
        }
        let end = offset + bytes.len() as u64;
        if end > d.info.size {
            return Err(Rejected::PastEnd {
                end,
                limit: d.info.size,
            });
        }
        if bytes.is_empty() {
            return Ok(());
        }
        hasher.update(&bytes);
        d.received = end;
        d.deadline = now.plus_millis(stall);
        let component = plan.identity.clone();
        self.commands.push_back(Command::StoreChunk {
            component: component.clone(),
            offset,
            bytes,
        });
        self.commands.push_back(Command::SetDeadline {
            at: Some(d.deadline),
        });
        let steps: Vec<u8> = d.progress.advance(d.received, d.info.size).collect();
        let done = d.received == d.info.size;
        for percent in steps {
            self.events.push_back(UiEvent::Progress {
                component: component.clone(),
                stage: Stage::Download,
                percent,
            });
            self.commands.push_back(Command::Report(Report {
                status: Status::Downloading,
                component: component.clone(),
                message: format!("downloaded {percent} %"),
                percent: Some(percent),
                version: None,
            }));
        }
        if done {
            self.verify(now);
        }
        Ok(())
    }

    pub(super) fn on_stored(
        &mut self,
        offset: u64,
        bytes: Vec<u8>,
        now: Timestamp,
    ) -> Result<(), Rejected> {
        if let Some(Current {
            phase: Phase::Transferring(_),
            ..
        }) = self.current
        {
            return self.on_rechecked(offset, bytes, now);
        }
        let Some(Current {
            phase: Phase::Downloading(d),
            ..
        }) = self.current.as_mut()
        else {
            unreachable_state()
        };
        let Hasher::Refeeding(hasher) = &mut d.hasher else {
            return Err(Rejected::Unexpected {
                event: "stored bytes",
                state: StateKind::Downloading,
            });
        };
        if offset != hasher.size() {
            return Err(Rejected::OutOfOrder {
                expected: hasher.size(),
                got: offset,
            });
        }
        let end = offset + bytes.len() as u64;
        if end > d.received {
            return Err(Rejected::PastEnd {
                end,
                limit: d.received,
            });
        }
        hasher.update(&bytes);
        if hasher.size() == d.received {
            d.hasher = Hasher::Live(std::mem::take(hasher));
            self.commands.push_back(fetch(&d.info, d.received));
        }
        Ok(())
    }

    pub(super) fn download_failed(&mut self, reason: String, now: Timestamp) {
        let stall = self.config.timeouts.download_stall_ms;
        let Some(Current {
            plan,
            phase: Phase::Downloading(d),
        }) = self.current.as_mut()
        else {
            return;
        };
        let retries = plan
            .download_retries
            .unwrap_or(self.config.download_retries);
        d.failures = d.failures.saturating_add(1);
        if d.failures > retries {
            let failures = d.failures;
            self.finish(
                Outcome::Failed(Failure::DownloadGaveUp {
                    failures,
                    last: reason,
                }),
                now,
            );
            return;
        }
        d.deadline = now.plus_millis(stall);
        let component = plan.identity.clone();
        self.events.push_back(UiEvent::DownloadRetry {
            component,
            failures: d.failures,
            allowed: retries,
            resume_at: d.received,
            reason,
        });
        // While the stored prefix is being re-fed, the fetch follows when that completes.
        if matches!(d.hasher, Hasher::Live(_)) {
            self.commands.push_back(fetch(&d.info, d.received));
        }
        self.commands.push_back(Command::SetDeadline {
            at: Some(d.deadline),
        });
    }

    /// The whole image arrived: all three digests must match before any piece is offered.
    pub(super) fn verify(&mut self, now: Timestamp) {
        let Some(Current {
            plan,
            phase: Phase::Downloading(d),
        }) = self.current.as_mut()
        else {
            return;
        };
        let Hasher::Live(hasher) = std::mem::take(&mut d.hasher) else {
            return;
        };
        let got = hasher.finish();
        let mismatches = mismatches(&d.info, &got);
        if !mismatches.is_empty() {
            self.finish(Outcome::Failed(Failure::DigestMismatch(mismatches)), now);
            return;
        }
        let component = plan.identity.clone();
        let info = d.info.clone();
        self.events.push_back(UiEvent::Verified {
            component: component.clone(),
            digests: got,
        });
        self.report(
            Status::DownloadOk,
            &component,
            "MD5, CRC32 and SHA-256 match".into(),
        );
        self.report(
            Status::Updating,
            &component,
            format!("handing {} bytes to the MCU", info.size),
        );
        let deadline = now.plus_millis(self.config.timeouts.piece_take_ms);
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let piece = offer(&cur.plan, &info, 0, self.config.piece_size);
        self.enter(Phase::Transferring(Transfer {
            info,
            offset: 0,
            progress: Steps::default(),
            deadline,
            // The image was verified as it streamed in.
            recheck: Recheck::Done,
        }));
        self.commands.push_back(piece);
    }
}

pub(super) fn fetch(info: &FirmwareInfo, from: u64) -> Command {
    Command::Fetch {
        component: info.identity.clone(),
        url: info.url.clone(),
        start: from,
        end: info.size,
    }
}

/// Each of the three digests that differs from the firmware info's.
pub(super) fn mismatches(info: &FirmwareInfo, got: &Digests) -> Vec<Mismatch> {
    let expected = ExpectedDigests {
        md5: Some(info.md5.clone()),
        crc32: Some(info.crc32.clone()),
        sha256: Some(info.sha256.clone()),
    };
    let (md5, crc, sha) = expected.check(got);
    [
        (md5, DigestKind::Md5, &info.md5, &got.md5),
        (crc, DigestKind::Crc32, &info.crc32, &got.crc32),
        (sha, DigestKind::Sha256, &info.sha256, &got.sha256),
    ]
    .into_iter()
    .filter(|(v, ..)| *v != Verdict::Match)
    .map(|(_, kind, e, g)| Mismatch {
        kind,
        expected: e.clone(),
        got: g.clone(),
    })
    .collect()
}
