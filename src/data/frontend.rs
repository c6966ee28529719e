//! From an audio file to cached log-mel features: decode, down-mix, resample to 16 kHz,
//! fit the clip's length, log-mel. Features are cached on disk under a key hashing the
//! file's bytes and every parameter, so later epochs and runs skip the FFTs.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::data::DataError;
use crate::data::logmel::{Features, LogMel, LogMelParams};
use crate::data::resample::resample;
use crate::data::wav::parse_wav;

/// How a clip's length is fitted before the front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipLength {
    /// Exactly one second: shorter clips are zero-padded at the end; longer clips are
    /// truncated with a warning (SpeechCommands: a few clips run a little over 1 s, and
    /// dropping them would change the official split).
    OneSecond,
    /// As long as it is (BirdDCASE): a clip under one second is padded with zeros after
    /// normalisation, as the reference pads its features, not here; only a clip shorter
    /// than one FFT window is zero-padded to one, so that it has a frame at all.
    Whole,
}

impl ClipLength {
    fn key(self) -> &'static str {
        match self {
            ClipLength::OneSecond => "clip=1s",
            ClipLength::Whole => "clip=whole",
        }
    }
}

/// Bumped whenever decoding or resampling changes, so stale features are never read.
const DECODER_VERSION: &str = "decode-v1 mono-mean sinc-6-0.99-hann";
const MAGIC: &[u8; 4] = b"TLM1";

/// Decoder, front end and cache folder.
pub struct FrontEnd {
    logmel: LogMel,
    clip: ClipLength,
    cache_dir: PathBuf,
}

impl FrontEnd {
    /// Features are cached under `cache_dir/logmel/`.
    pub fn new(params: LogMelParams, clip: ClipLength, cache_dir: &Path) -> FrontEnd {
        FrontEnd {
            logmel: LogMel::new(params),
            clip,
            cache_dir: cache_dir.join("logmel"),
        }
    }

    /// The log-mel transform (for stimuli rendered as the clips are).
    pub fn logmel(&self) -> &LogMel {
        &self.logmel
    }

    /// The cache key of a file's bytes under this front end.
    pub fn key(&self, bytes: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(self.logmel.params().key().as_bytes());
        h.update(DECODER_VERSION.as_bytes());
        h.update(self.clip.key().as_bytes());
        h.update(bytes);
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cache_path(&self, key: &str) -> PathBuf {
        self.cache_dir.join(&key[..2]).join(format!("{key}.f32"))
    }

    /// Decodes and computes the features of a WAV file's bytes (no cache).
    pub fn compute(&self, path: &Path, bytes: &[u8]) -> Result<Features, DataError> {
        let wav = parse_wav(bytes).map_err(|source| DataError::Wav {
            path: path.to_path_buf(),
            source,
        })?;
        let rate = self.logmel.params().sample_rate;
        let mut x = resample(&wav.samples, wav.sample_rate, rate);
        let second = rate as usize;
        if x.len() > second && self.clip == ClipLength::OneSecond {
            crate::log::log(&format!(
                "warning: {}: {:.3} s long, truncated to 1 s",
                path.display(),
                x.len() as f64 / second as f64
            ));
            x.truncate(second);
        }
        let least = match self.clip {
            ClipLength::OneSecond => second,
            ClipLength::Whole => self.logmel.params().n_fft,
        };
        if x.len() < least {
            x.resize(least, 0.0);
        }
        Ok(self.logmel.compute(&x))
    }

    /// The features of `path` and their key, from the cache when present.
    pub fn features(&self, path: &Path) -> Result<(String, Features), DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let key = self.key(&bytes);
        if let Some(f) = self.read_cached(&key)? {
            return Ok((key, f));
        }
        let f = self.compute(path, &bytes)?;
        self.write_cached(&key, &f)?;
        Ok((key, f))
    }

    /// The features cached under `key`, or recomputed from `path` if the cache lost them.
    pub fn cached_or_compute(&self, key: &str, path: &Path) -> Result<Features, DataError> {
        match self.read_cached(key)? {
            Some(f) => Ok(f),
            None => Ok(self.features(path)?.1),
        }
    }

    /// `None` when absent or unreadable as features (a torn write is recomputed).
    fn read_cached(&self, key: &str) -> Result<Option<Features>, DataError> {
        let path = self.cache_path(key);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DataError::io(&path, e)),
        };
        if bytes.len() < 12 || &bytes[..4] != MAGIC {
            return Ok(None);
        }
        let n_mels = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let frames = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        if bytes.len() != 12 + 4 * n_mels * frames {
            return Ok(None);
        }
        let data = bytes[12..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Some(Features {
            n_mels,
            frames,
            data,
        }))
    }

    /// Written atomically (see [`write_atomic`]): readers never see half a file.
    fn write_cached(&self, key: &str, f: &Features) -> Result<(), DataError> {
        let path = self.cache_path(key);
        let mut bytes = Vec::with_capacity(12 + 4 * f.data.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(f.n_mels as u32).to_le_bytes());
        bytes.extend_from_slice(&(f.frames as u32).to_le_bytes());
        for v in &f.data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        crate::data::write_cache(&path, &bytes)
    }
}
