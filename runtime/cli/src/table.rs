//! Tables for people, and the `--output` choice between a table and JSON.

/// How a listing is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    Table,
    /// JSON, for scripts.
    Json,
}

/// Lays out rows under headers, columns padded to their widest cell.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let bold = anstyle::Style::new().bold();
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.trim_end().to_owned()
    };
    let mut out = format!("{bold}{}{bold:#}\n", line(headers.iter().map(|h| h.to_string()).collect()));
    for row in rows {
        out.push_str(&line(row.clone()));
        out.push('\n');
    }
    out
}

/// A time for a table: `2026-11-22 12:00:01Z`.
pub fn time(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string().replace('T', " ")
}

pub use weft::model::short_duration as duration;

/// What a listing command takes: the output format and the store.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Table for people, or JSON for scripts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub store: super::store_args::StoreArgs,
}
