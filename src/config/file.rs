//! The config file (TOML). Its keys are the long flags without their dashes, read into the same
//! clap+serde structs as the command line (src/cli.rs): a new option is a new key by itself.
//!
//! Each struct reads its own keys straight from the text, rather than through one struct of
//! `#[serde(flatten)]` fields, which would cost toml's errors their line and key; a key that no
//! struct reads is refused first, with the list of the keys that exist.

use super::config_error;
use super::routes::RouteFile;
use super::sources::Layer;
use crate::cli::{CommonArgs, IncidentArgs, S3Args, WatchArgs};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Every setting the file gives.
#[derive(Debug, Default)]
pub struct FileConfig {
    pub common: CommonArgs,
    pub s3: S3Args,
    pub incident: IncidentArgs,
    pub watch: WatchArgs,
    pub routes: Vec<RouteFile>,
}

/// The `[[route]]` tables (src/config/routes.rs), a key of the file only.
#[derive(Debug, Default, Deserialize)]
struct Routes {
    #[serde(default)]
    route: Vec<RouteFile>,
}

/// Keys of the file that are no flag: tables.
const FILE_ONLY_KEYS: &[&str] = &["route"];

impl FileConfig {
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str::<KnownKeys>(text)?;
        Ok(FileConfig {
            common: toml::from_str(text)?,
            s3: toml::from_str(text)?,
            incident: toml::from_str(text)?,
            watch: toml::from_str(text)?,
            routes: toml::from_str::<Routes>(text)?.route,
        })
    }

    pub fn layer(&self) -> Layer<'_> {
        Layer {
            common: &self.common,
            s3: &self.s3,
            incident: &self.incident,
            watch: &self.watch,
            routes: &self.routes,
        }
    }
}

/// Reads `explicit`, else the default file if it exists (else no file: the defaults apply).
pub fn read(explicit: Option<&Path>) -> anyhow::Result<(FileConfig, Option<PathBuf>)> {
    let path = explicit.unwrap_or(Path::new(super::DEFAULT_CONFIG));
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok((FileConfig::default(), None));
        }
        Err(e) => {
            return Err(config_error(format!(
                "cannot read config file {}: {e}{}",
                path.display(),
                if e.kind() == std::io::ErrorKind::NotFound {
                    "; create it or fix --config / FASTTRACK_CONFIG"
                } else {
                    ""
                }
            )))
        }
    };
    let file = FileConfig::parse(&text).map_err(|e| {
        config_error(format!(
            "config file {} is not valid: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })?;
    Ok((file, Some(path.to_path_buf())))
}

/// Every key of the file, in the order of src/cli.rs.
pub fn keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            fields::<CommonArgs>(),
            fields::<S3Args>(),
            fields::<IncidentArgs>(),
            fields::<WatchArgs>(),
            FILE_ONLY_KEYS,
        ]
        .concat()
    })
}

/// The keys a struct reads: the field names serde's derive hands to `deserialize_struct`.
fn fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only a struct's fields are read"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("fields read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

/// Accepts a table whose keys are all [`keys`]; the values are each struct's to read.
struct KnownKeys;

impl<'de> Deserialize<'de> for KnownKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct("FileConfig", keys(), KnownKeys)
    }
}

impl<'de> Visitor<'de> for KnownKeys {
    type Value = KnownKeys;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a table of settings")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KnownKeys, A::Error> {
        while map.next_key_seed(Key)?.is_some() {
            map.next_value::<IgnoredAny>()?;
        }
        Ok(KnownKeys)
    }
}

/// A key, refused while toml still knows where it is (so the error shows the line).
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Key {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a setting's name")
    }
    fn visit_str<E: de::Error>(self, key: &str) -> Result<(), E> {
        match keys().contains(&key) {
            true => Ok(()),
            false => Err(E::unknown_field(key, keys())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn an_unknown_key_is_refused_at_its_line_with_the_list_of_keys() {
        let e = FileConfig::parse("keep = 1\nquite = \"5s\"").unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("line 2") && e.contains("unknown field `quite`"),
            "{e}"
        );
        assert!(e.contains("expected one of `log`, `dest`"), "{e}");
        assert!(e.contains("`quiet`, `max-wait`"), "{e}");
    }

    #[test]
    fn a_wrong_type_is_refused_at_its_line() {
        let e = FileConfig::parse("log = \"/x\"\nkeep = \"many\"").unwrap_err();
        let e = e.to_string();
        assert!(e.contains("line 2") && e.contains("keep = \"many\""), "{e}");
    }

    /// The promise of the CONFIGURATION section of the man page, kept by construction.
    #[test]
    fn every_option_is_a_file_key_and_every_key_an_option() {
        let cli = crate::cli::Cli::command();
        let watch = cli.find_subcommand("watch").unwrap();
        let mut flags: Vec<&str> = cli
            .get_arguments()
            .chain(watch.get_arguments().filter(|a| !a.is_global_set()))
            .filter_map(|a| a.get_long())
            .filter(|l| !["config", "help", "version"].contains(l))
            .collect();
        let mut file: Vec<&str> = keys()
            .iter()
            .copied()
            .filter(|k| !FILE_ONLY_KEYS.contains(k))
            .collect();
        flags.sort();
        file.sort();
        assert_eq!(flags, file);
    }
}
