//! `-p KEY=VALUE` and `--params-file`, shared by `weft run` and
//! `weft deployment run`.

use std::path::PathBuf;

use clap::Args;

use super::CommandError;
use weft::model::{Parameters, parse_assignment};

/// Parameters given on the command line.
#[derive(Debug, Clone, Args)]
pub struct ParamArgs {
    /// A parameter, as KEY=VALUE. The value is read as JSON when it parses as
    /// JSON (10, true, ["a"]) and as text otherwise, or always as text when the
    /// flow declares the parameter a string. Repeatable; overrides --params-file.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,

    /// A JSON file holding an object of parameters.
    #[arg(long, value_name = "FILE")]
    params_file: Option<PathBuf>,
}

impl ParamArgs {
    /// The parameters, typed by the flow's schema where it has one.
    pub fn collect(&self, flow: &str, schema: Option<&serde_json::Value>) -> Result<Parameters, CommandError> {
        let mut parameters = Parameters::new();
        if let Some(path) = &self.params_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CommandError(format!("cannot read parameters file `{}`: {e}", path.display())))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| CommandError(format!("parameters file `{}` is not valid JSON: {e}", path.display())))?;
            let serde_json::Value::Object(map) = value else {
                return Err(CommandError(format!(
                    "parameters file `{}` must hold a JSON object such as {{\"name\": \"Marvin\"}}",
                    path.display()
                )));
            };
            parameters = map;
        }
        for assignment in &self.params {
            let (key, value) = parse_assignment(flow, assignment, schema)?;
            parameters.insert(key, value);
        }
        Ok(parameters)
    }
}
