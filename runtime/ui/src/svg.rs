//! Charts drawn on the server as SVG: a run's timeline of task runs (a
//! Gantt chart) and the runs page's runs per state over time. Every piece of
//! text in them goes through [`escape`].

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use weft::model::{State, TaskRun, short_duration as duration};
use weft::store::RunSummary;

/// The most task runs a timeline draws; the rest are counted.
pub const MAX_ROWS: usize = 400;

/// Text made safe for HTML and SVG.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The CSS class of a state: `state-completed`.
pub fn state_class(state: Option<State>) -> String {
    state.map_or_else(|| "state-none".to_owned(), |s| format!("state-{}", s.to_string().to_lowercase()))
}

/// A state's colour, for SVG served on its own (as an image it gets no
/// stylesheet); the same colours as the stylesheet's.
fn state_color(state: State) -> &'static str {
    match state {
        State::Scheduled => "#868e96",
        State::Pending => "#f08c00",
        State::Running => "#1c7ed6",
        State::Completed => "#2f9e44",
        State::Failed => "#e03131",
        State::Crashed => "#c2255c",
        State::Cancelling => "#f59f00",
        State::Cancelled => "#adb5bd",
    }
}

fn since(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or_default()
}

/// A run's first task runs (of `total`) as bars over its lifetime `[start,
/// end]`: one row per task run, coloured by state, cache hits hatched,
/// retries counted. A task run still open reaches `end`.
pub fn timeline(tasks: &[TaskRun], total: u64, start: SystemTime, end: SystemTime) -> String {
    const WIDTH: f64 = 960.0;
    const LABEL: f64 = 220.0;
    const ROW: f64 = 22.0;
    let span = since(start, end).as_secs_f64().max(0.001);
    let rows = tasks.len().min(MAX_ROWS);
    let height = ROW * rows as f64 + 28.0;
    let plot = WIDTH - LABEL - 10.0;
    let x = |t: SystemTime| LABEL + plot * (since(start, t).as_secs_f64() / span).min(1.0);
    let mut svg = format!(
        r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="task runs over time">"#
    );
    svg.push_str(r#"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" class="hatch"/></pattern></defs>"#);
    for (row, task) in tasks.iter().take(MAX_ROWS).enumerate() {
        let y = ROW * row as f64 + 4.0;
        let x0 = x(task.started);
        let x1 = x(task.ended.unwrap_or(end)).max(x0 + 2.0);
        let state = if task.ended.is_none() && !task.state.is_final() { State::Running } else { task.state };
        let mut class = format!("bar {}", state_class(Some(state)));
        let mut marks = Vec::new();
        if task.cached {
            class.push_str(" cached");
            marks.push("cached".to_owned());
        }
        if task.attempts > 1 {
            class.push_str(" retried");
            marks.push(format!("{} attempts", task.attempts));
        }
        let took = duration(since(task.started, task.ended.unwrap_or(end)));
        let mut title = format!("{} — {state}, {took}", task.name);
        for mark in &marks {
            let _ = write!(title, ", {mark}");
        }
        if let Some(error) = &task.error {
            let _ = write!(title, "\n{error}");
        }
        let _ = write!(
            svg,
            r#"<g class="task" data-task="{name}" data-state="{state}"><title>{title}</title><text x="{tx}" y="{ty}" class="label">{label}</text><rect x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h}" rx="3" class="{class}"/>"#,
            name = escape(&task.name),
            title = escape(&title),
            tx = LABEL - 8.0,
            ty = y + 13.0,
            label = escape(&shorten(&task.name, 30)),
            w = x1 - x0,
            h = ROW - 6.0,
        );
        if !marks.is_empty() {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" class="mark">{}</text>"#,
                x1 + 4.0,
                y + 13.0,
                escape(&marks.join(", "))
            );
        }
        svg.push_str("</g>");
    }
    let axis = height - 8.0;
    let _ = write!(
        svg,
        r#"<text x="{LABEL}" y="{axis}" class="axis">0s</text><text x="{end_x}" y="{axis}" class="axis" text-anchor="end">{total}</text>"#,
        end_x = WIDTH - 10.0,
        total = duration(since(start, end)),
    );
    let drawn = rows as u64;
    if total > drawn {
        let _ = write!(svg, r#"<text x="10" y="{axis}" class="axis">and {} more task runs</text>"#, total - drawn);
    }
    svg.push_str("</svg>");
    svg
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Runs per state over time, as stacked bars: the runs given (newest
/// first), bucketed by when they were created, over the last hour or, when
/// they reach further back, up to the last day.
pub fn runs_chart(runs: &[RunSummary], now: SystemTime) -> String {
    const WIDTH: f64 = 960.0;
    const HEIGHT: f64 = 150.0;
    const BUCKETS: usize = 24;
    let oldest = runs.iter().map(|r| r.run.created).min().unwrap_or(now);
    let span = since(oldest, now).clamp(Duration::from_secs(3600), Duration::from_secs(24 * 3600));
    let bucket = span.as_secs_f64() / BUCKETS as f64;
    let mut counts = vec![[0u32; State::ALL.len()]; BUCKETS];
    for run in runs {
        let age = since(run.run.created, now).as_secs_f64();
        let Some(state) = run.state else { continue };
        if age >= span.as_secs_f64() {
            continue;
        }
        let index = BUCKETS - 1 - ((age / bucket) as usize).min(BUCKETS - 1);
        let s = State::ALL.iter().position(|x| *x == state).unwrap_or(0);
        counts[index][s] += 1;
    }
    let most = counts.iter().map(|c| c.iter().sum::<u32>()).max().unwrap_or(0).max(1);
    // Room for the scale above and the time axis below.
    let top = 18.0;
    let plot = HEIGHT - 24.0 - top;
    let bar = WIDTH / BUCKETS as f64;
    let mut svg = format!(
        r##"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="runs per state over time" font-family="system-ui, sans-serif" font-size="11"><rect width="100%" height="100%" fill="#fff"/>"##
    );
    for (i, count) in counts.iter().enumerate() {
        let mut y = top + plot;
        for (s, n) in count.iter().enumerate().filter(|(_, n)| **n > 0) {
            let h = plot * f64::from(*n) / f64::from(most);
            y -= h;
            let state = State::ALL[s];
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" class="{class}" fill="{fill}"><title>{n} {state}</title></rect>"#,
                x = bar * i as f64 + 2.0,
                w = bar - 4.0,
                class = state_class(Some(state)),
                fill = state_color(state),
            );
        }
    }
    let _ = write!(
        svg,
        r##"<g fill="#667085"><text x="4" y="{y}">{ago} ago</text><text x="{right}" y="{y}" text-anchor="end">now</text><text x="4" y="12">at most {most} runs per {per}</text></g></svg>"##,
        y = HEIGHT - 6.0,
        right = WIDTH - 4.0,
        ago = humantime::format_duration(Duration::from_secs(span.as_secs())),
        per = humantime::format_duration(Duration::from_secs(bucket as u64)),
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(name: &str, state: State, from: u64, to: Option<u64>) -> TaskRun {
        let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        TaskRun {
            id: name.into(),
            name: name.into(),
            state,
            component: None,
            attempts: 1,
            cached: false,
            cache_key: None,
            started: at(from),
            ended: to.map(at),
            error: None,
        }
    }

    #[test]
    fn the_timeline_draws_a_bar_per_task_run_and_escapes_their_names() {
        let start = SystemTime::UNIX_EPOCH;
        let mut retried = task("<b>fetch</b>", State::Completed, 0, Some(5));
        retried.attempts = 3;
        let mut cached = task("load", State::Completed, 5, Some(5));
        cached.cached = true;
        let open = task("transform", State::Running, 5, None);
        let svg = timeline(&[retried, cached, open], 3, start, start + Duration::from_secs(10));
        assert_eq!(svg.matches("<rect x=").count(), 3);
        assert!(svg.contains("&lt;b&gt;fetch&lt;/b&gt;") && !svg.contains("<b>"));
        assert!(svg.contains("3 attempts") && svg.contains("cached"));
        // The open task run reaches the end of the chart: from 5 s to 10 s
        // is the second half of the plot.
        assert!(svg.contains(r#"data-task="transform" data-state="Running""#));
    }

    #[test]
    fn the_runs_chart_stacks_runs_by_state_in_time_buckets() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let summary = |minutes_ago: u64, state: State| RunSummary {
            run: serde_json::from_value(serde_json::json!({
                "id": "r", "flow_name": "f", "component": format!("sha256:{}", "0".repeat(64)),
                "parameters": {}, "attempt": 1,
                "created": humantime::format_rfc3339_millis(now - Duration::from_secs(minutes_ago * 60)).to_string(),
            }))
            .expect("a run"),
            state: Some(state),
            started: None,
            ended: None,
            stale_since: None,
        };
        let runs = [
            summary(1, State::Completed),
            summary(1, State::Completed),
            summary(1, State::Failed),
            summary(50, State::Completed),
        ];
        let svg = runs_chart(&runs, now);
        assert!(svg.contains("<title>2 Completed</title>") && svg.contains("<title>1 Failed</title>"), "{svg}");
        assert!(svg.contains("<title>1 Completed</title>"), "the older run has a bucket of its own: {svg}");
        assert!(svg.contains("at most 3 runs per 2m 30s"), "{svg}");
    }
}
