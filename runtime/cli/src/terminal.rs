//! Log lines on a terminal: human-readable with level colours (colours only
//! on a tty), or JSON lines.

use std::io::Write;

use anstyle::{AnsiColor, Style};

use weft::model::{Level, LogLine, LogSource, RunSink};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per log line, coloured on a terminal.
    Human,
    /// One JSON object per line.
    Json,
}

/// How a command that runs a flow shows its log lines.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// How log lines are written to stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,

    /// The least severe log level shown: trace, debug, info, warn or error.
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = super::run::parse_level)]
    log_level: Level,
}

impl LogArgs {
    /// A printer of a flow's log lines on stderr.
    pub fn printer(&self, flow_name: &str) -> TerminalLogs {
        TerminalLogs::new(self.log_format, self.log_level, flow_name)
    }
}

/// Writes a run's log lines to stderr (or stdout) as they come.
pub struct TerminalLogs {
    format: LogFormat,
    min_level: Level,
    flow_name: String,
    stdout: bool,
}

impl TerminalLogs {
    pub fn new(format: LogFormat, min_level: Level, flow_name: &str) -> Self {
        TerminalLogs { format, min_level, flow_name: flow_name.to_owned(), stdout: false }
    }

    /// Writes to stdout: for `weft logs`, whose output is the lines.
    pub fn on_stdout(mut self) -> Self {
        self.stdout = true;
        self
    }
}

fn level_style(level: Level) -> Style {
    let color = match level {
        Level::Trace => AnsiColor::BrightBlack,
        Level::Debug => AnsiColor::Blue,
        Level::Info => AnsiColor::Green,
        Level::Warn => AnsiColor::Yellow,
        Level::Error => AnsiColor::Red,
    };
    Style::new().fg_color(Some(color.into())).bold()
}

impl RunSink for TerminalLogs {
    fn log(&self, line: LogLine) {
        if line.level < self.min_level {
            return;
        }
        let mut out: Box<dyn Write> =
            if self.stdout { Box::new(anstream::stdout().lock()) } else { Box::new(anstream::stderr().lock()) };
        // A closed stream is no reason to stop the run.
        let _ = match self.format {
            LogFormat::Json => match serde_json::to_string(&line) {
                Ok(json) => writeln!(out, "{json}"),
                Err(_) => Ok(()),
            },
            LogFormat::Human => {
                let time = humantime::format_rfc3339_millis(line.time).to_string();
                let clock = time.get(11..23).unwrap_or(&time);
                let dim = Style::new().dimmed();
                let style = level_style(line.level);
                let mut origin = self.flow_name.clone();
                if let Some(task) = &line.task_name {
                    origin.push('/');
                    origin.push_str(task);
                }
                match line.source {
                    LogSource::Stdout => origin.push_str(" (stdout)"),
                    LogSource::Stderr => origin.push_str(" (stderr)"),
                    LogSource::Flow | LogSource::Weft => {}
                }
                let mut text = format!(
                    "{dim}{clock}{dim:#} {style}{:<5}{style:#} {dim}{origin} |{dim:#} {}",
                    line.level, line.message
                );
                for (key, value) in &line.fields {
                    text.push_str(&format!(" {dim}{key}={dim:#}{value}"));
                }
                writeln!(out, "{text}")
            }
        };
    }
}
