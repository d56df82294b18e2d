//! A Rust flow that fans out to a Python task and a JavaScript task, which
//! run at the same time, each in its own sandbox, and combines their
//! results.

use serde::{Deserialize, Serialize};
use serde_json::json;

/// Parameters of the polyglot flow.
#[derive(Deserialize, weft::JsonSchema)]
struct Params {
    /// The text both tasks work on.
    #[serde(default = "sample")]
    text: String,
}

fn sample() -> String {
    "the quick brown fox jumps over the lazy dog the end".to_owned()
}

#[derive(Serialize)]
struct Report {
    /// From the Python task: how often each word occurs, the most common first.
    words: serde_json::Value,
    /// From the JavaScript task: the text as a title.
    title: String,
}

#[weft::flow]
fn polyglot(params: Params) -> Result<Report, weft::Error> {
    let input = json!({ "text": params.text });
    // Both are running before the flow waits for either.
    let words = weft::submit_task("count-words", &input)?;
    let title = weft::submit_task("title-case", &input)?;
    let report = Report { words: words.wait()?, title: title.wait()? };
    weft::info!("combined the Python and JavaScript results"; title = report.title);
    Ok(report)
}
