//! `spindle topic|group|cluster info|config|quotas|partitions`: an admin CLI in the style of Redpanda's `rpk`, noun
//! then verb, talking the Kafka protocol to any Kafka-compatible broker (`--brokers`,
//! default 127.0.0.1:9092). Human tables by default, `--format json` for scripts. A bad
//! argument gets one line and exit 2; an unreachable broker or a refused change exits 1.
//! Part of the binary, beside `main.rs`: it uses no broker module, only the protocol
//! crates. Runs on the main thread.

mod client;
pub mod cluster;
pub mod group;
mod member;
pub mod partitions;
pub mod quotas;
mod records;
pub mod topic;

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

pub use group::GroupCommand;
pub use topic::TopicCommand;

/// How results are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    /// `topic consume` only: each record through this template (`%v`, `%k`, ...).
    Template(String),
}

impl Format {
    fn parse(text: &str) -> Result<Format, String> {
        match text {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            template if template.contains('%') => Ok(Format::Template(template.to_string())),
            other => Err(format!(
                "'{other}' is neither text, json nor a record template (%v, %k, %p, %o, %d, %t)"
            )),
        }
    }
}

/// What every admin command takes.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// A broker of the cluster (host:port).
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// `text` (tables), `json` (one document; one line per record for `topic consume`),
    /// or for `topic consume` a record template: %v value, %k key, %p partition, %o
    /// offset, %d timestamp (ms), %t topic, \n and \t.
    #[arg(long, global = true, value_parser = Format::parse, default_value = "text")]
    pub format: Format,
}

/// What a command produced: a JSON document, and its tables for people.
pub struct Output {
    pub json: Value,
    pub sections: Vec<Table>,
    /// Some item failed (a refused topic, a group not found): exit 1 after printing.
    pub failed: bool,
}

/// A titled table of text cells.
pub struct Table {
    pub title: Option<String>,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: Option<&str>, header: Vec<&'static str>) -> Table {
        Table {
            title: title.map(str::to_string),
            header,
            rows: Vec::new(),
        }
    }

    fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let mut text = String::new();
            for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
                if index + 1 == cells.len() {
                    text.push_str(cell);
                } else {
                    text.push_str(&format!("{cell:<width$}  "));
                }
            }
            text.trim_end().to_string()
        };
        let mut out = String::new();
        if let Some(title) = &self.title {
            out.push_str(title);
            out.push('\n');
        }
        out.push_str(&line(self.header.clone()));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
            out.push('\n');
        }
        out
    }
}

/// Prints `output` as asked; the exit code says whether everything succeeded.
pub fn print(format: &Format, result: Result<Output, String>) -> ExitCode {
    match result {
        Err(reason) => {
            eprintln!("spindle: {reason}");
            ExitCode::from(1)
        }
        Ok(output) => {
            match format {
                Format::Json => println!("{}", output.json),
                Format::Text | Format::Template(_) => {
                    let text: Vec<String> = output.sections.iter().map(Table::render).collect();
                    print!("{}", text.join("\n"));
                }
            }
            if output.failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

/// A Kafka error code as people read it: `OK`, or the error's name.
pub fn error_text(code: i16) -> String {
    if code == 0 {
        return "OK".into();
    }
    use kafka_protocol::error::ParseResponseErrorCode;
    match code.err() {
        Some(error) => format!("{error:?}"),
        None => format!("error {code}"),
    }
}

/// `key=value` from the command line.
pub fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected key=value, got '{text}'")),
    }
}
