//! Config acceptance against the reference release: every file in
//! `tests/configs/current/` exercises keys of a current `alertmanager.yml`
//! (0.34), valid and invalid. Each file's first line records what
//! Alertmanager 0.33.1's `amtool check-config` says of it, and the test
//! checks that this is still true and that `herald check-config` agrees.
//! A file may carry a `# herald:` line where Herald deliberately answers
//! otherwise (a 0.34 key that 0.33.1 does not know, or a refusal
//! Alertmanager only makes when it starts); the reason is on that line.

// Needs the reference amtool: the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::path::PathBuf;

use common::*;

struct Case {
    path: PathBuf,
    alertmanager_valid: bool,
    herald_valid: bool,
}

fn verdict(line: Option<&str>, prefix: &str) -> Option<bool> {
    let rest = line?.strip_prefix(prefix)?.trim_start();
    if rest.starts_with("valid") {
        Some(true)
    } else if rest.starts_with("invalid") {
        Some(false)
    } else {
        None
    }
}

fn cases() -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/configs/current");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let am = verdict(lines.next(), "# alertmanager 0.33.1:")
            .unwrap_or_else(|| panic!("{}: no '# alertmanager 0.33.1:' line", path.display()));
        let herald = verdict(lines.next(), "# herald:").unwrap_or(am);
        out.push(Case {
            path,
            alertmanager_valid: am,
            herald_valid: herald,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(out.len() >= 20, "corpus too small: {}", out.len());
    out
}

#[test]
fn herald_accepts_what_the_current_alertmanager_accepts() {
    let amtool = am_current_bin("amtool");
    let herald = PathBuf::from(herald_bin());
    let cases = cases();
    // Two at a time: each check is a process start.
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .chunks(cases.len().div_ceil(2))
            .map(|chunk| {
                let (amtool, herald) = (&amtool, &herald);
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|c| {
                            (
                                check_config_file(amtool, &c.path),
                                check_config_file(herald, &c.path),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut wrong = Vec::new();
    for (c, ((am_ok, am_out), (h_ok, h_out))) in cases.iter().zip(results) {
        let name = c.path.file_name().unwrap().to_string_lossy();
        if am_ok != c.alertmanager_valid {
            wrong.push(format!(
                "{name}: the file says 0.33.1 finds it {}, amtool says:\n{am_out}",
                if c.alertmanager_valid {
                    "valid"
                } else {
                    "invalid"
                }
            ));
        }
        if h_ok != c.herald_valid {
            wrong.push(format!(
                "{name}: Herald should find it {}, herald check-config says:\n{h_out}",
                if c.herald_valid { "valid" } else { "invalid" }
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
