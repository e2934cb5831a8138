//! Notification templates: Alertmanager's template data and the Go
//! `text/template` language Alertmanager's users write their templates in.
//!
//! `parse` turns template source into a tree as Go's `text/template/parse`
//! does (the same syntax, trim markers, control structures and error
//! positions); `exec` runs trees with Go's semantics and `funcs` holds Go's
//! builtins. Alertmanager's data objects (KV, Alerts, times with methods),
//! its function map and its default templates come next; webhooks need only
//! `data`.

pub mod am;
mod data;
pub mod exec;
pub mod funcs;
pub mod html;
pub mod lex;
pub mod parse;

pub use data::{quote_meta, Data, TemplateAlert};
pub use exec::{ExecError, Func, Object, Templates, Value};
