//! What an image goes through before the model. Plain `u8` buffers, no libtorch.
pub mod augment;
pub mod cifar;
pub mod download;
pub mod folder;
pub mod image;
pub mod loader;
pub mod mt19937;
pub mod pack;
pub mod rng;
pub mod subset;
pub mod validation;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use cifar::Cifar;

/// The dataset a run trained on, as results name it: "CIFAR-10", "CIFAR-100", or
/// "folder:<name>" for an image-folder dataset (`data.folder`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dataset {
    Cifar(Cifar),
    Folder(String),
}

impl Dataset {
    /// Names for `classes` classes: CIFAR's own, else their indices.
    pub fn class_names(&self, classes: usize) -> Vec<String> {
        match self {
            Dataset::Cifar(kind) => kind.class_names(),
            Dataset::Folder(_) => (0..classes).map(|c| c.to_string()).collect(),
        }
    }
}

impl std::fmt::Display for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dataset::Cifar(kind) => f.write_str(kind.name()),
            Dataset::Folder(name) => write!(f, "folder:{name}"),
        }
    }
}

impl std::str::FromStr for Dataset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(kind) = Cifar::from_name(s) {
            return Ok(Dataset::Cifar(kind));
        }
        match s.strip_prefix("folder:") {
            Some(name) if !name.is_empty() => Ok(Dataset::Folder(name.to_string())),
            _ => Err(format!("dataset {s:?} is not known; expected CIFAR-10, CIFAR-100 or folder:<name>")),
        }
    }
}

impl Serialize for Dataset {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dataset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_are_named_as_results_spell_them() {
        for (text, dataset) in [
            ("CIFAR-10", Dataset::Cifar(Cifar::Cifar10)),
            ("CIFAR-100", Dataset::Cifar(Cifar::Cifar100)),
            ("folder:places-lt", Dataset::Folder("places-lt".into())),
        ] {
            assert_eq!(text.parse::<Dataset>().unwrap(), dataset);
            assert_eq!(dataset.to_string(), text);
        }
        assert!("MNIST".parse::<Dataset>().unwrap_err().contains("\"MNIST\" is not known"));
        assert!("folder:".parse::<Dataset>().is_err());
    }
}
