//! Matcher syntax against the reference Alertmanager (0.33.1), in each of
//! its three modes: every string of the table goes into a route's
//! `matchers`; `amtool config routes` accepts or rejects the config and
//! prints the parsed matchers re-rendered, which Herald's parser must
//! reproduce exactly (acceptance, rendering, and the UTF-8 parser's error
//! texts). `herald check-config` in the same mode must agree on acceptance,
//! which also proves `--enable-feature` reaches the config loader.

// Needs the reference amtool and Alertmanager: the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use herald::matcher::{parse_matchers_in, Matchers, Mode};

const MODES: [(&str, Mode); 3] = [
    ("", Mode::Fallback),
    ("utf8-strict-mode", Mode::Utf8Strict),
    ("classic-mode", Mode::Classic),
];

/// Valid, invalid and edge-case inputs. Raw control characters and DEL
/// are left out: YAML cannot carry them unescaped either way.
const CASES: &[&str] = &[
    // Classic syntax.
    "foo=bar",
    r#"foo="bar""#,
    "foo!=bar",
    "foo=~bar",
    "foo!~bar",
    r#"foo=~"ba.*""#,
    r#"{foo="bar"}"#,
    r#"{foo="bar",baz="qux"}"#,
    r#"{foo="bar",}"#,
    r#"foo="bar","#,
    r#"foo="bar",baz!="qux""#,
    r#" foo = "bar" "#,
    "foo = bar",
    r#"{ foo = "bar" , baz =~ "q.*" }"#,
    r#"foo="""#,
    "foo=",
    r#"foo!="""#,
    r#"foo=~"""#,
    r#"foo=~".*""#,
    "foo=~.*",
    "foo=~[a-z]+",
    r#"statuscode=~"5..""#,
    "statuscode=~5..",
    "_foo=bar",
    "foo_bar=baz",
    "foo:bar=baz",
    ":foo=bar",
    "FOO=bar",
    "f00=bar",
    "a=1,b=2,c=3",
    "{a=1,b=2,c=3,}",
    "b=1,a=2",
    "a=b,a=c",
    "a=x,a=~x,a!=x",
    // Names beyond the classic rule.
    "foo.bar=baz",
    r#"service.name="api""#,
    r#""service.name"="api""#,
    "k8s-ns=default",
    "1abc=x",
    "föö=bar",
    r#""föö"="bar""#,
    "a/b=c",
    r#""foo bar"=baz"#,
    r#""foo bar"="baz""#,
    r#""foo=bar"=baz"#,
    r#""foo,bar"=baz"#,
    r#""foo{bar}"=baz"#,
    r#""foo\"bar"=baz"#,
    r#""foo\\bar"=baz"#,
    r#""foo\nbar"=baz"#,
    r#""foo\tbar"=baz"#,
    r#""foo'bar"=baz"#,
    r#""foo`bar"=baz"#,
    r#""foo~bar"=baz"#,
    r#""foo!bar"=baz"#,
    r#""日本語"="値""#,
    "日本語=値",
    r#""😀"=x"#,
    r#""\u00e9"=x"#,
    r#""\u00a0"=x"#,
    r#""a\x41"=b"#,
    r#"""=x"#,
    r#""a"="b",c.d=e"#,
    r#"{"a.b"="c"}"#,
    "a.b!=c",
    "a-b=~c.*",
    "_=x",
    r#""a b"=c,"d e"!~"f|g""#,
    // Values.
    r#"foo="bar baz""#,
    "foo=bar baz",
    r#"foo="bar,baz""#,
    "foo=bar,baz",
    r#"foo="bar\"baz""#,
    r#"foo="bar\\baz""#,
    r#"foo="bar\nbaz""#,
    r#"foo="bar\tbaz""#,
    r#"foo="\u00e9""#,
    r#"foo="\x41""#,
    r#"foo="\101""#,
    r#"foo="\q""#,
    r#"foo="\\d+""#,
    r#"foo=~"\\d+""#,
    r#"foo=~"\d+""#,
    r"foo=~\d+",
    r#"foo="bar"#,
    r#"foo=bar""#,
    r#"foo="ba"r""#,
    r#"foo="bar\""#,
    r"foo=bar\",
    r#"foo="bar\\""#,
    r#"foo="bar\\\"""#,
    "foo='bar'",
    "foo=`bar`",
    "foo=föö",
    r#"foo="föö""#,
    r#"foo="日本""#,
    "foo=😀",
    r#"foo="{}""#,
    "foo={}",
    r#"foo="a=b""#,
    "foo=a=b",
    r#"foo="a!b""#,
    "foo=a!b",
    "foo=a~b",
    r#"foo=~"a|b""#,
    "foo=~a|b",
    r#"foo=~"(a|b)""#,
    r#"foo=~"(a""#,
    "foo=~(a",
    r#"foo!~"a|b""#,
    r#"foo="\u00""#,
    r#"foo="\xff""#,
    r#"foo="\ud800""#,
    r#"foo="\u2028""#,
    r#"foo=~"^a$""#,
    r#"foo=\"bar\""#,
    r#"foo=bar\""#,
    // Operators and structure.
    "foo",
    "=bar",
    r#"="bar""#,
    "foo==bar",
    "foo=!bar",
    "foo!bar",
    "foo!",
    "foo~bar",
    "foo=~~bar",
    "foo =~ bar",
    "foo ! = bar",
    "foo bar=baz",
    "foo=bar baz=qux",
    "foo=bar,,baz=qux",
    ",",
    ",foo=bar",
    "foo=bar,,",
    "foo=bar,}",
    "{",
    "}",
    "{}",
    "{ }",
    "{,}",
    "{ , }",
    "{foo=bar",
    "foo=bar}",
    "{{foo=bar}}",
    "{foo=bar}}",
    "{foo=bar},",
    "{foo=bar}{baz=qux}",
    "{foo=bar,baz}",
    r#"foo="bar"}"#,
    r#"{"foo"}"#,
    "",
    " ",
    "\t",
    r#"foo="bar" baz"#,
    r#"foo=:"bar""#,
    r#"foo="bar"x"#,
    r#""foo""#,
    r#""foo"="#,
    r#""foo=bar""#,
    r#""foo"="bar"#,
    r#""foo=bar"#,
    r"foo\=bar",
    r#"foo\"=bar"#,
    "!foo=bar",
    "~foo=bar",
    "'foo'=bar",
    "foo=bar # comment",
    "foo=bar\nbaz=qux",
    r#"foo="bar",baz"#,
    r#"foo = "b a r" , "q.x" !~ "y" ,"#,
    r#"foo="bar", baz="qux", "#,
    // Unicode whitespace: Go's classic `\s` is ASCII only.
    "foo\u{a0}=bar",
    "\u{a0}foo=bar",
    "foo=bar\u{a0}",
    "foo=\u{3000}bar",
    "foo=bar\u{2028}",
    "foo = \u{2003}\"bar\"",
];

fn route_config(matcher: &str) -> String {
    let m = serde_json::to_string(matcher).unwrap();
    format!(
        "route:\n  receiver: a\n  routes:\n    - receiver: b\n      matchers: [{m}]\n\
         receivers:\n  - name: a\n  - name: b\n"
    )
}

/// `amtool config routes`: `Ok(rendered matchers)` of the child route
/// (`default-route` when it has none) or `Err(amtool's error text)`.
fn amtool_routes(amtool: &Path, mode: &str, file: &Path) -> Result<String, String> {
    let mut cmd = Command::new(amtool);
    if !mode.is_empty() {
        cmd.arg(format!("--enable-feature={mode}"));
    }
    let out = cmd
        .arg("config")
        .arg("routes")
        .arg(format!("--config.file={}", file.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let err = stderr
            .lines()
            .find_map(|l| l.strip_prefix("amtool: error: "))
            .unwrap_or_else(|| panic!("no error line from amtool: {stderr}"));
        return Err(err.to_string());
    }
    // The child is the last line: `    └── {…}  receiver: b`.
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.ends_with("  receiver: b"))
        .unwrap_or_else(|| panic!("no child route in: {stdout}"));
    let (_, rest) = line.split_once("── ").unwrap();
    Ok(rest.strip_suffix("  receiver: b").unwrap().to_string())
}

fn herald_check_config(mode: &str, file: &Path) -> bool {
    let mut cmd = Command::new(herald_bin());
    if !mode.is_empty() {
        cmd.arg(format!("--enable-feature={mode}"));
    }
    cmd.arg("check-config")
        .arg(file)
        .output()
        .unwrap()
        .status
        .success()
}

fn herald_parse(mode: Mode, input: &str) -> Result<String, String> {
    match parse_matchers_in(mode, input, "test") {
        Ok(ms) if ms.is_empty() => Ok("default-route".into()),
        Ok(ms) => {
            let mut ms = Matchers(ms);
            ms.sort();
            Ok(ms.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Runs `f` over `items` on a few threads: the Go side is hundreds of
/// short processes.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let chunk = items.len().div_ceil(6).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().map(&f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// Error texts Herald does not reproduce: regex compile errors (Rust's regex
/// crate words them differently from Go's regexp).
fn error_text_comparable(go: &str) -> bool {
    !go.contains("regexp") && !go.contains("failed to create matcher")
}

#[test]
fn matchers_agree_with_alertmanager_in_every_mode() {
    assert!(CASES.len() >= 150, "{} cases", CASES.len());
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = CASES
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let p = dir.path().join(format!("case-{i}.yml"));
            std::fs::write(&p, route_config(c)).unwrap();
            p
        })
        .collect();
    let amtool = am_current_bin("amtool");
    let jobs: Vec<(usize, &str, Mode)> = (0..CASES.len())
        .flat_map(|i| MODES.iter().map(move |&(f, m)| (i, f, m)))
        .collect();
    let results = parallel(&jobs, |&(i, flag, _)| {
        (
            amtool_routes(&amtool, flag, &files[i]),
            herald_check_config(flag, &files[i]),
        )
    });
    let mut failures = Vec::new();
    let (mut accepted, mut rejected) = (0, 0);
    for (&(i, flag, mode), (go, herald_cli)) in jobs.iter().zip(results) {
        let input = CASES[i];
        let ours = herald_parse(mode, input);
        let mode_name = if flag.is_empty() { "fallback" } else { flag };
        match (&go, &ours) {
            (Ok(g), Ok(h)) if g != h => {
                failures.push(format!("{mode_name} {input:?}: parsed as {h}, Go {g}"))
            }
            (Ok(g), Err(e)) => failures.push(format!(
                "{mode_name} {input:?}: Herald rejects ({e}), Go accepts as {g}"
            )),
            (Err(g), Ok(h)) => failures.push(format!(
                "{mode_name} {input:?}: Herald accepts as {h}, Go rejects ({g})"
            )),
            (Err(g), Err(e)) if g != e && error_text_comparable(g) => {
                failures.push(format!("{mode_name} {input:?}: error {e:?}, Go {g:?}"))
            }
            _ => {}
        }
        if herald_cli != go.is_ok() {
            failures.push(format!(
                "{mode_name} {input:?}: herald check-config says {herald_cli}, Go {}",
                go.is_ok()
            ));
        }
        if go.is_ok() {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    assert!(accepted > 100 && rejected > 100, "{accepted} / {rejected}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `group_by` and `equal` take UTF-8 names outside classic mode; `match`
/// keys stay classic in every mode.
#[test]
fn label_names_follow_the_mode() {
    let names = [
        "a", "a_b", "a:b", "_", "a.b", "a-b", "1a", "föö", "a b", "a\"b", "", "...",
    ];
    let configs: Vec<String> = names
        .iter()
        .flat_map(|n| {
            let n = serde_json::to_string(n).unwrap();
            [
                format!("route:\n  receiver: a\n  group_by: [{n}]\nreceivers:\n  - name: a\n"),
                format!(
                    "route:\n  receiver: a\ninhibit_rules:\n  - source_matchers: [x=y]\n    equal: [{n}]\nreceivers:\n  - name: a\n"
                ),
                format!(
                    "route:\n  receiver: a\n  routes:\n    - receiver: a\n      match: {{{n}: x}}\nreceivers:\n  - name: a\n"
                ),
            ]
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let amtool = am_current_bin("amtool");
    let jobs: Vec<(usize, &str)> = (0..configs.len())
        .flat_map(|i| MODES.iter().map(move |&(f, _)| (i, f)))
        .collect();
    let results = parallel(&jobs, |&(i, flag)| {
        let p = dir.path().join(format!("names-{i}-{flag}.yml"));
        std::fs::write(&p, &configs[i]).unwrap();
        let mut go = Command::new(&amtool);
        if !flag.is_empty() {
            go.arg(format!("--enable-feature={flag}"));
        }
        let go = go.arg("check-config").arg(&p).output().unwrap();
        (go.status.success(), herald_check_config(flag, &p))
    });
    let mut failures = Vec::new();
    for (&(i, flag), (go, ours)) in jobs.iter().zip(results) {
        if go != ours {
            failures.push(format!("{flag:?} {:?}: Herald {ours}, Go {go}", configs[i]));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn both_modes_at_once_refuse_to_start() {
    let out = Command::new(herald_bin())
        .args([
            "--enable-feature=classic-mode,utf8-strict-mode",
            "check-config",
            "/nonexistent.yml",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot have both classic and UTF-8 modes enabled"));
}

/// The reference Alertmanager in a given mode, on a port below the
/// ephemeral range: a port picked with `bind(0)` and released can be handed
/// to another test's server before Alertmanager binds it, and then the
/// comparison would silently run against that server.
struct Reference {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_reference(config: &str, flags: &[&str]) -> Reference {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alertmanager.yml");
    std::fs::write(&file, config).unwrap();
    let client = reqwest::Client::new();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    for attempt in 0..10u32 {
        let port = 20000 + ((seed / 7 + attempt * 997) % 10000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        // The binary itself rather than the `bin/alertmanager` wrapper:
        // the API needs none of the UI files the wrapper mounts.
        let bin = am_current().join("root/usr/bin/prometheus-alertmanager");
        let mut child = Command::new(&bin)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .args(flags)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if let Ok(r) = client.get(format!("{base}/api/v2/status")).send().await {
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                let version = v["versionInfo"]["version"].as_str().unwrap_or_default();
                assert!(
                    version.starts_with("0.33"),
                    "not the reference on {base}: {v}"
                );
                return Reference {
                    child,
                    base,
                    _dir: dir,
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("the reference Alertmanager did not start");
}

/// API `filter` values are single matchers (`compat.Matcher`): the status
/// code of `GET /api/v2/alerts` and `/api/v2/silences` must be 0.33.1's, in
/// the default mode and in UTF-8 strict mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_filters_agree_with_alertmanager() {
    let config = "route:\n  receiver: a\nreceivers:\n  - name: a\n";
    let filters = [
        "foo=bar",
        r#"foo="bar""#,
        "foo.bar=baz",
        r#""foo bar"="baz""#,
        "föö=bar",
        "{foo=bar}",
        "foo=bar}",
        "{foo=bar",
        "foo=bar,baz=qux",
        "foo=bar,",
        "foo=bar baz",
        "foo=",
        r#"foo="""#,
        "",
        " ",
        "foo",
        "=bar",
        r#"foo="bar"#,
        r#"foo="\q""#,
        r#"foo="a\tb""#,
        "foo=~(a",
        r#"foo=~"a|b""#,
        "foo!bar",
        "'foo'=bar",
        "1abc=x",
        r#"""=x"#,
    ];
    let client = reqwest::Client::new();
    let mut failures = Vec::new();
    for flags in [&[][..], &["--enable-feature=utf8-strict-mode"][..]] {
        let herald = start_herald(config, flags).await;
        let am = start_reference(config, flags).await;
        for f in filters {
            for path in ["/api/v2/alerts", "/api/v2/silences"] {
                let q: String = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("filter", f)
                    .finish();
                let mut codes = Vec::new();
                for base in [&herald.base, &am.base] {
                    let r = client
                        .get(format!("{base}{path}?{q}"))
                        .send()
                        .await
                        .unwrap();
                    codes.push(r.status().as_u16());
                }
                if codes[0] != codes[1] {
                    failures.push(format!(
                        "{flags:?} {path} filter={f:?}: Herald {}, Alertmanager {}",
                        codes[0], codes[1]
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `routes test` takes one matcher per label argument, like
/// `amtool config routes test`: UTF-8 names route, and what amtool refuses
/// Herald refuses.
#[test]
fn routes_test_labels_agree_with_amtool() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routes.yml");
    std::fs::write(
        &file,
        "route:\n  receiver: a\n  routes:\n    - receiver: b\n      matchers: [service.name=api]\n\
         \x20   - receiver: c\n      matchers: ['\"a b\"=c']\n\
         receivers:\n  - name: a\n  - name: b\n  - name: c\n",
    )
    .unwrap();
    let amtool = am_current_bin("amtool");
    let config = format!("--config.file={}", file.display());
    let cases: [&[&str]; 8] = [
        &["team=db"],
        &["service.name=api"],
        &[r#""service.name"="api""#],
        &[r#""a b"=c"#],
        &["x=1", "service.name=api"],
        &["team=~db"],
        &["{team=db}"],
        &["team=db,service.name=api"],
    ];
    let mut failures = Vec::new();
    for args in cases {
        let go = Command::new(&amtool)
            .args(["config", "routes", "test", &config])
            .args(args)
            .output()
            .unwrap();
        let ours = Command::new(herald_bin())
            .args(["routes", "test", &config])
            .args(args)
            .output()
            .unwrap();
        let (go_ok, ours_ok) = (go.status.success(), ours.status.success());
        // amtool logs the fallback's warnings to stdout: the receivers are
        // the last line.
        let last = |b: &[u8]| {
            let s = String::from_utf8_lossy(b);
            s.trim().lines().last().unwrap_or_default().to_string()
        };
        let (go_out, ours_out) = (last(&go.stdout), last(&ours.stdout));
        if go_ok != ours_ok || (go_ok && go_out != ours_out) {
            failures.push(format!(
                "{args:?}: Herald {ours_ok} {ours_out:?}, amtool {go_ok} {go_out:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
