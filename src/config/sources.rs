//! Where a setting's value comes from: the command line (a flag, or its `FASTTRACK_*` variable,
//! which clap merges), else the config file, else the default `Config` gives. Both layers are
//! the same clap+serde structs of src/cli.rs, so one accessor (`|l| &l.common.keep`) reads a
//! setting from either, and an error names the flag, the variable or the file key it came from.

use super::config_error;
use super::values::Given;
use crate::cli::{CommonArgs, IncidentArgs, S3Args, WatchArgs};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Which flag values came from the environment rather than the command line, so that
/// an error can name the variable the user has to fix.
#[derive(Debug, Default)]
pub struct Origins {
    pub from_env: HashSet<String>,
    /// Flags given on the command line itself (not through the environment).
    pub on_command_line: HashSet<String>,
}

/// Flags whose value is a secret: the webhook URL carries its token (Slack's do).
const SECRET_FLAGS: &[&str] = &["--notify"];

/// Every setting of one layer: the command line's or the config file's.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    pub common: &'a CommonArgs,
    pub s3: &'a S3Args,
    pub incident: &'a IncidentArgs,
    /// Empty on the command line of every other command than `watch`.
    pub watch: &'a WatchArgs,
    /// `[[route]]` tables: the file's only (empty on the command line).
    pub routes: &'a [super::routes::RouteFile],
}

/// One setting's value and the place it came from, for error messages.
pub struct Setting<T> {
    pub value: T,
    pub origin: String,
}

pub struct Sources<'a> {
    origins: &'a Origins,
    flags: Layer<'a>,
    file: Layer<'a>,
    file_path: Option<&'a Path>,
    file_name: Option<String>,
}

/// The environment variable of a setting: `state-dir` is `FASTTRACK_STATE_DIR`.
pub fn env_var(key: &str) -> String {
    format!("FASTTRACK_{}", key.replace('-', "_").to_uppercase())
}

impl<'a> Sources<'a> {
    pub fn new(
        origins: &'a Origins,
        flags: Layer<'a>,
        file: Layer<'a>,
        file_path: Option<&'a Path>,
    ) -> Self {
        Sources {
            origins,
            flags,
            file,
            file_path,
            file_name: file_path.map(|p| p.display().to_string()),
        }
    }

    /// The config file's layer (empty when no file was read).
    pub fn file(&self) -> Layer<'a> {
        self.file
    }

    /// The config file that was read, if any.
    pub fn file_path(&self) -> Option<&'a Path> {
        self.file_path
    }

    /// The config file that was read, as messages name it.
    pub fn file_name(&self) -> Option<&str> {
        self.file_name.as_deref()
    }

    fn origin_of_flag(&self, key: &str) -> String {
        let flag = format!("--{key}");
        if self.origins.from_env.contains(&flag) {
            env_var(key)
        } else {
            flag
        }
    }

    fn origin_of_key(&self, key: &str) -> String {
        match &self.file_name {
            Some(f) => format!("{key} in {f}"),
            None => key.to_string(),
        }
    }

    /// The value of setting `key` (the file key, the long flag without its dashes) that wins:
    /// the command line's, else the file's.
    pub fn pick<F: ?Sized>(
        &self,
        key: &'static str,
        field: impl Fn(Layer<'a>) -> Option<&'a F>,
    ) -> Option<Setting<&'a F>> {
        debug_assert!(super::file::keys().contains(&key), "no setting {key}");
        if let Some(value) = field(self.flags) {
            return Some(Setting {
                value,
                origin: self.origin_of_flag(key),
            });
        }
        field(self.file).map(|value| Setting {
            value,
            origin: self.origin_of_key(key),
        })
    }

    /// A typed setting and where it came from; a refused value is an error that names its origin.
    pub fn get<T: Clone + 'a>(
        &self,
        key: &'static str,
        field: impl Fn(Layer<'a>) -> &'a Option<Given<T>>,
    ) -> anyhow::Result<Option<Setting<T>>> {
        let Some(given) = self.pick(key, |l| field(l).as_ref()) else {
            return Ok(None);
        };
        match given.value.get() {
            Ok(value) => Ok(Some(Setting {
                value: value.clone(),
                origin: given.origin,
            })),
            Err(invalid) => Err(config_error(invalid.at(&given.origin))),
        }
    }

    /// A typed setting, when where it came from no longer matters.
    pub fn value<T: Clone + 'a>(
        &self,
        key: &'static str,
        field: impl Fn(Layer<'a>) -> &'a Option<Given<T>>,
    ) -> anyhow::Result<Option<T>> {
        Ok(self.get(key, field)?.map(|s| s.value))
    }

    /// A repeatable setting: the command line's values if it has any, else the file's.
    pub fn list<T: Clone + 'a>(
        &self,
        key: &'static str,
        field: impl Fn(Layer<'a>) -> &'a [Given<T>],
    ) -> anyhow::Result<Option<Setting<Vec<T>>>> {
        let Some(given) = self.pick(key, |l| Some(field(l)).filter(|v| !v.is_empty())) else {
            return Ok(None);
        };
        let value = given
            .value
            .iter()
            .map(|g| g.get().cloned())
            .collect::<Result<_, _>>()
            .map_err(|invalid| config_error(invalid.at(&given.origin)))?;
        Ok(Some(Setting {
            value,
            origin: given.origin,
        }))
    }

    /// A path, made absolute (relative to the working directory).
    pub fn path(
        &self,
        key: &'static str,
        field: impl Fn(Layer<'a>) -> &'a Option<PathBuf>,
    ) -> anyhow::Result<Option<PathBuf>> {
        let Some(setting) = self.pick(key, |l| field(l).as_ref()) else {
            return Ok(None);
        };
        if setting.value.as_os_str().is_empty() {
            return Err(config_error(format!("{} is empty", setting.origin)));
        }
        let path = std::path::absolute(setting.value).map_err(|e| {
            config_error(format!(
                "{} {}: {e}",
                setting.origin,
                setting.value.display()
            ))
        })?;
        Ok(Some(path))
    }

    /// A secret given as a flag is in the process's arguments, which every local user can read
    /// (`ps`, /proc/<pid>/cmdline) for as long as it runs. `watch` runs for months inside
    /// syslog-ng's program() line: refused there. A one-shot command is told (the warnings).
    pub fn secrets_on_command_line(&self, is_watch: bool) -> anyhow::Result<Vec<String>> {
        let file = self.file_name().unwrap_or(super::DEFAULT_CONFIG);
        let mut warnings = Vec::new();
        for flag in SECRET_FLAGS {
            if !self.origins.on_command_line.contains(*flag) {
                continue;
            }
            let key = flag.trim_start_matches("--");
            let env = env_var(key);
            let instead =
                format!("set {key} in {file} (mode 0640) or {env} in the environment instead");
            if is_watch {
                return Err(config_error(format!(
                    "{flag} on the command line is refused by `fasttrack watch`: its value is a secret and \
                     every local user can read a running process's arguments (ps, /proc/<pid>/cmdline); \
                     {instead}, and remove {flag} from syslog-ng's program() line"
                )));
            }
            warnings.push(format!(
                "{flag} on the command line can be read by every local user while fasttrack runs \
                 (ps, /proc/<pid>/cmdline); {instead} (`fasttrack watch` refuses it)"
            ));
        }
        Ok(warnings)
    }
}
