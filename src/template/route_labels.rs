//! Route labels in templates (Alertmanager 0.34): the `routeLabels "name"`
//! function and the dispatcher's rendering of a route's label values,
//! which are templates that may refer to each other through it.
//!
//! A notification's data carries the labels already rendered, so there the
//! function only looks a name up. While the dispatcher renders them the
//! values are raw, and the function renders the one it is asked for first
//! (once per render, with cycles reported), as Go's `routeLabelResolver`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::value::{Func, Value};
use super::{TemplateError, Templates};

/// The function's name, as templates call it.
pub(crate) const FUNC: &str = "routeLabels";

/// The method of `template.KV` that looks a key up without its methods
/// (`Names`, `SortedPairs`) shadowing a label of that name; templates
/// cannot spell it.
pub(crate) const KV_GET: &str = "\u{0}get";

fn name_arg(args: &[Value]) -> Result<String, String> {
    match args {
        [Value::Str(s)] => Ok(s.to_string()),
        [other] => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
        _ => Err(format!(
            "wrong number of args for {FUNC}: want 1 got {}",
            args.len()
        )),
    }
}

/// What templates parse against and what runs where no route labels are
/// known (Go's placeholder): every name is empty.
pub(crate) fn placeholder() -> Func {
    Arc::new(|args| {
        name_arg(args)?;
        Ok(Value::from(""))
    })
}

/// The function for data whose `RouteLabels` are rendered (a notification):
/// `None` when there are none, so the placeholder serves.
pub(crate) fn lookup_func(data: &Value) -> Option<Func> {
    let Value::Object(o) = data else {
        return None;
    };
    if o.type_name() != "*template.Data" {
        return None;
    }
    let labels = o.field("RouteLabels").filter(Value::truthy)?;
    let Value::Object(kv) = labels else {
        return None;
    };
    Some(Arc::new(move |args| {
        let name = name_arg(args)?;
        kv.call(KV_GET, &[Value::from(name)])
            .unwrap_or_else(|| Ok(Value::from("")))
    }))
}

#[derive(Default)]
struct Resolver {
    /// Labels rendered so far in this render, with their outcome.
    done: HashMap<String, Result<String, String>>,
    /// Labels being rendered, outermost first (for the cycle error).
    stack: Vec<String>,
    /// The not yet rendered label the last execution asked for: it stopped
    /// there and runs again once that label is rendered.
    wanted: Option<String>,
}

/// Renders each raw route label value against `data` (whose `RouteLabels`
/// are the raw values), in order. A value that fails is reported with its
/// error; Alertmanager logs it and leaves the label out.
pub(crate) fn render(
    templates: &Templates,
    raw: &BTreeMap<String, String>,
    data: &Value,
) -> Vec<(String, Result<String, String>)> {
    let state = Arc::new(Mutex::new(Resolver::default()));
    let func: Func = {
        let state = state.clone();
        let names: Vec<String> = raw.keys().cloned().collect();
        Arc::new(move |args| {
            let name = name_arg(args)?;
            if !names.contains(&name) {
                return Ok(Value::from(""));
            }
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = st.done.get(&name) {
                return r.clone().map(Value::from);
            }
            if st.stack.contains(&name) {
                let mut cycle = st.stack.clone();
                cycle.push(name);
                return Err(format!(
                    "route label cycle detected: {}",
                    cycle.join(" -> ")
                ));
            }
            st.wanted = Some(name);
            Err("route label not rendered yet".into())
        })
    };
    let r = Render {
        templates,
        raw,
        data,
        state: &state,
        func: &func,
    };
    raw.keys()
        .map(|name| (name.clone(), r.label(name)))
        .collect()
}

struct Render<'a> {
    templates: &'a Templates,
    raw: &'a BTreeMap<String, String>,
    data: &'a Value,
    state: &'a Mutex<Resolver>,
    func: &'a Func,
}

impl Render<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Resolver> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn label(&self, name: &str) -> Result<String, String> {
        if let Some(r) = self.lock().done.get(name) {
            return r.clone();
        }
        let text = self.raw.get(name).map(String::as_str).unwrap_or_default();
        self.lock().stack.push(name.to_string());
        let result = loop {
            self.lock().wanted = None;
            let out = self
                .templates
                .execute_text_with(text, self.data, FUNC, self.func.clone());
            let wanted = self.lock().wanted.take();
            match (out, wanted) {
                // It stopped at a label not rendered yet: render that one,
                // then run this one again.
                (Err(_), Some(dep)) => {
                    let _ = self.label(&dep);
                }
                (out, _) => break out.map_err(|e: TemplateError| e.to_string()),
            }
        };
        let mut st = self.lock();
        st.stack.pop();
        st.done.insert(name.to_string(), result.clone());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Alert, LabelSet};
    use crate::template::Data;

    fn data(route_labels: &[(&str, &str)], reason: Option<&'static str>) -> Value {
        let labels = LabelSet::from_strs([("alertname", "A")]);
        let alert = Arc::new(Alert {
            fingerprint: labels.fingerprint(),
            labels: labels.clone(),
            annotations: LabelSet::default(),
            starts_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            ends_at: crate::model::GO_ZERO_TIME,
            generator_url: Arc::from(""),
            updated_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            timeout: false,
        });
        let mut d = Data::new(
            "r",
            &labels,
            &[alert],
            "2026-01-01T00:01:00Z".parse().unwrap(),
            "http://am",
        );
        d.route_labels = LabelSet::from_strs(route_labels.iter().copied());
        d.notification_reason = reason;
        d.to_value()
    }

    fn raw(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn labels_refer_to_each_other_and_cycles_fail() {
        let t = Templates::alertmanager();
        let r = raw(&[
            ("a", "{{ routeLabels \"b\" }}-{{ routeLabels \"c\" }}"),
            ("b", "{{ .GroupLabels.alertname }}"),
            ("c", "{{ routeLabels \"b\" }}{{ routeLabels \"missing\" }}!"),
            ("x", "{{ routeLabels \"y\" }}"),
            ("y", "{{ routeLabels \"x\" }}"),
            ("self", "{{ routeLabels \"self\" }}"),
            ("bad", "{{ .Nope }}"),
        ]);
        let out: BTreeMap<String, Result<String, String>> =
            render(&t, &r, &data(&[], None)).into_iter().collect();
        assert_eq!(out["a"], Ok("A-A!".to_string()));
        assert_eq!(out["b"], Ok("A".to_string()));
        assert!(out["x"]
            .as_ref()
            .unwrap_err()
            .contains("route label cycle detected: x -> y -> x"));
        assert!(out["y"].is_err());
        assert!(out["self"]
            .as_ref()
            .unwrap_err()
            .contains("route label cycle detected: self -> self"));
        assert!(out["bad"].is_err());
    }

    #[test]
    fn notification_templates_see_rendered_labels_and_the_reason() {
        let t = Templates::alertmanager();
        let d = data(
            &[("team", "{{ not rendered again }}"), ("Names", "n")],
            Some("first notification"),
        );
        let out = t
            .execute_text(
                "{{ routeLabels \"team\" }}|{{ routeLabels \"Names\" }}|{{ routeLabels \"none\" }}|{{ .RouteLabels.team }}|{{ .NotificationReason }}",
                &d,
            )
            .unwrap();
        assert_eq!(
            out,
            "{{ not rendered again }}|n||{{ not rendered again }}|first notification"
        );
        // Without route labels every name is empty; the reason defaults.
        let d = data(&[], None);
        assert_eq!(
            t.execute_text("[{{ routeLabels \"team\" }}] {{ .NotificationReason }}", &d)
                .unwrap(),
            "[] unknown"
        );
        assert!(t.execute_text("{{ routeLabels }}", &d).is_err());
    }
}
