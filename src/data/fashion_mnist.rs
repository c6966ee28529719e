//! Fashion-MNIST from IDX files (`train-images-idx3-ubyte[.gz]`, ...), gzipped or not.
//! Validation is a fixed tenth of the training images.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Limits;
use crate::data::image::{Augment, ImageSplit, ImageStore, Normalize};
use crate::data::{DataError, Dataset, subset};

pub const MEAN: f32 = 0.2860;
pub const STD: f32 = 0.3530;
pub const CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
const SOURCE: &str = "https://github.com/zalandoresearch/fashion-mnist (or `apt-get install dataset-fashion-mnist`, \
    which installs /usr/share/datasets/fashion-mnist/); a subset ships in data/fashion-mnist-subset/";
const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// `name` or `name.gz` in `root`, whichever exists.
fn locate(root: &Path, name: &str) -> Option<PathBuf> {
    [root.join(name), root.join(format!("{name}.gz"))]
        .into_iter()
        .find(|p| p.is_file())
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::io(path, e))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an unsigned-byte IDX file: returns its dimensions and data.
pub fn parse_idx(path: &Path, bytes: &[u8], ndim: u8) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let bad = |what: String| DataError::Format {
        path: path.to_path_buf(),
        what,
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(
            "not an IDX file (expected magic 0x0000 0x08 <ndim>)".into()
        ));
    }
    if bytes[2] != 0x08 || bytes[3] != ndim {
        return Err(bad(format!(
            "IDX of type 0x{:02x} with {} dimensions, expected unsigned bytes (0x08) with {ndim}",
            bytes[2], bytes[3]
        )));
    }
    let header = 4 + 4 * usize::from(ndim);
    if bytes.len() < header {
        return Err(DataError::Size {
            path: path.to_path_buf(),
            expected: format!("at least {header} (the header)"),
            found: bytes.len() as u64,
        });
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count: usize = dims.iter().product();
    if bytes.len() - header != count {
        return Err(DataError::Size {
            path: path.to_path_buf(),
            expected: format!(
                "{} ({header} header + {count} data for dimensions {dims:?}, uncompressed)",
                header + count
            ),
            found: bytes.len() as u64,
        });
    }
    Ok((dims, bytes[header..].to_vec()))
}

fn read_pair(root: &Path, images: &str, labels: &str) -> Result<ImageStore, DataError> {
    let missing = |name: &str| DataError::Missing {
        dataset: "Fashion-MNIST",
        root: root.to_path_buf(),
        missing: if root.is_dir() {
            format!("{name}[.gz]")
        } else {
            "the folder".into()
        },
        expected: FILES.map(|f| format!("{f}[.gz]")).join(", "),
        source_hint: SOURCE,
    };
    let ipath = locate(root, images).ok_or_else(|| missing(images))?;
    let lpath = locate(root, labels).ok_or_else(|| missing(labels))?;
    let (idims, pixels) = parse_idx(&ipath, &read_maybe_gz(&ipath)?, 3)?;
    let (ldims, labels) = parse_idx(&lpath, &read_maybe_gz(&lpath)?, 1)?;
    if idims[0] != ldims[0] {
        return Err(DataError::Format {
            path: lpath,
            what: format!(
                "{} labels for {} images in {}",
                ldims[0],
                idims[0],
                ipath.display()
            ),
        });
    }
    if let Some(i) = labels.iter().position(|&l| l > 9) {
        return Err(DataError::Format {
            path: lpath,
            what: format!("label {} at index {i}, expected 0..=9", labels[i]),
        });
    }
    Ok(ImageStore {
        channels: 1,
        height: idims[1],
        width: idims[2],
        pixels,
        labels: labels.into_iter().map(u32::from).collect(),
    })
}

/// Loads Fashion-MNIST from `root`.
pub fn load(root: &Path, limits: Limits) -> Result<Dataset, DataError> {
    let train_store = Arc::new(read_pair(root, FILES[0], FILES[1])?);
    let test_store = Arc::new(read_pair(root, FILES[2], FILES[3])?);
    let (train_idx, val_idx) = subset::hold_out(train_store.len(), train_store.len() / 10);
    let norm = Normalize {
        mean: vec![MEAN],
        std: vec![STD],
    };
    let pick = |store: &ImageStore, idx: Vec<usize>, limit: Option<usize>| {
        subset::limit_balanced(&idx, |&i| store.labels[i], limit)
    };
    let test_all: Vec<usize> = (0..test_store.len()).collect();
    Ok(Dataset {
        train: Box::new(ImageSplit::new(
            train_store.clone(),
            pick(&train_store, train_idx, limits.train),
            norm.clone(),
            Augment::None,
        )),
        validation: Box::new(ImageSplit::new(
            train_store.clone(),
            pick(&train_store, val_idx, limits.validation),
            norm.clone(),
            Augment::None,
        )),
        test: Box::new(ImageSplit::new(
            test_store.clone(),
            pick(&test_store, test_all, limits.test),
            norm,
            Augment::None,
        )),
        num_classes: 10,
        in_channels: 1,
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
    })
}
