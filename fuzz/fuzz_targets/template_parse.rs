//! Parses arbitrary text as a notification template and, when it parses,
//! runs it on Alertmanager's example data in text and HTML mode. Any panic
//! or hang is a bug: templates come from users' config files and a bad one
//! must be refused with an error, never crash Herald.
#![no_main]

use herald::template::{am, Templates};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let t = Templates::alertmanager();
    let dot = am::example_data(jiff::Timestamp::UNIX_EPOCH);
    let _ = t.execute_text(text, &dot);
    let _ = t.execute_html_text(text, &dot);
});
