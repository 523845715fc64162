//! The output of an oncepay process: kept for failing tests, and searched
//! for the startup line that names the bound address.

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

/// How much server output is kept for the report of a failing test.
const KEPT_LOG_BYTES: usize = 64 * 1024;

/// Reads the child's stdout and stderr into `logs` on two threads; the
/// receiver yields the bound address once the startup line shows up.
pub fn drain_output(child: &mut Child, logs: &Arc<Mutex<String>>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    spawn_reader(stdout, Arc::clone(logs), Some(tx));
    spawn_reader(stderr, Arc::clone(logs), None);
    rx
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    logs: Arc<Mutex<String>>,
    mut listening: Option<mpsc::Sender<String>>,
) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let line = strip_ansi(&line);
            if line.contains("oncepay listening")
                && let (Some(tx), Some(addr)) = (listening.take(), parse_addr(&line))
            {
                let _ = tx.send(addr);
            }
            let mut kept = logs.lock().expect("logs");
            kept.push_str(&line);
            kept.push('\n');
            if kept.len() > 2 * KEPT_LOG_BYTES {
                let cut = kept.len() - KEPT_LOG_BYTES;
                let cut = (cut..kept.len())
                    .find(|&i| kept.is_char_boundary(i))
                    .unwrap_or(0);
                kept.replace_range(..cut, "[...]\n");
            }
        }
    });
}

/// Finds `addr=1.2.3.4:5` (text logs) or `"addr":"1.2.3.4:5"` (JSON logs).
fn parse_addr(line: &str) -> Option<String> {
    let start = line.find("addr=").map(|i| i + 5).or_else(|| {
        let at = line.find("\"addr\":")? + 7;
        Some(at + usize::from(line[at..].starts_with('"')))
    })?;
    let addr: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    (!addr.is_empty()).then_some(addr)
}

/// Removes terminal colour codes, in case the logger adds them anyway.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_bound_address_is_found_in_text_json_and_coloured_startup_lines() {
    let lines = [
        "2025-01-01T00:00:00Z  INFO oncepay: oncepay listening addr=127.0.0.1:4242",
        r#"{"level":"INFO","fields":{"message":"oncepay listening","addr":"127.0.0.1:4242"}}"#,
        "INFO oncepay listening \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:4242",
    ];

    for line in lines {
        assert_eq!(
            parse_addr(&strip_ansi(line)).as_deref(),
            Some("127.0.0.1:4242")
        );
    }
    assert_eq!(parse_addr("addr=[::1]:80 x").as_deref(), Some("[::1]:80"));
}
