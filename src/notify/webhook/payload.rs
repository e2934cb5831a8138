//! The parts of a webhook that are templates: a custom `payload` (any YAML
//! whose strings are rendered, Alertmanager 0.32+) and the `url` / `url_file`
//! content (0.31+), rendered per notification with the notification data.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value as Json;

use crate::notify::{FailureReason, NotifyError};
use crate::template::{Templates, Value};

fn fatal(message: String) -> NotifyError {
    NotifyError::new(false, FailureReason::Other, message)
}

/// Renders every string of `payload` (map keys included) as a text
/// template. A rendered string that reads as structured YAML (a list, a
/// map, a number, `true`, an empty string) becomes that structure, so that
/// `{{ .Alerts | toJson }}` sends a JSON list rather than a string of JSON;
/// what it decodes to is kept as decoded, never rendered again (#5304).
pub(crate) fn render(
    payload: &Json,
    templates: &Templates,
    data: &Value,
) -> Result<Json, NotifyError> {
    let text = |s: &str| {
        templates
            .execute_text(s, data)
            .map_err(|e| fatal(format!("failed to render custom payload: {e}")))
    };
    Ok(match payload {
        Json::String(s) => structured(text(s)?),
        Json::Array(items) => Json::Array(
            items
                .iter()
                .map(|v| render(v, templates, data))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                out.insert(text(k)?, render(v, templates, data)?);
            }
            Json::Object(out)
        }
        other => other.clone(),
    })
}

/// Alertmanager decodes a rendered string as YAML and keeps the decoded
/// value unless decoding fails or gives a string.
fn structured(rendered: String) -> Json {
    if rendered.trim().is_empty() || is_yaml_null(&rendered) {
        return Json::Null;
    }
    match serde_saphyr::from_str::<Json>(&rendered) {
        Ok(Json::String(_)) | Err(_) => Json::String(rendered),
        Ok(v) => go_numbers(v),
    }
}

fn is_yaml_null(s: &str) -> bool {
    matches!(s.trim(), "~" | "null" | "Null" | "NULL")
}

/// Go's YAML decoder gives a float64 for `1.0`, which its JSON encoder
/// writes as `1`; serde_json would write `1.0`.
fn go_numbers(v: Json) -> Json {
    match v {
        Json::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() && f.fract() == 0.0 && f.abs() < 1e15 => {
                Json::from(f as i64)
            }
            _ => Json::Number(n),
        },
        Json::Array(a) => Json::Array(a.into_iter().map(go_numbers).collect()),
        Json::Object(m) => Json::Object(m.into_iter().map(|(k, v)| (k, go_numbers(v))).collect()),
        other => other,
    }
}

/// Serialises a JSON value with map keys sorted, as Go's encoder writes a
/// `map[string]any`, whatever order serde_json's map keeps.
pub(crate) struct Sorted<'a>(pub(crate) &'a Json);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&Sorted(v))?;
                }
                seq.end()
            }
            Json::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut m = s.serialize_map(Some(keys.len()))?;
                for k in keys {
                    m.serialize_entry(k, &Sorted(&map[k]))?;
                }
                m.end()
            }
            other => other.serialize(s),
        }
    }
}

/// Whether a configured URL is a template (Alertmanager's
/// `ContainsTemplating`): only then is it checked as a template at load
/// instead of as a URL.
pub(crate) fn is_templated(url: &str) -> bool {
    url.contains("{{")
}

/// The URL to post to: the configured one (or the file's trimmed content)
/// rendered with the notification data.
pub(super) fn render_url(
    raw: &str,
    templates: &Templates,
    data: &Value,
) -> Result<String, NotifyError> {
    let url = templates
        .execute_text(raw.trim(), data)
        .map_err(|e| fatal(format!("failed to template webhook URL: {e}")))?;
    if url.is_empty() {
        return Err(fatal("webhook URL is empty after templating".into()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Value {
        let labels = crate::model::LabelSet::from_strs([("team", "db")]);
        crate::template::Data::new("r", &labels, &[], jiff::Timestamp::UNIX_EPOCH, "http://am")
            .to_value()
    }

    fn json(s: &str) -> Json {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn strings_are_rendered_and_structure_kept() {
        let t = Templates::alertmanager();
        let p = json(
            r#"{"team": "{{ .GroupLabels.team }}", "{{ .GroupLabels.team }}_key": [1, true, "n={{ len .Alerts }}"],
                "count": "{{ len .Alerts }}", "empty": "", "list": "[a, b]", "colon": "value1:"}"#,
        );
        let out = render(&p, &t, &data()).unwrap();
        let body = String::from_utf8(crate::gojson::to_vec(&Sorted(&out))).unwrap();
        assert_eq!(
            body,
            r#"{"colon":{"value1":null},"count":0,"db_key":[1,true,"n=0"],"empty":null,"list":["a","b"],"team":"db"}"#
        );
    }

    #[test]
    fn a_decoded_value_is_not_rendered_again() {
        let t = Templates::alertmanager();
        // The rendered text decodes to a map whose value looks like a
        // template: it stays as it is.
        let p = json(r#"{"x": "{{ \"a: '{{ .Status }}'\" }}"}"#);
        let out = render(&p, &t, &data()).unwrap();
        assert_eq!(out, json(r#"{"x": {"a": "{{ .Status }}"}}"#));
    }

    #[test]
    fn url_errors_are_go_s() {
        let t = Templates::alertmanager();
        let e = render_url("{{ if false }}x{{ end }}", &t, &data()).unwrap_err();
        assert_eq!(e.message, "webhook URL is empty after templating");
        assert_eq!(
            render_url(" http://h/{{ .GroupLabels.team }}\n", &t, &data()).unwrap(),
            "http://h/db"
        );
        let e = render_url("http://h/{{ .Nope.x }}", &t, &data()).unwrap_err();
        assert!(
            e.message.starts_with("failed to template webhook URL"),
            "{}",
            e.message
        );
        assert!(!e.retryable);
    }
}
