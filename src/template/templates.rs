//! The top of the template module: what Herald's notifiers and CLI use.
//! `Templates` holds Go's builtins and Alertmanager's function map, loads
//! Herald's default templates and then the user's template files over
//! them, and renders config fields (a Slack `title:`, an e-mail `html:`)
//! as one-off templates, as Alertmanager's `template.Template` does.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;

use super::am;
use super::exec::{self, ExecError, Mode, Set, Trees};
use super::funcs;
use super::lex::SyntaxError;
use super::parse::{self, Tree};
use super::route_labels;
use super::value::{Func, FuncMap, Value};

/// Herald's default templates, built into the binary: every name
/// Alertmanager's `default.tmpl` and `email.tmpl` define.
const DEFAULT_TEMPLATES: [(&str, &str); 2] = [
    ("default.tmpl", include_str!("../../templates/default.tmpl")),
    ("email.tmpl", include_str!("../../templates/email.tmpl")),
];

/// A one-off template text that failed to parse or to run. The texts are
/// Go's, which users see in logs and in `template render`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    Parse(#[from] SyntaxError),
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// Template files that could not be loaded: kept apart from
/// `TemplateError` because only loading touches the file system.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Parse(#[from] SyntaxError),
    #[error("bad glob {glob:?}: {source}")]
    Pattern {
        glob: String,
        source: glob::PatternError,
    },
    /// A directory the glob had to walk could not be read.
    #[error(transparent)]
    Glob(#[from] glob::GlobError),
    #[error("{}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Parsed templates by name plus the function map.
#[derive(Clone, Default)]
pub struct Templates {
    /// Public so that tests can list the names a template file defines.
    pub trees: HashMap<String, Tree>,
    funcs: FuncMap,
}

impl Templates {
    /// Go's builtins; callers add their own functions on top.
    pub fn with_builtins() -> Templates {
        let mut t = Templates::default();
        funcs::add_builtins(&mut t.funcs);
        t
    }

    /// Go's builtins and Alertmanager's function map.
    pub fn alertmanager() -> Templates {
        let mut t = Self::with_builtins();
        am::add_alertmanager_funcs(&mut t.funcs);
        t
    }

    /// Loads Alertmanager's function map, Herald's default templates and
    /// then the user's template files (which override the defaults by
    /// defining the same names), as Alertmanager's `FromGlobs` does.
    pub fn load(globs: &[String]) -> Result<Templates, LoadError> {
        let mut t = Templates::alertmanager();
        for (name, src) in DEFAULT_TEMPLATES {
            t.add(name, src)?;
        }
        t.load_globs(globs)?;
        Ok(t)
    }

    /// Loads every file matching the globs, in order (later definitions win).
    fn load_globs(&mut self, globs: &[String]) -> Result<(), LoadError> {
        for g in globs {
            let paths = glob::glob(g).map_err(|source| LoadError::Pattern {
                glob: g.clone(),
                source,
            })?;
            for p in paths {
                let p = p?;
                let src = std::fs::read_to_string(&p).map_err(|source| LoadError::Read {
                    path: p.clone(),
                    source,
                })?;
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                self.add(&name, &src)?;
            }
        }
        Ok(())
    }

    fn is_func(&self, name: &str) -> bool {
        exec::is_func(&self.funcs, name)
    }

    fn set<'a>(&'a self, extra: Option<&'a Trees>, funcs: &'a FuncMap) -> Set<'a> {
        Set {
            trees: &self.trees,
            extra,
            funcs,
        }
    }

    /// The function map for one execution: `routeLabels` answers from the
    /// data's rendered route labels when it has any.
    fn funcs_for(&self, data: &Value) -> Cow<'_, FuncMap> {
        match route_labels::lookup_func(data) {
            Some(f) => {
                let mut m = self.funcs.clone();
                m.insert(route_labels::FUNC, f);
                Cow::Owned(m)
            }
            None => Cow::Borrowed(&self.funcs),
        }
    }

    /// `execute_text` with one function replaced for this execution (the
    /// dispatcher's `routeLabels` while it renders route labels).
    pub(crate) fn execute_text_with(
        &self,
        text: &str,
        data: &Value,
        name: &'static str,
        func: Func,
    ) -> Result<String, TemplateError> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let trees = parse::parse("", text, &|n| self.is_func(n))?;
        let mut funcs = self.funcs.clone();
        funcs.insert(name, func);
        Ok(self
            .set(Some(&trees), &funcs)
            .execute("", data, Mode::Text)?)
    }

    /// Parses `src` and adds its templates; later definitions replace
    /// earlier ones, as Go's `Parse` does for user files over defaults.
    pub fn add(&mut self, name: &str, src: &str) -> Result<(), SyntaxError> {
        let trees = parse::parse(name, src, &|n| self.is_func(n))?;
        self.trees.extend(trees);
        Ok(())
    }

    /// Executes the template `name` with `data` as dot.
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, ExecError> {
        let funcs = self.funcs_for(data);
        self.set(None, &funcs).execute(name, data, Mode::Text)
    }

    /// Runs `text` (a config field such as a Slack `title:`) as a template
    /// of its own, with the loaded templates callable from it, as
    /// Alertmanager's `ExecuteTextString` does. Empty text renders empty.
    pub fn execute_text(&self, text: &str, data: &Value) -> Result<String, TemplateError> {
        self.run_text(text, data, Mode::Text)
    }

    /// `execute_text` in HTML mode (`ExecuteHTMLString`, for e-mail bodies).
    pub fn execute_html_text(&self, text: &str, data: &Value) -> Result<String, TemplateError> {
        self.run_text(text, data, Mode::Html)
    }

    /// Parses `text` as `execute_text` would, without running it.
    pub(crate) fn check_text(&self, text: &str) -> Result<(), TemplateError> {
        parse::parse("", text, &|n| self.is_func(n))?;
        Ok(())
    }

    fn run_text(&self, text: &str, data: &Value, mode: Mode) -> Result<String, TemplateError> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let trees = parse::parse("", text, &|n| self.is_func(n))?;
        let funcs = self.funcs_for(data);
        Ok(self.set(Some(&trees), &funcs).execute("", data, mode)?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::template::value::Object;

    /// A minimal host object: a string map with a method taking arguments.
    struct Kv(BTreeMap<String, String>);

    impl Object for Kv {
        fn type_name(&self) -> &'static str {
            "template.KV"
        }
        fn field(&self, name: &str) -> Option<Value> {
            match name {
                "Names" => Some(Value::List(Arc::new(
                    self.0.keys().map(|k| Value::from(k.as_str())).collect(),
                ))),
                // A map[string]string: a missing key is "".
                n => Some(Value::from(self.0.get(n).map(String::as_str).unwrap_or(""))),
            }
        }
        fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
            (name == "Remove").then(|| {
                let drop: Vec<String> = match args {
                    [Value::List(l)] => l.iter().map(Value::go_string).collect(),
                    _ => return Err("Remove takes a list".into()),
                };
                let kept = self
                    .0
                    .iter()
                    .filter(|(k, _)| !drop.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Ok(Value::Object(Arc::new(Kv(kept))))
            })
        }
        fn display(&self) -> String {
            self.0
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
        fn items(&self) -> Option<Vec<Value>> {
            Some(self.0.values().map(|v| Value::from(v.as_str())).collect())
        }
    }

    fn render(src: &str, data: Value) -> Result<String, String> {
        let mut t = Templates::with_builtins();
        t.add("t", src).map_err(|e| e.to_string())?;
        t.execute("t", &data).map_err(|e| e.to_string())
    }

    fn data() -> Value {
        let kv = |p: &[(&str, &str)]| {
            Value::Object(Arc::new(Kv(p
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect())))
        };
        let mut m = BTreeMap::new();
        m.insert("Status".to_string(), Value::from("firing"));
        m.insert(
            "Labels".to_string(),
            kv(&[("alertname", "Disk"), ("instance", "a"), ("job", "node")]),
        );
        m.insert("Group".to_string(), kv(&[("alertname", "Disk")]));
        m.insert(
            "Items".to_string(),
            Value::List(Arc::new(vec![
                Value::Int(1),
                Value::Int(2),
                Value::Int(3),
                Value::Int(4),
            ])),
        );
        Value::Map(Arc::new(m))
    }

    #[test]
    fn fields_methods_and_missing_keys() {
        assert_eq!(
            render(
                "{{ .Labels.alertname }}|{{ .Labels.missing }}|{{ .Nope }}",
                data()
            )
            .unwrap(),
            "Disk||<no value>"
        );
        assert_eq!(
            render("{{ .Labels }}", data()).unwrap(),
            "alertname=Disk, instance=a, job=node"
        );
        assert_eq!(
            render("{{ (.Labels.Remove .Group.Names) }}", data()).unwrap(),
            "instance=a, job=node"
        );
        assert_eq!(
            render("{{ .Group.Names | .Labels.Remove }}", data()).unwrap(),
            "instance=a, job=node",
            "a piped value is the last argument"
        );
        assert_eq!(
            render("{{ len .Labels }} {{ index .Labels \"job\" }}", data()).unwrap(),
            "3 node"
        );
        assert!(render("{{ .Status.Foo }}", data())
            .unwrap_err()
            .contains("can't evaluate field Foo in type string"));
    }

    #[test]
    fn range_break_continue_and_variables() {
        let src = "{{ range $i, $v := .Items }}{{ if eq $v 2 }}{{ continue }}{{ end }}{{ if gt $v 3 }}{{ break }}{{ end }}{{ $i }}:{{ $v }};{{ end }}";
        assert_eq!(render(src, data()).unwrap(), "0:1;2:3;");
        assert_eq!(
            render("{{ range .Labels }}[{{ . }}]{{ end }}", data()).unwrap(),
            "[Disk][a][node]"
        );
        assert_eq!(
            render("{{ range .Empty }}x{{ else }}none{{ end }}", data()).unwrap(),
            "none"
        );
        assert_eq!(
            render(
                "{{ $s := .Status }}{{ range .Items }}{{ $s }}{{ $.Status }}{{ end }}",
                data()
            )
            .unwrap(),
            "firingfiring".repeat(4)
        );
    }

    #[test]
    fn templates_get_their_own_dot_and_recursion_is_bounded() {
        assert_eq!(
            render(
                "{{ define \"a\" }}<{{ .alertname }}>{{ end }}{{ template \"a\" .Labels }}",
                data()
            )
            .unwrap(),
            "<Disk>"
        );
        let e = render(
            "{{ define \"loop\" }}{{ template \"loop\" . }}{{ end }}{{ template \"loop\" . }}",
            data(),
        )
        .unwrap_err();
        assert!(e.contains("maximum template depth"), "{e}");
    }

    #[test]
    fn errors_name_template_line_and_column() {
        let t = Templates::alertmanager();
        let e = t
            .execute_text("ab\n  x {{ 1 }} {{ index 1 2 }}", &Value::Nil)
            .unwrap_err();
        assert!(e.to_string().starts_with("template: :2:13: "), "{e}");
    }

    #[test]
    fn runaway_templates_stop_with_an_error() {
        let t = Templates::alertmanager();
        let nested = format!(
            "{{{{ $l := list 1 2 3 4 5 6 7 8 9 10 }}}}{}x{}",
            "{{ range $l }}".repeat(9),
            "{{ end }}".repeat(9)
        );
        let e = t.execute_text(&nested, &Value::Nil).unwrap_err();
        assert!(e.to_string().contains("stopped after"), "{e}");
    }

    /// A stable stand-in for the fuzz target (fuzz/): random soups of
    /// template fragments must parse or fail with an error, and run or
    /// fail with an error, never panic.
    #[test]
    fn random_templates_never_panic() {
        const BITS: &[&str] = &[
            "{{",
            "}}",
            "{{-",
            "-}}",
            " ",
            ".",
            ".Alerts",
            ".Labels",
            ".Status",
            "$x",
            ":=",
            "=",
            "|",
            "(",
            ")",
            "if",
            "else",
            "end",
            "range",
            "with",
            "define",
            "template",
            "block",
            "break",
            "continue",
            "\"a\"",
            "`r`",
            "'c'",
            "1",
            "-2.5e3",
            "0x1F",
            "nil",
            "true",
            "printf",
            "\"%v %d %5.2f %q\"",
            "len",
            "index",
            "slice",
            "eq",
            "and",
            "or",
            "not",
            "toUpper",
            "join",
            "reReplaceAll",
            "\"(\"",
            "safeHtml",
            "html",
            "urlquery",
            "/*",
            "*/",
            "<a href=\"",
            "\">",
            "<script>",
            "</script>",
            "<style>",
            "\n",
            "\u{e9}",
            "date",
            "tz",
            "toDate",
            "humanizeDuration",
            ".StartsAt",
            ".Format",
            "list",
            "dict",
        ];
        let dot = am::example_data(jiff::Timestamp::UNIX_EPOCH);
        let t = Templates::alertmanager();
        let mut next = crate::testing::xorshift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let n = (next() % 24) as usize;
            let text: String = (0..n)
                .map(|_| BITS[(next() % BITS.len() as u64) as usize])
                .collect();
            let _ = t.execute_text(&text, &dot);
            let _ = t.execute_html_text(&text, &dot);
        }
    }

    /// Loading errors read as they did when they were plain strings: the
    /// bad glob, the file that could not be read, the template's position.
    #[test]
    fn load_errors_keep_their_texts() {
        let e = Templates::load(&["[".into()])
            .err()
            .expect("a bad glob fails");
        let pattern = glob::Pattern::new("[").expect_err("not a pattern");
        assert!(matches!(e, LoadError::Pattern { .. }), "{e:?}");
        assert_eq!(e.to_string(), format!("bad glob \"[\": {pattern}"));

        let dir = tempfile::tempdir().expect("temp dir");
        let sub = dir.path().join("sub.tmpl");
        std::fs::create_dir(&sub).expect("mkdir");
        let glob = format!("{}/*.tmpl", dir.path().display());
        let e = Templates::load(std::slice::from_ref(&glob))
            .err()
            .expect("a directory cannot be read");
        let io = std::fs::read_to_string(&sub).expect_err("a directory");
        assert!(matches!(e, LoadError::Read { .. }), "{e:?}");
        assert_eq!(e.to_string(), format!("{}: {io}", sub.display()));

        std::fs::remove_dir(&sub).expect("rmdir");
        std::fs::write(dir.path().join("bad.tmpl"), "ok\n{{ if }}").expect("write");
        let e = Templates::load(&[glob])
            .err()
            .expect("a bad template fails");
        assert!(matches!(e, LoadError::Parse(_)), "{e:?}");
        assert!(e.to_string().starts_with("template: bad.tmpl:2: "), "{e}");
    }
}
