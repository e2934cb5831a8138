//! Notification templates: Alertmanager's template data and the Go
//! `text/template` language Alertmanager's users write their templates in.
//!
//! The files are layered so that each builds only on those before it; a
//! lower file never imports a higher one. That keeps the Go engine usable
//! and testable without Alertmanager's types, and lets a change to
//! Alertmanager's layer leave the engine alone:
//!
//! 1. `lex` → `parse`: template source to trees, as Go's
//!    `text/template/parse` (the same syntax, trim markers, control
//!    structures and error positions).
//! 2. `value`: the values templates compute with, and the `Object` trait
//!    host types implement.
//! 3. `html`: the contextual escaping of Go's `html/template`; below `exec`
//!    because execution in HTML mode feeds it every text and value.
//! 4. `exec`: runs trees with Go's semantics over a function map it is
//!    handed. Layers 1-4 are the engine and know nothing of Alertmanager.
//! 5. `funcs`: Go's builtins, written against `value` alone.
//! 6. `data` (the `template.Data` struct and webhook payload, a leaf) and
//!    `am`: Alertmanager's KV, Alerts and time objects, its function map
//!    and its example data.
//! 7. `templates`: the `Templates` façade that loads Herald's defaults
//!    (`templates/` at the repository root) and the user's files, and
//!    renders config fields; what the rest of Herald uses.

pub mod am;
mod data;
mod exec;
mod funcs;
mod html;
mod lex;
mod parse;
mod route_labels;
mod templates;
mod value;

pub(crate) use data::Data;
pub use exec::ExecError;
pub use lex::SyntaxError;
pub(crate) use route_labels::render as render_route_labels;
pub use templates::{LoadError, TemplateError, Templates};
pub use value::Value;
