//! Running commands: echo them, fail with a clear message, capture when asked.

use crate::Result;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The workspace root (where the root Cargo.toml lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// Makes the workspace root the current directory, so every command sees the same paths.
pub fn to_workspace_root() -> Result {
    std::env::set_current_dir(root()).map_err(|e| format!("cannot enter {}: {e}", root().display()))
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command with inherited output; an exit code other than 0 is an error.
pub fn status(cmd: &mut Command) -> Result {
    let what = describe(cmd);
    eprintln!("$ {what}");
    let st = cmd
        .status()
        .map_err(|e| format!("could not start `{what}`: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("`{what}` failed ({st})"))
    }
}

/// Runs a command quietly and returns its stdout, or None if it cannot run or fails.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command, echoing its stdout line by line and passing each line to `seen`.
pub fn tee(cmd: &mut Command, mut seen: impl FnMut(&str)) -> Result {
    let what = describe(cmd);
    eprintln!("$ {what}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start `{what}`: {e}"))?;
    let out = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(out).lines() {
        let line = line.map_err(|e| format!("reading output of `{what}`: {e}"))?;
        println!("{line}");
        seen(&line);
    }
    let st = child
        .wait()
        .map_err(|e| format!("waiting for `{what}`: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("`{what}` failed ({st})"))
    }
}

/// PATH with the project's local tool folders first (npm's node_modules/.bin, cargo's bin).
pub fn path_with_tools() -> String {
    let mut parts = vec![root().join("node_modules/.bin").display().to_string()];
    if let Some(home) = std::env::var_os("CARGO_HOME").or_else(|| {
        std::env::var_os("HOME").map(|h| {
            let mut p = PathBuf::from(h);
            p.push(".cargo");
            p.into_os_string()
        })
    }) {
        parts.push(PathBuf::from(home).join("bin").display().to_string());
    }
    parts.push(std::env::var("PATH").unwrap_or_default());
    parts.join(":")
}

/// A command with the project's environment: tools on PATH, Trunk kept offline.
pub fn cmd(program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("PATH", path_with_tools());
    c.env("TRUNK_SKIP_VERSION_CHECK", "true");
    c
}

/// The value after `--name` in a command's arguments, if given.
pub fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}
