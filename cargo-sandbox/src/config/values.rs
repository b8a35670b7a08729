//! Typed configuration values, each parsed where it is read, so a bad value is reported at its
//! own line by the TOML reader (and by clap on the command line) with the same words.

use harness::units::{parse_bytes, parse_duration};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A cap that may be lifted with `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Cap<T> {
    Max(T),
    None,
}

impl<T: Copy> Cap<T> {
    pub fn value(self) -> Option<T> {
        match self {
            Cap::Max(v) => Some(v),
            Cap::None => None,
        }
    }
}

/// `512M`, `2G`, a number of bytes, or `none`.
pub fn parse_memory(text: &str) -> Result<Cap<u64>, String> {
    if text == "none" {
        return Ok(Cap::None);
    }
    let bytes = parse_bytes(text)?;
    if bytes < 4 << 20 {
        return Err(format!(
            "`{text}` is below the 4 MiB a sandbox needs to start"
        ));
    }
    Ok(Cap::Max(bytes))
}

/// A process count of at least 2 (the init and the command), or `none`.
pub fn parse_pids(text: &str) -> Result<Cap<u64>, String> {
    if text == "none" {
        return Ok(Cap::None);
    }
    match text.parse::<u64>() {
        Ok(n) if n >= 2 => Ok(Cap::Max(n)),
        _ => Err(format!(
            "`{text}` is not a process count of at least 2 (the init and the command), nor `none`"
        )),
    }
}

/// CPUs as a decimal (`1.5`), kept in thousandths.
pub fn parse_cpus(text: &str) -> Result<u32, String> {
    match text.parse::<f64>() {
        Ok(cpus) if (0.01..=4096.0).contains(&cpus) => Ok((cpus * 1000.0).round() as u32),
        _ => Err(format!("`{text}` is not a CPU count between 0.01 and 4096")),
    }
}

/// Bytes per second (`10M`, `10M/s`, `1048576`), or `none`.
pub fn parse_bandwidth(text: &str) -> Result<Cap<u64>, String> {
    if text == "none" {
        return Ok(Cap::None);
    }
    match parse_bytes(text.trim_end_matches("/s")) {
        Ok(bps) if bps >= 4096 => Ok(Cap::Max(bps)),
        _ => Err(format!(
            "`{text}` is not a bandwidth of at least 4K per second (examples: 10M, 512K/s), \
             nor `none`"
        )),
    }
}

/// A duration, or `none` for no limit.
pub fn parse_timeout(text: &str) -> Result<Cap<Duration>, String> {
    if text == "none" {
        return Ok(Cap::None);
    }
    parse_duration(text).map(Cap::Max)
}

/// Accepts a TOML string or integer and hands its text to `parse`.
fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Int(i64),
        Float(f64),
    }
    Ok(
        match Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a string or a number"))?
        {
            Raw::Text(s) => s,
            Raw::Int(i) => i.to_string(),
            Raw::Float(f) => f.to_string(),
        },
    )
}

macro_rules! value_type {
    ($(#[$doc:meta])* $name:ident($inner:ty) = $parse:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $name(pub $inner);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = text_or_number(d)?;
                $parse(text.as_str()).map($name).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                $parse(text).map($name)
            }
        }
    };
}

value_type!(/// `memory = "512M"` | `"none"`.
    Memory(Cap<u64>) = parse_memory);
value_type!(/// `pids = 256` | `"none"`.
    Pids(Cap<u64>) = parse_pids);
value_type!(/// `cpus = 1.5`.
    Cpus(u32) = parse_cpus);
value_type!(/// `io-write-bps = "10M"` | `"none"`.
    Bandwidth(Cap<u64>) = parse_bandwidth);
value_type!(/// `timeout = "60s"` | `"none"`.
    Timeout(Cap<Duration>) = parse_timeout);
value_type!(/// `grace = "1s"`.
    Grace(Duration) = parse_duration);
value_type!(/// `tmp-size = "256M"`.
    Size(u64) = parse_bytes);

/// `cpuset = "0-1,3"`: CPUs as a list of numbers and ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<u32>);

pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, String> {
    let bad = || format!("`{text}` is not a CPU list (examples: 0, 0-3, 0,2)");
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b || b >= 4096 {
            return Err(bad());
        }
        cpus.extend(a..=b);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

impl std::str::FromStr for CpuList {
    type Err = String;
    fn from_str(text: &str) -> Result<CpuList, String> {
        parse_cpu_list(text).map(CpuList)
    }
}

impl<'de> Deserialize<'de> for CpuList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_cpu_list(&text_or_number(d)?)
            .map(CpuList)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        assert_eq!(parse_memory("64M"), Ok(Cap::Max(64 << 20)));
        assert_eq!(parse_memory("none"), Ok(Cap::None));
        assert!(parse_memory("1K").is_err());
        assert_eq!(parse_pids("32"), Ok(Cap::Max(32)));
        assert!(parse_pids("1").is_err());
        assert_eq!(parse_cpus("1.5"), Ok(1500));
        assert!(parse_cpus("0").is_err());
        assert_eq!(parse_timeout("none"), Ok(Cap::None));
        assert_eq!(parse_bandwidth("8M/s"), Ok(Cap::Max(8 << 20)));
        assert_eq!(parse_bandwidth("none"), Ok(Cap::None));
        assert!(parse_bandwidth("12").is_err());
        assert_eq!(parse_cpu_list("0-2,5,1"), Ok(vec![0, 1, 2, 5]));
        assert!(parse_cpu_list("3-1").is_err());
    }
}
