//! Log lines in Alertmanager's shape (go-kit log): `ts`, `caller`, `level`,
//! `msg`, then the event's fields, as logfmt or JSON. Users' log pipelines
//! parse these keys, so the generic tracing formats (`message=`,
//! `timestamp`) would break them.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Logfmt,
    Json,
}

pub struct GoKitLayer {
    pub format: Format,
    pub max_level: Level,
}

#[derive(Default)]
struct Fields {
    msg: String,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg = value.to_string();
        } else {
            self.pairs.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let v = format!("{value:?}");
        if field.name() == "message" {
            self.msg = v;
        } else {
            self.pairs.push((field.name(), v));
        }
    }
}

fn logfmt_value(out: &mut String, v: &str) {
    if !v.is_empty()
        && !v
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c.is_control())
    {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One formatted line (without the newline).
fn render(format: Format, ts: &str, caller: &str, level: &str, f: &Fields) -> String {
    let mut line = String::with_capacity(128);
    match format {
        Format::Logfmt => {
            let _ = write!(line, "ts={ts} caller={caller} level={level} msg=");
            logfmt_value(&mut line, &f.msg);
            for (k, v) in &f.pairs {
                let _ = write!(line, " {k}=");
                logfmt_value(&mut line, v);
            }
        }
        Format::Json => {
            let mut map = serde_json::Map::new();
            map.insert("ts".into(), ts.into());
            map.insert("caller".into(), caller.into());
            map.insert("level".into(), level.into());
            map.insert("msg".into(), f.msg.clone().into());
            for (k, v) in &f.pairs {
                map.insert((*k).into(), v.clone().into());
            }
            line = serde_json::Value::Object(map).to_string();
        }
    }
    line
}

impl<S: Subscriber> Layer<S> for GoKitLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        // Only Herald's own events; libraries log at their own levels.
        *metadata.level() <= self.max_level && metadata.target().starts_with("herald")
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let file = meta
            .file()
            .map(|f| f.rsplit('/').next().unwrap_or(f))
            .unwrap_or("?");
        let caller = format!("{file}:{}", meta.line().unwrap_or(0));
        let ts = format!("{:.3}", jiff::Timestamp::now());
        let level = match *meta.level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            _ => "debug",
        };
        let mut line = render(self.format, &ts, &caller, level, &fields);
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_like_go_kit() {
        let f = Fields {
            msg: "Completed loading of configuration file".into(),
            pairs: vec![("file", "/etc/am.yml".into()), ("err", "a \"b\"".into())],
        };
        assert_eq!(
            render(
                Format::Logfmt,
                "2024-01-01T00:00:00.000Z",
                "main.rs:10",
                "info",
                &f
            ),
            r#"ts=2024-01-01T00:00:00.000Z caller=main.rs:10 level=info msg="Completed loading of configuration file" file=/etc/am.yml err="a \"b\"""#
        );
        let j: serde_json::Value =
            serde_json::from_str(&render(Format::Json, "t", "c:1", "warn", &f)).unwrap();
        assert_eq!(j["msg"], "Completed loading of configuration file");
        assert_eq!(j["level"], "warn");
        assert_eq!(j["file"], "/etc/am.yml");
    }
}
