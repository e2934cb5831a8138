//! Differential tests of the template engine against the real Go
//! `text/template`, through the reference Alertmanager's (0.33.1) `amtool
//! template render`: the same text on the same data renders identically.

#[cfg(feature = "system-tests")]
mod common;

use std::process::Command;

use herald::template::Templates;
#[cfg(feature = "system-tests")]
use herald::template::Value;

#[cfg(feature = "system-tests")]
fn amtool_render(text: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.tmpl");
    std::fs::write(&empty, "").unwrap();
    amtool_render_with(text, empty.to_str().unwrap())
}

/// Renders `text` with the real Go engine, with the templates in `glob`.
#[cfg(feature = "system-tests")]
fn amtool_render_with(text: &str, glob: &str) -> Result<String, String> {
    let out = Command::new(common::am_current_bin("amtool"))
        .args([
            "template",
            "render",
            &format!("--template.glob={glob}"),
            &format!("--template.text={text}"),
        ])
        .output()
        .expect("amtool runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout)
            .trim_end_matches('\n')
            .to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[cfg(feature = "system-tests")]
fn herald_render(text: &str) -> Result<String, String> {
    let mut t = Templates::with_builtins();
    t.add("text", text).map_err(|e| e.to_string())?;
    t.execute("text", &Value::Nil).map_err(|e| e.to_string())
}

#[cfg(feature = "system-tests")]
const CASES: &[&str] = &[
    r#"{{ printf "%5.2f|%-4d|%q|%x|%X|%t|%c|%03d|%+d|%e|%g" 3.14159 7 "a\"b" 255 "hi" true 65 7 5 1234.5678 0.000012 }}"#,
    r#"{{ printf "%s %d" 1 "x" }}|{{ printf "%d" }}|{{ printf "%d" 1 2 }}|{{ printf "%v %v %v" nil 1.5 1e21 }}"#,
    r#"{{ print 1 2 "a" "b" 3 }}|{{ println "x" 1 }}|{{ len "héllo" }}"#,
    r#"{{ if and 1 0 }}y{{ else }}n{{ end }}{{ or 0 "" "z" }}{{ and 1 "" }}{{ not 0 }}"#,
    r#"{{ eq 1 2 1 }}{{ ne "a" "b" }}{{ lt 1 2 }}{{ le 2 2 }}{{ gt "b" "a" }}{{ ge 1.5 2.5 }}"#,
    r#"{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}{{ with $y := "w" }}{{ . }}{{ $y }}{{ end }}"#,
    r#"{{ slice "abcdef" 1 4 }}{{ slice "abcdef" 2 }}{{ index "abc" 1 }}"#,
    r#"{{ html "<a href='x'>&\"" }}|{{ js "it's <b>=\"x\"" }}|{{ urlquery "a b&c=d/é" }}"#,
    r#"{{- /* comment */ -}}   a  {{- " b " -}}  c {{ "d" }}"#,
    r#"{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" "arg" }}{{ block "y" 42 }}<{{ . }}>{{ end }}"#,
    r#"{{ with "" }}no{{ else }}{{ "yes" }}{{ end }}{{ if 0 }}a{{ else if "" }}b{{ else }}c{{ end }}"#,
    r#"{{ 0x1F }} {{ 1_000 }} {{ 'a' }} {{ -3 }} {{ 1.50 }} {{ 017 }} {{ 2e3 }}"#,
    r#"{{ printf "%.4g|%.2g|%.4g|%.3g|%.4g" 1234.5678 123.456 0.000012 59.999 12345678.0 }}"#,
];

// System tier: the real amtool.
#[cfg(feature = "system-tests")]
#[test]
fn renders_like_go_text_template() {
    for case in CASES {
        let go = amtool_render(case).unwrap_or_else(|e| panic!("amtool refused {case}: {e}"));
        let ours = herald_render(case).unwrap_or_else(|e| panic!("herald refused {case}: {e}"));
        assert_eq!(ours, go, "template {case}");
    }
}

// System tier: the real amtool.
#[cfg(feature = "system-tests")]
#[test]
fn errors_like_go_text_template() {
    for case in [
        r#"{{ eq 1 "a" }}"#,
        r#"{{ index "x" 5 }}"#,
        r#"{{ nosuch }}"#,
        r#"{{ if }}"#,
        r#"{{ .Foo.Bar }}"#,
    ] {
        assert!(amtool_render(case).is_err(), "amtool accepted {case}");
        assert!(herald_render(case).is_err(), "herald accepted {case}");
    }
}

/// The reference release's template files (`default.tmpl`, `email.tmpl`),
/// from its source tree.
#[cfg(feature = "system-tests")]
fn am_templates() -> String {
    common::am_current_src()
        .join("template")
        .to_string_lossy()
        .into_owned()
}

/// Every template Alertmanager's `default.tmpl` defines renders the same
/// text with Herald's engine as with Go, on amtool's example data. The
/// template file is read from the reference's source tree at test time.
// System tier: the real amtool and Alertmanager's Go sources.
#[cfg(feature = "system-tests")]
#[test]
fn alertmanagers_default_templates_render_identically() {
    let am = am_templates();
    let src = std::fs::read_to_string(format!("{am}/default.tmpl")).expect("reference templates");
    let mut t = Templates::alertmanager();
    t.add("default.tmpl", &src).unwrap();
    let data = herald::template::am::example_data(jiff::Timestamp::now());
    let mut names: Vec<String> = t
        .trees
        .keys()
        .filter(|n| n.as_str() != "default.tmpl")
        .cloned()
        .collect();
    names.sort();
    assert!(names.len() > 30, "{names:?}");
    let (total, mut skipped) = (names.len(), 0);
    for name in names {
        let text = format!("{{{{ template \"{name}\" . }}}}");
        let go = amtool_render_with(&text, &format!("{am}/default.tmpl"));
        t.add("probe", &text).unwrap();
        let ours = t.execute("probe", &data);
        // Helpers such as __text_alert_list expect a list, not the data, as
        // dot: Go fails on them, and so must Herald.
        let (go, ours) = match (go, ours) {
            (Ok(g), Ok(o)) => (g, o),
            (Err(_), Err(_)) => {
                skipped += 1;
                continue;
            }
            (g, o) => panic!("template {name:?}: Go gave {g:?}, Herald {o:?}"),
        };
        assert_eq!(ours.trim_end_matches('\n'), go, "template {name:?}");
    }
    assert!(
        skipped <= 3,
        "only list helpers may fail: {skipped} of {total} skipped"
    );
}

/// `herald template render` and `amtool template render` give the same
/// output for the same flags, with a data file and with the example data.
/// Runs `herald template render` and `amtool template render` with the
/// same flags; both must succeed. Returns (herald, amtool) outputs.
#[cfg(feature = "system-tests")]
fn render_both(flags: &[String]) -> (String, String) {
    (
        run_render(env!("CARGO_BIN_EXE_herald"), flags),
        run_render(&common::am_current_bin("amtool").to_string_lossy(), flags),
    )
}

// System tier: the real amtool.
#[cfg(feature = "system-tests")]
#[test]
fn template_render_command_matches_amtool() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.json");
    std::fs::write(
        &data,
        r#"{"receiver":"team-x","status":"firing","alerts":[
            {"status":"firing","labels":{"alertname":"DiskFull","instance":"db1:9100","severity":"critical"},"annotations":{"summary":"Disk <90%> full"},"startsAt":"2024-05-01T10:00:00.5Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph","fingerprint":"abc"},
            {"status":"resolved","labels":{"alertname":"DiskFull","instance":"db2:9100","severity":"critical"},"annotations":{"summary":"ok"},"startsAt":"2024-05-01T09:00:00Z","endsAt":"2024-05-01T11:00:00Z","generatorURL":"http://prom/graph","fingerprint":"def"}],
          "groupLabels":{"alertname":"DiskFull"},"commonLabels":{"alertname":"DiskFull","severity":"critical"},"commonAnnotations":{},"externalURL":"http://am:9093"}"#,
    )
    .unwrap();
    let glob = format!("{}/default.tmpl", am_templates());
    for (text, with_data) in [
        (r#"{{ template "slack.default.text" . }}"#, true),
        (
            r#"{{ template "__subject" . }}|{{ template "__alertmanagerURL" . }}"#,
            true,
        ),
        (
            r#"{{ range .Alerts.Firing }}{{ .Labels.instance }} since {{ .StartsAt.Format "2006-01-02 15:04:05" }} ({{ .StartsAt }}){{ end }}"#,
            true,
        ),
        (
            r#"{{ .CommonLabels.Remove .GroupLabels.Names }}|{{ .CommonLabels.SortedPairs.Values | join "," }}|{{ len .Alerts.Resolved }}"#,
            true,
        ),
        (r#"{{ template "__subject" . }}"#, false),
    ] {
        let mut flags = vec![
            format!("--template.glob={glob}"),
            format!("--template.text={text}"),
        ];
        if with_data {
            flags.push(format!("--template.data={}", data.display()));
        }
        let (h, a) = render_both(&flags);
        assert_eq!(h, a, "template {text}");
    }
}

/// HTML mode: Alertmanager's e-mail body (`email.default.html`, rendered
/// with Go's html/template) comes out byte-identical, with the example data
/// and with data full of characters that need escaping.
// System tier: the real amtool.
#[cfg(feature = "system-tests")]
#[test]
fn email_html_matches_go_html_template() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.json");
    std::fs::write(
        &data,
        r#"{"receiver":"team <ops> & \"dev\"","status":"firing","alerts":[
            {"status":"firing","labels":{"alertname":"Disk<Full>","instance":"db1:9100","note":"a+b & 'c'"},"annotations":{"summary":"<script>alert(1)</script>","url":"http://x/?a=1&b=<2>"},"startsAt":"2024-05-01T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom:9090/graph?g0.expr=rate(x{job=\"a b\"}[5m])&g0.tab=1","fingerprint":"abc"},
            {"status":"resolved","labels":{"alertname":"Disk<Full>","instance":"db2"},"annotations":{},"startsAt":"2024-05-01T09:00:00Z","endsAt":"2024-05-01T11:00:00Z","generatorURL":"javascript:alert(1)","fingerprint":"def"}],
          "groupLabels":{"alertname":"Disk<Full>"},"commonLabels":{"alertname":"Disk<Full>"},"commonAnnotations":{},"externalURL":"http://am.example.com/sub path"}"#,
    )
    .unwrap();
    let text = r#"{{ template "email.default.html" . }}"#;
    for with_data in [false, true] {
        let mut flags = vec![
            "--template.type=html".to_string(),
            format!("--template.glob={}/*.tmpl", am_templates()),
            format!("--template.text={text}"),
        ];
        if with_data {
            flags.push(format!("--template.data={}", data.display()));
        }
        let (h, a) = render_both(&flags);
        if h != a {
            let first = h
                .lines()
                .zip(a.lines())
                .enumerate()
                .find(|(_, (x, y))| x != y);
            panic!("email.default.html differs (data file: {with_data}); first differing line: {first:?}");
        }
    }
}

/// Data sets for the golden tests of Herald's default templates: mixed,
/// all resolved with no group labels, one alert with characters that need
/// quoting, an empty group, and mixed severities at awkward times (year's
/// end, leap day, a DST change).
#[cfg(feature = "system-tests")]
const GOLDEN_DATA: &[&str] = &[
    r#"{"receiver":"team-x","status":"firing","alerts":[
        {"status":"firing","labels":{"alertname":"DiskFull","instance":"db1:9100","severity":"critical"},"annotations":{"summary":"Disk 95% full","runbook":"http://wiki/disk"},"startsAt":"2024-05-01T10:00:00.5Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph?g0.expr=up","fingerprint":"abc"},
        {"status":"firing","labels":{"alertname":"DiskFull","instance":"db3:9100","severity":"critical"},"annotations":{"summary":"Disk 91% full"},"startsAt":"2024-05-01T10:01:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph","fingerprint":"abd"},
        {"status":"resolved","labels":{"alertname":"DiskFull","instance":"db2:9100","severity":"critical"},"annotations":{"summary":"ok"},"startsAt":"2024-05-01T09:00:00Z","endsAt":"2024-05-01T11:00:00Z","generatorURL":"http://prom/graph","fingerprint":"def"}],
      "groupLabels":{"alertname":"DiskFull"},"commonLabels":{"alertname":"DiskFull","severity":"critical"},"commonAnnotations":{},"externalURL":"http://am:9093"}"#,
    r#"{"receiver":"ops","status":"resolved","alerts":[
        {"status":"resolved","labels":{"alertname":"A","job":"node"},"annotations":{"description":"all good"},"startsAt":"2024-05-01T09:00:00Z","endsAt":"2024-05-01T11:00:00Z","generatorURL":"","fingerprint":"1"},
        {"status":"resolved","labels":{"alertname":"B","job":"node"},"annotations":{"description":"all good"},"startsAt":"2024-05-01T09:00:00Z","endsAt":"2024-05-01T11:00:00Z","generatorURL":"","fingerprint":"2"}],
      "groupLabels":{},"commonLabels":{"job":"node"},"commonAnnotations":{"description":"all good"},"externalURL":"https://alerts.example.com/am"}"#,
    r#"{"receiver":"on call & friends / é","status":"firing","alerts":[
        {"status":"firing","labels":{"alertname":"Häßlich \"quoted\"","zone":"eu-west <1>"},"annotations":{"summary":"a\nmulti-line\nsummary","description":"tab\there"},"startsAt":"2024-05-01T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph?a=1&b=2","fingerprint":"x"}],
      "groupLabels":{"alertname":"Häßlich \"quoted\"","zone":"eu-west <1>"},"commonLabels":{"alertname":"Häßlich \"quoted\"","zone":"eu-west <1>"},"commonAnnotations":{"summary":"a\nmulti-line\nsummary","description":"tab\there"},"externalURL":"http://am:9093"}"#,
    r#"{"receiver":"empty","status":"firing","alerts":[],"groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":""}"#,
    r#"{"receiver":"team.y+z","status":"firing","alerts":[
        {"status":"firing","labels":{"alertname":"Lag","severity":"warning","zone":"b"},"annotations":{"summary":"lagging"},"startsAt":"2024-12-31T23:59:59.999999999Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph","fingerprint":"w"},
        {"status":"firing","labels":{"alertname":"Lag","severity":"info","zone":"a"},"annotations":{},"startsAt":"2024-02-29T12:30:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph","fingerprint":"i"},
        {"status":"resolved","labels":{"alertname":"Lag","severity":"critical","zone":"c"},"annotations":{},"startsAt":"2024-03-31T00:30:00Z","endsAt":"2024-03-31T02:45:30.25Z","generatorURL":"","fingerprint":"c"}],
      "groupLabels":{"alertname":"Lag"},"commonLabels":{"alertname":"Lag"},"commonAnnotations":{},"externalURL":"http://am:9093/prefix"}"#,
];

/// Every `{{ define "name" }}` of the template files in `dir`.
#[cfg(feature = "system-tests")]
fn defined_names(dir: &std::path::Path) -> Vec<String> {
    let re = regex::Regex::new(r#"\{\{-?\s*define\s+"([^"]+)""#).unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tmpl") {
            let src = std::fs::read_to_string(&path).unwrap();
            names.extend(re.captures_iter(&src).map(|c| c[1].to_string()));
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Herald's own default templates (`templates/*.tmpl`, built into the
/// binary) render every name the reference's default templates define
/// exactly as the reference renders its own, on several data sets: `herald
/// template render` with no template files against 0.33.1's `amtool
/// template render` with the files its Alertmanager loads. The HTML e-mail
/// body is Herald's own design (docs/compatibility.md) and is checked
/// separately.
// System tier: the real amtool and Alertmanager's templates.
#[cfg(feature = "system-tests")]
#[test]
fn herald_default_templates_render_like_alertmanagers() {
    let am_dir = common::am_current_src().join("template");
    let names: Vec<String> = defined_names(&am_dir)
        .into_iter()
        .filter(|n| n != "email.default.html")
        .collect();
    assert!(names.len() >= 60, "{names:?}");
    // List helpers take alerts as dot; everything else takes the data.
    let text: String = names
        .iter()
        .map(|n| {
            let dot = if n.starts_with("__text_alert_list") || n == "pagerduty.default.instances" {
                ".Alerts"
            } else {
                "."
            };
            format!("\n@@{n}@@\n{{{{ template \"{n}\" {dot} }}}}")
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("none-*.tmpl");
    for (i, data) in GOLDEN_DATA.iter().map(Some).chain([None]).enumerate() {
        let mut herald_flags = vec![format!("--template.text={text}")];
        if let Some(d) = data {
            let path = dir.path().join(format!("data{i}.json"));
            std::fs::write(&path, d).unwrap();
            herald_flags.push(format!("--template.data={}", path.display()));
        }
        let mut amtool_flags = herald_flags.clone();
        amtool_flags.push(format!("--template.glob={}/*.tmpl", am_dir.display()));
        herald_flags.push(format!("--template.glob={}", empty.display()));
        let herald = run_render(env!("CARGO_BIN_EXE_herald"), &herald_flags);
        let go = run_render(
            &common::am_current_bin("amtool").to_string_lossy(),
            &amtool_flags,
        );
        let split = |s: &str| -> Vec<(String, String)> {
            s.split("\n@@")
                .skip(1)
                .map(|p| {
                    let (n, body) = p.split_once("@@\n").unwrap();
                    (n.to_string(), body.to_string())
                })
                .collect()
        };
        let (h, g) = (split(&herald), split(&go));
        assert_eq!(h.len(), names.len());
        assert_eq!(g.len(), names.len());
        for ((name, ours), (_, theirs)) in h.iter().zip(&g) {
            assert_eq!(ours, theirs, "template {name:?}, data set {i}");
        }
    }
}

/// Expressions users write in their templates, rendered by `herald template
/// render` and 0.33.1's `amtool template render` on every golden data set
/// and amtool's example data: Alertmanager's functions, Go's builtins in
/// pipelines, map ranges (`$k` is the label name), methods with arguments
/// on times (`.StartsAt.Add 28800e9`), `.Alerts.Firing`, trimming.
/// Expressions that print the example data's times are left out of that
/// data set (its times carry Go's monotonic clock reading).
#[cfg(feature = "system-tests")]
const EXPRESSIONS: &[&str] = &[
    r#"{{ range $k, $v := .CommonLabels }}{{ $k }}={{ $v }};{{ end }}"#,
    r#"{{ range $k, $v := .GroupLabels }}{{ $k }}={{ $v }};{{ end }}|{{ range $k, $v := .CommonAnnotations }}{{ $k }}:{{ $v }};{{ end }}"#,
    r#"{{ range .Alerts }}{{ range $name, $value := .Labels }}{{ $name }}={{ $value }} {{ end }}/{{ range $k, $v := .Annotations }}{{ $k }} {{ end }}|{{ end }}"#,
    r#"{{ range $k, $v := dict "zeta" 1 "alpha" (list 1 2) }}{{ $k }}={{ $v }};{{ end }}"#,
    r#"{{ range $i, $a := .Alerts }}{{ $i }}:{{ $a.Status }}:{{ $a.Fingerprint }};{{ end }}"#,
    r#"{{ .CommonLabels }}|{{ .GroupLabels.SortedPairs }}|{{ .CommonLabels.Names }}|{{ .CommonLabels.Values }}|{{ printf "%v" .GroupLabels }}"#,
    r#"{{ .CommonLabels.Remove .GroupLabels.Names }}|{{ .CommonLabels.Remove (stringSlice "alertname") }}"#,
    r#"{{ len .Alerts }} {{ len .Alerts.Firing }} {{ len .Alerts.Resolved }} {{ .Alerts.Firing | len }} {{ len .CommonLabels }}"#,
    r#"{{ range .Alerts }}{{ .Labels.alertname }}|{{ index .Labels "alertname" }}|{{ index .Labels "nope" }}{{ break }}{{ end }}"#,
    r#"{{ range .Alerts.Firing }}{{ .Labels.SortedPairs.Names | join "," }};{{ end }}{{ range .Alerts.Resolved }}{{ .Status }};{{ end }}"#,
    r#"{{ printf "%.2f" 3.14159 }}|{{ printf "%5.1f%%" 99.456 }}|{{ printf "%d alerts" (len .Alerts) }}|{{ printf "%-8s|" .Status }}|{{ printf "%q" .Receiver }}"#,
    r#"{{ reReplaceAll "[^a-z]+" "_" (toLower .Receiver) }}|{{ reReplaceAll "([a-z]+)@([a-z]+)" "$2 at $1" "me@host" }}|{{ match "^team" .Receiver }}"#,
    r#"{{ .Receiver | toUpper }}|{{ .Status | title }}|{{ "  padded  " | trimSpace }}|{{ toUpper .Status | printf "[%s]" }}"#,
    r#"{{ safeHtml "<b>x</b>" }}|{{ urlUnescape "a%20b+c%2Fd" }}|{{ .ExternalURL | urlquery }}|{{ html .Receiver }}"#,
    r#"{{- range .Alerts -}}   {{- .Labels.alertname -}}   {{ end -}}|{{- " x " -}}|"#,
    r#"{{ if and .Alerts.Firing (gt (len .Alerts.Firing) 0) }}firing{{ else if or .Alerts.Resolved false }}resolved{{ else }}none{{ end }}|{{ and 0 (index .Alerts 99) }}|{{ or 1 (index .Alerts 99) }}"#,
    r#"{{ eq .Status "firing" "resolved" }}|{{ ne .Status "firing" }}|{{ if eq (len .Alerts) 0 1 2 }}few{{ end }}"#,
    r#"{{ slice (stringSlice "a" "b" "c") 1 }}|{{ slice "abcdef" 1 3 }}|{{ index (list 5 6 7) 2 }}|{{ len (list) }}"#,
    r#"{{ toJson .CommonLabels }}|{{ toJson (dict "a" 1 "b" (list true nil 1.5 "<&>")) }}|{{ toJson .GroupLabels.SortedPairs }}|{{ toJson .CommonLabels.Names }}"#,
    r#"{{ 1e20 }}|{{ 123456.5 }}|{{ 1234567.0 }}|{{ 0.00001 }}|{{ print 2e6 }}|{{ 28800e9 }}"#,
    r#"{{ humanizeDuration 3725 }}|{{ humanizeDuration 0.25 }}|{{ humanizeDuration "90061" }}|{{ (tz "Europe/Paris" now).Location }}"#,
    r#"{{ $x := dict "k" "v" }}{{ $x.k }}|{{ index $x "k" }}|{{ (append (list 1) 2 3) }}|{{ list }}"#,
];

/// Expressions over the alerts' times: methods with arguments, Go's
/// layouts, constants like 28800e9 as durations.
#[cfg(feature = "system-tests")]
const TIME_EXPRESSIONS: &[&str] = &[
    r#"{{ range .Alerts }}{{ (.StartsAt.Add 28800e9).Format "15:04" }} {{ .StartsAt.Add 28800e9 }};{{ end }}"#,
    r#"{{ range .Alerts }}{{ .StartsAt }}|{{ .EndsAt }}|{{ .StartsAt.UTC }}|{{ .StartsAt.Local }}|{{ .StartsAt.Unix }}|{{ .StartsAt.UnixMilli }};{{ end }}"#,
    r#"{{ range .Alerts }}{{ .EndsAt.Sub .StartsAt }}|{{ (.EndsAt.Sub .StartsAt).Minutes }}|{{ .StartsAt.Before .EndsAt }}|{{ .StartsAt.After .EndsAt }}|{{ .StartsAt.Equal .StartsAt }};{{ end }}"#,
    r#"{{ range .Alerts }}{{ .StartsAt.Truncate 3600e9 }}|{{ .StartsAt.Round 60e9 }}|{{ .StartsAt.AddDate 0 1 -1 }}|{{ .StartsAt.IsZero }}|{{ .EndsAt.IsZero }};{{ end }}"#,
    r#"{{ range .Alerts }}{{ .StartsAt.Year }}-{{ .StartsAt.Month }}-{{ .StartsAt.Day }} {{ .StartsAt.Weekday }} {{ .StartsAt.YearDay }} {{ .StartsAt.Hour }}:{{ .StartsAt.Minute }}:{{ .StartsAt.Second }}.{{ .StartsAt.Nanosecond }} {{ .StartsAt.Location }};{{ end }}"#,
    r#"{{ range .Alerts }}{{ .StartsAt.In (tz "Asia/Tokyo" .StartsAt).Location }}|{{ tz "America/New_York" .StartsAt }}|{{ date "Mon Jan 2 15:04:05 MST 2006" (tz "Europe/Berlin" .StartsAt) }};{{ end }}"#,
    r#"{{ range .Alerts }}{{ .StartsAt.Format "2006-01-02T15:04:05.000Z07:00" }}|{{ date "02.01.06 3:04PM" .StartsAt }}|{{ toJson .StartsAt }};{{ end }}"#,
    r#"{{ range .Alerts }}{{ ((.EndsAt.Sub .StartsAt).Round 3600e9) }}|{{ ((.EndsAt.Sub .StartsAt).Truncate 60e9).String }}|{{ (.StartsAt.Sub .EndsAt).Abs }};{{ end }}"#,
    r#"{{ toJson . }}"#,
];

/// Errors of Alertmanager's functions: both fail, with the same message
/// after the position (Herald does not repeat Go's `executing ... at <...>`
/// context).
#[cfg(feature = "system-tests")]
const ERROR_EXPRESSIONS: &[&str] = &[
    r#"{{ dict "a" 1 "b" }}"#,
    r#"{{ dict 1 2 }}"#,
    r#"{{ tz "Nowhere/Atlantis" now }}"#,
    r#"{{ match "a(" "x" }}"#,
    r#"{{ reReplaceAll "(" "x" "y" }}"#,
    r#"{{ urlUnescape "%zz" }}"#,
    r#"{{ humanizeDuration "x" }}"#,
];

// System tier: the real amtool.
#[cfg(feature = "system-tests")]
#[test]
fn user_template_expressions_render_like_amtool() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.tmpl");
    std::fs::write(&empty, "").unwrap();
    let amtool = common::am_current_bin("amtool")
        .to_string_lossy()
        .into_owned();
    let data_sets: Vec<Option<std::path::PathBuf>> = GOLDEN_DATA
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let path = dir.path().join(format!("data{i}.json"));
            std::fs::write(&path, d).unwrap();
            Some(path)
        })
        .chain([None])
        .collect();
    let mut compared = 0;
    for data in &data_sets {
        let exprs = EXPRESSIONS
            .iter()
            .chain(TIME_EXPRESSIONS.iter().filter(|_| data.is_some()));
        for text in exprs {
            let mut flags = vec![
                format!("--template.text={text}"),
                format!("--template.glob={}", empty.display()),
            ];
            if let Some(d) = data {
                flags.push(format!("--template.data={}", d.display()));
            }
            let go = run_render(&amtool, &flags);
            let ours = run_render(env!("CARGO_BIN_EXE_herald"), &flags);
            // 0.34's `template.Data` has `routeLabels`, which 0.33.1 lacks.
            let ours = ours.replace(r#","routeLabels":{}"#, "");
            assert_eq!(ours, go, "template {text} on data {data:?}");
            compared += 1;
        }
    }
    assert!(compared > 100, "{compared}");
    let position = regex::Regex::new(r"^template: [^:]*:\d+(:\d+)?: ").unwrap();
    for text in ERROR_EXPRESSIONS {
        let go = amtool_render(text).expect_err(text);
        let mut t = Templates::alertmanager();
        t.add("text", text).unwrap();
        let ours = t.execute("text", &Value::Nil).expect_err(text).to_string();
        let go_msg = go.trim_end().split_once(">: ").map(|(_, m)| m.to_string());
        assert_eq!(
            Some(position.replace(ours.trim_end(), "").into_owned()),
            go_msg,
            "{text}: Go said {go}"
        );
    }
}

/// Runs `<bin> template render <flags>`, which must succeed.
#[cfg(feature = "system-tests")]
fn run_render(bin: &str, flags: &[String]) -> String {
    let out = Command::new(bin)
        .args(["template", "render"])
        .args(flags)
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    assert!(
        out.status.success(),
        "{bin}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Herald's HTML e-mail body escapes every value for where it lands: label
/// and annotation text, the source link, the alerts link with the receiver
/// query-escaped; a `javascript:` source is neutralised.
#[test]
fn herald_email_body_escapes_values() {
    let t = Templates::load(&[]).unwrap();
    let data = herald::template::am::data_from_json(
        r#"{"receiver":"a&b <c>","status":"firing","alerts":[
        {"status":"firing","labels":{"alertname":"<script>alert(1)</script>","x":"\"q\" & 'a'"},"annotations":{"summary":"<b>bold</b>"},"startsAt":"2024-05-01T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"javascript:alert(1)","fingerprint":"1"},
        {"status":"resolved","labels":{"alertname":"<script>alert(1)</script>"},"annotations":{},"startsAt":"2024-05-01T10:00:00Z","endsAt":"2024-05-01T11:00:00Z","generatorURL":"http://prom/graph?a=1&b=\"2\"","fingerprint":"2"}],
      "groupLabels":{"alertname":"<script>alert(1)</script>"},"commonLabels":{"alertname":"<script>alert(1)</script>"},"commonAnnotations":{},"externalURL":"http://am:9093"}"#,
    )
    .unwrap();
    let html = t
        .execute_html_text(r#"{{ template "email.default.html" . }}"#, &data)
        .unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("<b>bold"), "{html}");
    assert!(
        html.contains("alertname = &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("x = &#34;q&#34; &amp; &#39;a&#39;"), "{html}");
    assert!(html.contains(r##"href="#ZgotmplZ""##), "{html}");
    assert!(
        html.contains("http://prom/graph?a=1&amp;b=%222%22"),
        "{html}"
    );
    assert!(
        html.contains("/#/alerts?receiver=a%26b&#43;%3Cc%3E"),
        "{html}"
    );
    assert!(
        html.contains("[1] Firing") && html.contains("[1] Resolved"),
        "{html}"
    );
    let subject = t
        .execute_text(r#"{{ template "email.default.subject" . }}"#, &data)
        .unwrap();
    assert_eq!(subject, "[FIRING:1] <script>alert(1)</script> ");
}

/// `herald check-config` also parses the template files and every
/// template text of the receivers, naming the field that does not parse
/// (Alertmanager only finds these when a notification fails).
#[test]
fn check_config_reports_templates_that_do_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("am.yml");
    let write = |tmpl: &str, title: &str| {
        std::fs::write(dir.path().join("my.tmpl"), tmpl).unwrap();
        std::fs::write(
            &cfg,
            format!(
                "templates: ['*.tmpl']\nroute:\n  receiver: s\nreceivers:\n  - name: s\n    slack_configs:\n      - api_url: https://hooks.example.com/x\n        title: '{title}'\n"
            ),
        )
        .unwrap();
    };
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["check-config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    // Relative globs resolve against the config file's directory.
    write(r#"{{ define "t" }}ok{{ end }}"#, r#"{{ template "t" . }}"#);
    let (ok, out) = check();
    assert!(ok, "{out}");
    write(r#"{{ define "t" }}ok{{ end }}"#, "{{ .Status ");
    let (ok, out) = check();
    assert!(!ok, "{out}");
    assert!(out.contains("receivers[0].slack_configs[0].title"), "{out}");
    write(r#"{{ define "t" }}{{ if }}{{ end }}"#, "x");
    let (ok, out) = check();
    assert!(!ok && out.contains("my.tmpl"), "{out}");
}
