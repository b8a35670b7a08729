//! `cargo sandbox config [-P PROFILE] [-p PACKAGE] [--binary ID] [TEST]`: the settings a test
//! would run with, and which layer decided each.

use crate::cli::ConfigArgs;
use crate::config::Resolved;

pub fn run(args: ConfigArgs) -> anyhow::Result<i32> {
    let profile = args.profile.clone().unwrap_or_else(|| "default".to_owned());
    let config = match crate::config::of_workspace(args.manifest_path.as_deref(), &profile) {
        Ok(config) => config,
        Err(code) => return Ok(code),
    };
    let (settings, origins) = Resolved::from_layers(config.layers_for(
        &profile,
        &args.package,
        &args.binary,
        &args.test,
        None,
    ));
    let source = config.source.as_ref().map_or_else(
        || "no configuration file".to_owned(),
        |p| p.display().to_string(),
    );
    println!(
        "# effective settings for test `{}` (binary `{}`, package `{}`), profile `{profile}`",
        args.test, args.binary, args.package
    );
    println!("# from {source}; command-line flags would override these");
    if config.has_filters() {
        println!("# overrides with a `filter` are left out here: they apply per test, in a run");
    }
    let value = serde_json::to_value(&settings)?;
    let map = value.as_object().cloned().unwrap_or_default();
    for (key, v) in map {
        let key = key.replace('_', "-");
        let origin = origins
            .get(key.as_str())
            .map_or("built-in default", String::as_str);
        let bytes = v.as_u64().or_else(|| v.get("Max").and_then(|m| m.as_u64()));
        let shown = match (key.as_str(), bytes) {
            ("memory" | "tmp-size", Some(bytes)) => {
                format!("\"{}\"", harness::units::format_bytes(bytes))
            }
            _ => render(&v),
        };
        println!("{key} = {shown}    # {origin}");
    }
    Ok(0)
}

/// Values as a user would write them.
fn render(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Object(m) if m.len() == 1 && m.contains_key("Max") => render(&m["Max"]),
        Value::String(s) if s == "None" => "\"none\"".to_owned(),
        Value::Object(m) if m.contains_key("secs") => {
            let secs = m["secs"].as_f64().unwrap_or(0.0) + m["nanos"].as_f64().unwrap_or(0.0) / 1e9;
            format!("\"{secs}s\"")
        }
        other => other.to_string(),
    }
}
