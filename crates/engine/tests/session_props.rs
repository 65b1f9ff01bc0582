//! Properties of the upgrade session over random interleavings of events, timeouts and
//! failures, each with at least 10 000 generated cases (set here, not by an environment variable).

mod support;

use proptest::prelude::*;
use sota_engine::session::Stage;
use sota_engine::{Failure, Outcome};
use support::{run, Corrupt, PlanSpec, Spec, Step};

const CASES: u32 = 10_000;

/// Specs are decoded from plain integers: proptest's combinators (nested unions, maps) cost
/// milliseconds per case in a debug build, plain integer vectors a few microseconds.
fn plan_spec((len, seed, kind, at): (u16, u8, u8, u16)) -> PlanSpec {
    let corrupt = match kind % 10 {
        0 => Corrupt::Md5,
        1 => Corrupt::Crc,
        2 => Corrupt::Sha,
        3 => Corrupt::Byte(usize::from(at)),
        _ => Corrupt::None,
    };
    let delta = match kind / 10 % 10 {
        0 => Some(true),
        1 => Some(false),
        _ => None,
    };
    PlanSpec {
        image_len: 1 + usize::from(len % 700),
        seed,
        corrupt,
        mcu_downloads: kind >= 230,
        delta,
    }
}

fn step((kind, arg): (u8, u32)) -> Step {
    match kind % 43 {
        0..=3 => Step::Readings(match arg % 9 {
            0..=5 => 0,
            n => n as u8 - 5,
        }),
        4..=8 => Step::Info {
            wrong_component: arg % 10 == 0,
        },
        9..=19 => Step::Deliver(1 + (arg % 700) as u16),
        20 => Step::FailDownload,
        21..=32 => Step::Take,
        33 => Step::TakeWrong,
        34..=35 => Step::UpdateDone,
        36..=38 => Step::Version { good: arg % 7 != 0 },
        39..=41 => {
            Step::Wait(u64::from(arg) % [5_000, 5_000, 130_000, 1_500_000][(arg % 4) as usize])
        }
        _ => {
            if arg % 20 == 0 {
                Step::StoreLost
            } else {
                Step::Wait(u64::from(arg % 1_000))
            }
        }
    }
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::collection::vec(any::<(u16, u8, u8, u16)>(), 1..4),
        16u32..300,
        prop::collection::vec(any::<(u8, u32)>(), 0..160),
    )
        .prop_map(|(plans, piece_size, steps)| Spec {
            plans: plans.into_iter().map(plan_spec).collect(),
            piece_size,
            steps: steps.into_iter().map(step).collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The world checks at every offered piece that the stored image matches all three
    /// announced digests; here, additionally, a plan with any wrong digest never offers one.
    #[test]
    fn no_piece_before_all_three_digests_matched(spec in spec()) {
        let w = run(&spec, &[]);
        for (i, p) in spec.plans.iter().enumerate() {
            let offers = w.trace.offers.get(&format!("C{i}")).copied().unwrap_or(0);
            if p.corrupt != Corrupt::None && !p.mcu_downloads {
                prop_assert_eq!(offers, 0, "plan {} with {:?}", i, p.corrupt);
                if let Some(r) = w.trace.results.get(i) {
                    prop_assert!(!matches!(r.outcome, Outcome::Succeeded), "{:?}", r);
                }
            }
        }
    }

    /// Once the world goes silent and time passes every deadline, every plan has ended.
    #[test]
    fn always_ends_once_time_passes_every_deadline(spec in spec()) {
        let w = run(&spec, &[]);
        prop_assert!(w.session.is_finished());
        prop_assert_eq!(w.session.poll_timeout(), None);
        prop_assert_eq!(w.trace.results.len(), spec.plans.len());
        prop_assert_eq!(w.session.results(), &w.trace.results[..]);
        for (i, r) in w.trace.results.iter().enumerate() {
            prop_assert_eq!(&r.identity, &format!("C{i}"));
            // The last report for a plan is its final status.
            let last = w.trace.reports.iter().rev().find(|(c, _)| *c == r.identity).map(|(_, s)| *s);
            let want = match &r.outcome { Outcome::Succeeded => 11, Outcome::Failed(f) => f.status().code() };
            prop_assert_eq!(last, Some(want));
        }
    }

    /// Progress is checked after every call (see `World::check_progress`): exactly the 10 %
    /// steps the moved bytes reached, in order, each once. Here: a succeeded console
    /// download emitted all ten steps of both stages.
    #[test]
    fn progress_is_monotonic_and_exactly_at_10_percent_steps(spec in spec()) {
        let w = run(&spec, &[]);
        let all: Vec<u8> = (1..=10).map(|s| s * 10).collect();
        for (i, r) in w.trace.results.iter().enumerate() {
            if r.outcome == Outcome::Succeeded && !spec.plans[i].mcu_downloads {
                for stage in [Stage::Download, Stage::Transfer] {
                    prop_assert_eq!(w.trace.progress.get(&(r.identity.clone(), stage)), Some(&all));
                }
            }
            if let Outcome::Failed(Failure::DigestMismatch(_)) = r.outcome {
                prop_assert_eq!(w.trace.progress.get(&(r.identity.clone(), Stage::Transfer)), None);
            }
        }
    }

    /// A session serialized and restored at any points reaches the outcome of one never interrupted.
    #[test]
    fn restored_anywhere_reaches_the_same_outcome(spec in spec(), restores in prop::collection::vec(0usize..160, 1..4)) {
        let straight = run(&spec, &[]);
        let restored = run(&spec, &restores);
        prop_assert_eq!(&restored.trace.results, &straight.trace.results);
        prop_assert_eq!(&restored.trace.progress, &straight.trace.progress);
    }
}
