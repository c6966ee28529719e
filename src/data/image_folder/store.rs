//! The decoded images of a tree, held in memory and cached on disk: decoded once, in
//! parallel, under a key of every file's path, size and modification time and of the
//! decoding settings, so that later runs and epochs never decode again.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::decode::{Decoded, Target, decode};
use super::tree::Entry;
use crate::config::Colour;
use crate::data::DataError;

/// Bumped whenever decoding or resizing changes, so stale pixels are never read.
const VERSION: &str = "images-v1 triangle exif";
const MAGIC: &[u8; 4] = b"TIF1";
/// Height, width and label of each image in the cache's header.
const HEADER_ENTRY: usize = 12;

/// Images of varying size, `height x width x channels` each, back to back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderStore {
    pub channels: usize,
    /// `(height, width)` of each image.
    pub shapes: Vec<(u32, u32)>,
    /// Where each image starts in `pixels`.
    offsets: Vec<usize>,
    pub pixels: Vec<u8>,
    pub labels: Vec<u32>,
}

impl FolderStore {
    fn new(channels: usize, shapes: Vec<(u32, u32)>, pixels: Vec<u8>, labels: Vec<u32>) -> Self {
        let mut offsets = Vec::with_capacity(shapes.len());
        let mut at = 0;
        for &(h, w) in &shapes {
            offsets.push(at);
            at += h as usize * w as usize * channels;
        }
        FolderStore {
            channels,
            shapes,
            offsets,
            pixels,
            labels,
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`'s pixels and shape.
    pub fn image(&self, i: usize) -> (&[u8], u32, u32) {
        let (h, w) = self.shapes[i];
        let start = self.offsets[i];
        let len = h as usize * w as usize * self.channels;
        (&self.pixels[start..start + len], h, w)
    }

    fn total_pixels(shapes: &[(u32, u32)], channels: usize) -> usize {
        shapes
            .iter()
            .map(|&(h, w)| h as usize * w as usize * channels)
            .sum()
    }
}

/// The key of `entries` decoded to `target`.
pub fn key(entries: &[Entry], target: Target) -> String {
    let mut h = Sha256::new();
    h.update(VERSION.as_bytes());
    h.update(
        format!(
            "{:?} convert_grey={} shorter={}",
            target.colour, target.convert_grey, target.shorter
        )
        .as_bytes(),
    );
    for e in entries {
        h.update(e.path.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(e.class.to_le_bytes());
        h.update(e.bytes.to_le_bytes());
        h.update(e.modified_ns.to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `entries` decoded: from the cache under `cache_dir/images/` when it holds them, else
/// decoded (every bad file reported together) and cached.
pub fn decoded(
    entries: &[Entry],
    target: Target,
    cache_dir: &Path,
) -> Result<FolderStore, DataError> {
    let channels = match target.colour {
        Colour::Rgb => 3,
        Colour::Grey => 1,
    };
    let path = cache_dir
        .join("images")
        .join(format!("{}.bin", key(entries, target)));
    if let Some(store) = read(&path, channels, entries.len())? {
        return Ok(store);
    }
    let started = Instant::now();
    crate::log::log(&format!(
        "decoding {} images (once: cached in {})",
        entries.len(),
        path.display()
    ));
    let done = AtomicUsize::new(0);
    let last = Mutex::new(Instant::now());
    let results: Vec<Result<Decoded, DataError>> = entries
        .par_iter()
        .map(|e| {
            let decoded = std::fs::read(&e.path)
                .map_err(|err| DataError::io(&e.path, err))
                .and_then(|bytes| decode(&e.path, &bytes, target));
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            report(&last, n, entries.len(), started);
            decoded
        })
        .collect();
    let mut images = Vec::with_capacity(entries.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(d) => images.push(d),
            Err(e) => errors.push(e),
        }
    }
    DataError::all(errors)?;
    let shapes: Vec<(u32, u32)> = images.iter().map(|d| (d.height, d.width)).collect();
    let mut pixels = Vec::with_capacity(FolderStore::total_pixels(&shapes, channels));
    for d in images {
        pixels.extend_from_slice(&d.pixels);
    }
    let labels = entries.iter().map(|e| e.class).collect();
    let store = FolderStore::new(channels, shapes, pixels, labels);
    let seconds = started.elapsed().as_secs_f64();
    crate::log::log(&format!(
        "  decoded {} images in {seconds:.1} s ({:.0} images/s, {:.1} MB in memory)",
        store.len(),
        store.len() as f64 / seconds.max(1e-9),
        store.pixels.len() as f64 / 1e6
    ));
    write(&path, &store)?;
    Ok(store)
}

/// A progress line every few seconds of a long decode.
fn report(last: &Mutex<Instant>, done: usize, total: usize, started: Instant) {
    const EVERY: Duration = Duration::from_secs(3);
    // A poisoned lock only means another thread panicked mid-log: skip this line.
    let Ok(mut last) = last.try_lock() else {
        return;
    };
    if last.elapsed() >= EVERY {
        *last = Instant::now();
        crate::log::log(&format!(
            "  decoded {done}/{total} images ({:.0}/s)",
            done as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ));
    }
}

/// The cached store at `path`, or `None` when absent or not whole (a torn or foreign
/// file is decoded anew).
fn read(path: &Path, channels: usize, count: usize) -> Result<Option<FolderStore>, DataError> {
    let mut bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(DataError::io(path, e)),
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let header = 8 + HEADER_ENTRY * count;
    if bytes.get(..4) != Some(MAGIC) || u32_at(4) != Some(count as u32) || bytes.len() < header {
        return Ok(None);
    }
    let mut shapes = Vec::with_capacity(count);
    let mut labels = Vec::with_capacity(count);
    for i in 0..count {
        let at = 8 + HEADER_ENTRY * i;
        let (Some(h), Some(w), Some(l)) = (u32_at(at), u32_at(at + 4), u32_at(at + 8)) else {
            return Ok(None);
        };
        shapes.push((h, w));
        labels.push(l);
    }
    if bytes.len() - header != FolderStore::total_pixels(&shapes, channels) {
        return Ok(None);
    }
    // The pixels in place, without a second copy of a cache that may be gigabytes.
    bytes.drain(..header);
    Ok(Some(FolderStore::new(channels, shapes, bytes, labels)))
}

/// Written atomically (a reader never sees half a cache), the pixels straight from the
/// store rather than through a second copy of them.
fn write(path: &Path, store: &FolderStore) -> Result<(), DataError> {
    crate::data::write_cache_with(path, |out| {
        out.write_all(MAGIC)?;
        out.write_all(&(store.len() as u32).to_le_bytes())?;
        for (&(h, w), &l) in store.shapes.iter().zip(&store.labels) {
            for v in [h, w, l] {
                out.write_all(&v.to_le_bytes())?;
            }
        }
        out.write_all(&store.pixels)
    })
}
