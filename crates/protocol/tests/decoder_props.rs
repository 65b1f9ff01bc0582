//! Properties of the decoder: hostile bytes never panic and are refused with a
//! code, valid messages survive encode → decode unchanged, and mutations of
//! valid messages are either refused or still pass every field rule.

use proptest::prelude::*;
use sota_engine::Status;
use sota_protocol::decode::is_token;
use sota_protocol::{
    decode_down, decode_up, CompType, ComponentVersion, DeviceId, Down, PackageType, PlanOffer,
    StatusReport, Up, UpgradeMode, MAX_UP_BYTES,
};

fn me() -> DeviceId {
    DeviceId::new("prod", "dev").unwrap()
}

fn token() -> impl Strategy<Value = String> {
    "[!-~]{1,64}"
}

/// A wire planId: a plan (positive) or a verification job (negative).
fn plan_id() -> impl Strategy<Value = i64> {
    prop_oneof![1..i64::MAX, -i64::MAX..0]
}

fn status() -> impl Strategy<Value = Status> {
    proptest::sample::select(Status::ALL.to_vec())
}

fn up() -> impl Strategy<Value = Up> {
    prop_oneof![
        token().prop_map(|product_secret| Up::Register { product_secret }),
        Just(Up::Request),
        proptest::collection::btree_map(token(), token(), 1..64).prop_map(|m| Up::Versions {
            components: m
                .into_iter()
                .map(|(comp_no, version)| ComponentVersion { comp_no, version })
                .collect(),
        }),
        (plan_id(), token()).prop_map(|(plan_id, comp_no)| Up::accept(plan_id, comp_no)),
        (plan_id(), token(), ".{0,200}").prop_map(|(plan_id, comp_no, message)| Up::Refuse {
            plan_id,
            comp_no,
            message
        }),
        (
            plan_id(),
            token(),
            status(),
            0u8..=100,
            proptest::option::of(token()),
            ".{0,200}"
        )
            .prop_map(
                |(plan_id, comp_no, status, p, version, message)| Up::Status(StatusReport {
                    plan_id,
                    comp_no,
                    status,
                    percent: (status == Status::Downloading).then_some(p),
                    version,
                    message,
                })
            ),
    ]
}

fn offer() -> impl Strategy<Value = PlanOffer> {
    (
        1..i64::MAX,
        token(),
        proptest::option::of(token()),
        token(),
        any::<u8>(),
        any::<i32>(),
        any::<u64>(),
    )
        .prop_map(
            |(plan_id, comp_no, src, tgt_ver, min_battery, min_signal, size)| PlanOffer {
                plan_id,
                comp_no,
                comp_type: CompType::Mcu,
                package_type: if src.is_some() {
                    PackageType::Delta
                } else {
                    PackageType::Full
                },
                src_ver: src.unwrap_or_default(),
                tgt_ver,
                min_battery,
                min_signal,
                use_space: size / 2,
                size,
                download_retries: 3,
                mode: UpgradeMode::Silent,
                texts: Default::default(),
            },
        )
}

fn check_rules(up: &Up) {
    match up {
        Up::Versions { components } => {
            assert!(!components.is_empty() && components.len() <= 64);
            assert!(components
                .iter()
                .all(|c| is_token(&c.comp_no) && is_token(&c.version)));
        }
        Up::Accept {
            plan_id, comp_no, ..
        }
        | Up::Refuse {
            plan_id, comp_no, ..
        } => {
            assert!(*plan_id != 0 && is_token(comp_no));
        }
        Up::Status(s) => {
            assert!(s.plan_id != 0 && is_token(&s.comp_no));
            assert!(
                s.percent.is_none() || (s.status == Status::Downloading && s.percent <= Some(100))
            );
        }
        Up::Register { product_secret } => assert!(is_token(product_secret)),
        Up::Request => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(up) = decode_up(&bytes, &me()) {
            check_rules(&up);
        }
        let _ = decode_down(&bytes);
    }

    #[test]
    fn valid_messages_round_trip(msg in up()) {
        prop_assert_eq!(decode_up(&msg.to_json(), &me()), Ok(msg));
    }

    #[test]
    fn plans_round_trip(plans in proptest::collection::vec(offer(), 0..20)) {
        let down = Down::Plans { plans };
        prop_assert_eq!(decode_down(&down.to_json()), Ok(down));
    }

    #[test]
    fn mutated_messages_are_refused_or_still_valid(
        msg in up(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = msg.to_json();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        match decode_up(&bytes, &me()) {
            Ok(up) => check_rules(&up),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn oversize_is_refused_before_parsing(extra in 1usize..4096) {
        let mut bytes = br#"{"type":"request","pad":""#.to_vec();
        bytes.resize(MAX_UP_BYTES + extra - 2, b'a');
        bytes.extend_from_slice(b"\"}");
        let e = decode_up(&bytes, &me()).unwrap_err();
        prop_assert_eq!(e.code(), sota_protocol::ErrorCode::TooLarge);
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let mut bytes = br#"{"type":"request","x":"#.to_vec();
    bytes.extend(std::iter::repeat_n(b'[', 10_000));
    let e = decode_up(&bytes, &me()).unwrap_err();
    assert_eq!(e.code(), sota_protocol::ErrorCode::BadJson, "{e}");
}
