//! Notification templates: Alertmanager's template data and the Go
//! `text/template` language Alertmanager's users write their templates in.
//!
//! `parse` turns template source into a tree as Go's `text/template/parse`
//! does (the same syntax, trim markers, control structures and error
//! positions); `exec` runs trees with Go's semantics and `funcs` holds Go's
//! builtins; `am` holds Alertmanager's data objects (KV, Alerts, times with
//! methods) and function map, and `html` the contextual escaping of e-mail
//! bodies. Herald's default templates live in `templates/` at the root.

pub mod am;
mod data;
pub mod exec;
pub mod funcs;
pub mod html;
pub mod lex;
pub mod parse;

pub use data::{quote_meta, Data, TemplateAlert};
pub use exec::{ExecError, Func, Object, RenderError, Templates, Value};

/// Herald's default templates, built into the binary: every name
/// Alertmanager's `default.tmpl` and `email.tmpl` define.
pub const DEFAULT_TEMPLATES: [(&str, &str); 2] = [
    ("default.tmpl", include_str!("../../templates/default.tmpl")),
    ("email.tmpl", include_str!("../../templates/email.tmpl")),
];
