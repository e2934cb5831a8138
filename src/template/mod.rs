//! Notification templates: Alertmanager's template data and the Go
//! `text/template` language Alertmanager's users write their templates in.
//!
//! `parse` turns template source into a tree exactly as Go's
//! `text/template/parse` does (the same syntax, trim markers, control
//! structures and error positions). Executing trees against Alertmanager's
//! data, its function map and its default templates is the templates
//! issue's next step; webhooks need only `data`.

mod data;
pub mod lex;
pub mod parse;

pub use data::{quote_meta, Data, TemplateAlert};
