//! Every JSON example in docs/protocol.md decodes, and every message type has one.

use std::collections::BTreeSet;

use sota_protocol::{decode_down, decode_up, DeviceId, Down};

const DOC: &str = include_str!("../../../docs/protocol.md");

fn blocks(info: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("```json {info}") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            out.push(body.join("\n"));
        }
    }
    out
}

#[test]
fn every_up_example_decodes_and_every_type_has_one() {
    let from = DeviceId::new("p", "d").unwrap();
    let kinds: BTreeSet<&str> = blocks("up")
        .iter()
        .map(|b| {
            decode_up(b.as_bytes(), &from)
                .unwrap_or_else(|e| panic!("{e}: {b}"))
                .kind()
        })
        .collect();
    let all = [
        "accept", "refuse", "register", "request", "status", "versions",
    ];
    assert_eq!(kinds, all.into_iter().collect());
}

#[test]
fn every_down_example_decodes_and_every_type_has_one() {
    let kinds: BTreeSet<&str> = blocks("down")
        .iter()
        .map(
            |b| match decode_down(b.as_bytes()).unwrap_or_else(|e| panic!("{e}: {b}")) {
                Down::Registered { .. } => "registered",
                Down::Plans { .. } => "plans",
                Down::Firmware(_) => "firmware",
                Down::Error { .. } => "error",
            },
        )
        .collect();
    assert_eq!(
        kinds,
        ["error", "firmware", "plans", "registered"]
            .into_iter()
            .collect()
    );
}
