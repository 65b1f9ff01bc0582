//! Handing verified pieces to the MCU and judging its version report.

use super::download::mismatches;
use super::phase::{Current, Phase, Recheck};
use super::{
    unreachable_state, Command, Failure, Outcome, Rejected, Session, Stage, StateKind, UiEvent,
};
use crate::plan::{Component, FirmwareInfo, Plan};
use crate::time::Timestamp;

impl Session {
    /// Feeds stored bytes through the recheck of a restored transfer; once all are in and the
    /// digests still match, offers the piece the MCU was at.
    pub(super) fn on_rechecked(
        &mut self,
        offset: u64,
        bytes: Vec<u8>,
        now: Timestamp,
    ) -> Result<(), Rejected> {
        let Some(Current {
            plan,
            phase: Phase::Transferring(tr),
        }) = self.current.as_mut()
        else {
            unreachable_state()
        };
        let Recheck::Running(hasher) = &mut tr.recheck else {
            return Err(Rejected::Unexpected {
                event: "stored bytes",
                state: StateKind::Transferring,
            });
        };
        if offset != hasher.size() {
            return Err(Rejected::OutOfOrder {
                expected: hasher.size(),
                got: offset,
            });
        }
        let end = offset + bytes.len() as u64;
        if end > tr.info.size {
            return Err(Rejected::PastEnd {
                end,
                limit: tr.info.size,
            });
        }
        hasher.update(&bytes);
        if hasher.size() < tr.info.size {
            return Ok(());
        }
        let Recheck::Running(hasher) = std::mem::replace(&mut tr.recheck, Recheck::Done) else {
            unreachable_state()
        };
        let wrong = mismatches(&tr.info, &hasher.finish());
        if !wrong.is_empty() {
            self.finish(Outcome::Failed(Failure::StoredImageChanged(wrong)), now);
            return Ok(());
        }
        let piece = offer(plan, &tr.info, tr.offset, self.config.piece_size);
        self.commands.push_back(piece);
        Ok(())
    }

    pub(super) fn on_piece_taken(
        &mut self,
        offset: u64,
        len: u32,
        now: Timestamp,
    ) -> Result<(), Rejected> {
        let (piece_size, t) = (self.config.piece_size, self.config.timeouts);
        let Some(Current {
            plan,
            phase: Phase::Transferring(tr),
        }) = self.current.as_mut()
        else {
            unreachable_state()
        };
        if !matches!(tr.recheck, Recheck::Done) {
            // Nothing was offered since the restore: the stored image is still being checked.
            return Err(Rejected::Unexpected {
                event: "MCU took a piece",
                state: StateKind::Transferring,
            });
        }
        let want = piece_len(tr.info.size, tr.offset, piece_size);
        if offset != tr.offset || len != want {
            return Err(Rejected::WrongPiece {
                offset: tr.offset,
                len: want,
                got_offset: offset,
                got_len: len,
            });
        }
        tr.offset += u64::from(len);
        let component = plan.identity.clone();
        let steps: Vec<u8> = tr.progress.advance(tr.offset, tr.info.size).collect();
        let next = (tr.offset < tr.info.size).then(|| {
            tr.deadline = now.plus_millis(t.piece_take_ms);
            (offer(plan, &tr.info, tr.offset, piece_size), tr.deadline)
        });
        for percent in steps {
            self.events.push_back(UiEvent::Progress {
                component: component.clone(),
                stage: Stage::Transfer,
                percent,
            });
        }
        match next {
            Some((piece, at)) => {
                self.commands.push_back(piece);
                self.commands
                    .push_back(Command::SetDeadline { at: Some(at) });
            }
            None => self.enter(Phase::Updating {
                deadline: now.plus_millis(t.updating_ms),
                stored: true,
            }),
        }
        Ok(())
    }

    pub(super) fn on_version(&mut self, c: Component, now: Timestamp) {
        match self
            .components
            .iter_mut()
            .find(|k| k.identity == c.identity)
        {
            Some(k) => k.version = c.version.clone(),
            None => self.components.push(c.clone()),
        }
        let Some(cur) = self.current.as_ref() else {
            return;
        };
        if cur.plan.identity != c.identity
            || !matches!(
                cur.phase,
                Phase::Updating { .. } | Phase::AwaitingVersion { .. }
            )
        {
            return;
        }
        // Versions are opaque: success is equality with the target, as QuecThing decides it.
        let outcome = if c.version == cur.plan.target_version {
            Outcome::Succeeded
        } else {
            Outcome::Failed(Failure::WrongVersion {
                reported: c.version,
                target: cur.plan.target_version.clone(),
            })
        };
        self.finish(outcome, now);
    }
}

fn piece_len(size: u64, offset: u64, piece_size: u32) -> u32 {
    // Bounded by piece_size, so the cast cannot truncate.
    size.saturating_sub(offset).min(u64::from(piece_size)) as u32
}

pub(super) fn offer(plan: &Plan, info: &FirmwareInfo, offset: u64, piece_size: u32) -> Command {
    Command::OfferPiece {
        component: plan.identity.clone(),
        component_type: plan.component_type,
        offset,
        len: piece_len(info.size, offset, piece_size),
        total: info.size,
    }
}
