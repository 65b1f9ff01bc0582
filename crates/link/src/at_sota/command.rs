//! Parsing one AT command line as a QuecThing MCU sends it.

/// A command line the module understands, or why it does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `AT`
    Attention,
    /// `ATE0` / `ATE1`
    Echo(bool),
    /// `ATI`
    Identify,
    /// `AT+QIOTMCUVER="<comp>","<ver>"`
    SetMcuVersion {
        /// Component number.
        component: String,
        /// Version string.
        version: String,
    },
    /// `AT+QIOTMCUVER?`
    QueryMcuVersion,
    /// `AT+QIOTOTAREQ[=<0|1>]`
    RequestPlan {
        /// Include SHA-256 in the firmware info.
        sha256: bool,
    },
    /// `AT+QIOTOTAREQ=?`
    TestRequestPlan,
    /// `AT+QIOTUPDATE=<n>`
    Update(UpdateAction),
    /// `AT+QIOTOTARD=<start>,<maxlen>`
    Read {
        /// Offset in the firmware file.
        start: u64,
        /// Largest length the MCU accepts.
        max_len: u64,
    },
    /// `AT+QIOTOTARD=?`
    TestRead,
    /// Anything else that starts with `AT`: answered `ERROR`.
    Unknown,
    /// A known command with bad parameters: answered `ERROR`.
    Malformed,
}

/// The `<n>` of `AT+QIOTUPDATE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateAction {
    /// 0: refuse the plan.
    Refuse,
    /// 1: confirm the plan.
    Confirm,
    /// 2: fetch the next piece.
    NextPiece,
    /// 3: the MCU starts updating.
    StartUpdate,
}

fn quoted(field: &str) -> Option<String> {
    let inner = field.trim().strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"')).then(|| inner.to_string())
}

/// Parses a line without its terminator. Never panics, whatever the bytes.
pub fn parse(line: &[u8]) -> Command {
    let Ok(text) = core::str::from_utf8(line) else {
        return Command::Unknown;
    };
    let text = text.trim();
    // Compare bytes: slicing the str at 2 could split a multi-byte character.
    if text.len() < 2 || !text.as_bytes()[..2].eq_ignore_ascii_case(b"AT") {
        return Command::Unknown;
    }
    let rest = &text[2..];
    let upper = rest.to_ascii_uppercase();
    match upper.as_str() {
        "" => return Command::Attention,
        "E0" => return Command::Echo(false),
        "E1" | "E" => return Command::Echo(true),
        "I" => return Command::Identify,
        "+QIOTMCUVER?" => return Command::QueryMcuVersion,
        "+QIOTOTAREQ" => return Command::RequestPlan { sha256: false },
        "+QIOTOTAREQ=?" => return Command::TestRequestPlan,
        "+QIOTOTARD=?" => return Command::TestRead,
        _ => {}
    }
    let Some((name, args)) = rest.split_once('=') else {
        return Command::Unknown;
    };
    let fields: Vec<&str> = args.split(',').map(str::trim).collect();
    match name.to_ascii_uppercase().as_str() {
        "+QIOTMCUVER" => match fields.as_slice() {
            [c, v] => match (quoted(c), quoted(v)) {
                (Some(component), Some(version)) if !component.is_empty() => {
                    Command::SetMcuVersion { component, version }
                }
                _ => Command::Malformed,
            },
            _ => Command::Malformed,
        },
        "+QIOTOTAREQ" => match fields.as_slice() {
            ["0"] => Command::RequestPlan { sha256: false },
            ["1"] => Command::RequestPlan { sha256: true },
            _ => Command::Malformed,
        },
        "+QIOTUPDATE" => match fields.as_slice() {
            ["0"] => Command::Update(UpdateAction::Refuse),
            ["1"] => Command::Update(UpdateAction::Confirm),
            ["2"] => Command::Update(UpdateAction::NextPiece),
            ["3"] => Command::Update(UpdateAction::StartUpdate),
            _ => Command::Malformed,
        },
        "+QIOTOTARD" => match fields.as_slice() {
            [s, l] => match (s.parse::<u64>(), l.parse::<u64>()) {
                (Ok(start), Ok(max_len)) if max_len > 0 => Command::Read { start, max_len },
                _ => Command::Malformed,
            },
            _ => Command::Malformed,
        },
        _ => Command::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sota_commands() {
        assert_eq!(parse(b"AT"), Command::Attention);
        assert_eq!(parse(b"ate0"), Command::Echo(false));
        assert_eq!(
            parse(br#"AT+QIOTMCUVER="STM32","1_0_0""#),
            Command::SetMcuVersion {
                component: "STM32".into(),
                version: "1_0_0".into()
            }
        );
        assert_eq!(
            parse(b"AT+QIOTOTAREQ"),
            Command::RequestPlan { sha256: false }
        );
        assert_eq!(
            parse(b"AT+QIOTOTAREQ=1"),
            Command::RequestPlan { sha256: true }
        );
        assert_eq!(
            parse(b"AT+QIOTUPDATE=2"),
            Command::Update(UpdateAction::NextPiece)
        );
        assert_eq!(
            parse(b"AT+QIOTOTARD=1024,512"),
            Command::Read {
                start: 1024,
                max_len: 512
            }
        );
        assert_eq!(parse(b"AT+QIOTOTARD=?"), Command::TestRead);
    }

    #[test]
    fn parses_every_command_form() {
        for (line, want) in [
            (&b"ATE1"[..], Command::Echo(true)),
            (b"ATE", Command::Echo(true)),
            (b"ATI", Command::Identify),
            (b"ati", Command::Identify),
            (b"AT+QIOTMCUVER?", Command::QueryMcuVersion),
            (b"AT+QIOTOTAREQ=?", Command::TestRequestPlan),
            (b"AT+QIOTOTAREQ=0", Command::RequestPlan { sha256: false }),
            (b"AT+QIOTUPDATE=0", Command::Update(UpdateAction::Refuse)),
            (b"AT+QIOTUPDATE=1", Command::Update(UpdateAction::Confirm)),
            (
                b"AT+QIOTUPDATE=3",
                Command::Update(UpdateAction::StartUpdate),
            ),
            (
                b"  at+qiotupdate= 3 ",
                Command::Update(UpdateAction::StartUpdate),
            ),
        ] {
            assert_eq!(parse(line), want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn rejects_malformed_and_unknown_lines() {
        assert_eq!(parse(b"AT+QIOTUPDATE=9"), Command::Malformed);
        assert_eq!(parse(b"AT+QIOTOTARD=1"), Command::Malformed);
        assert_eq!(parse(b"AT+QIOTOTARD=-1,5"), Command::Malformed);
        assert_eq!(parse(b"AT+QIOTOTARD=0,0"), Command::Malformed);
        assert_eq!(parse(br#"AT+QIOTMCUVER=STM32,"1""#), Command::Malformed);
        assert_eq!(parse(br#"AT+QIOTMCUVER="","1""#), Command::Malformed);
        assert_eq!(parse(b"AT+CSQ"), Command::Unknown);
        assert_eq!(parse(b"hello"), Command::Unknown);
        assert_eq!(parse(&[0xFF, 0xFE]), Command::Unknown);
        assert_eq!(parse(b"A"), Command::Unknown);
    }
}
