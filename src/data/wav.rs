//! A RIFF/WAVE reader: PCM 8/16/24/32-bit, IEEE float 32/64, `WAVE_FORMAT_EXTENSIBLE`;
//! channels are averaged to mono, samples scaled to [-1, 1] as torchaudio does.

use std::io::Read;

/// Why bytes are not a readable WAV file.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("reading")]
    Io(#[from] std::io::Error),
    #[error("not a WAV file (expected `RIFF....WAVE` at the start)")]
    NotWav,
    #[error("no `{0}` chunk")]
    MissingChunk(&'static str),
    #[error(
        "`{chunk}` chunk at byte {offset} declares {declared} bytes but only {available} remain (truncated file?)"
    )]
    Truncated {
        chunk: String,
        offset: usize,
        declared: usize,
        available: usize,
    },
    #[error(
        "unsupported sample format: tag 0x{tag:04x}, {bits} bits (supported: PCM 8/16/24/32, float 32/64)"
    )]
    Unsupported { tag: u16, bits: u16 },
    #[error("malformed `fmt ` chunk: {0}")]
    BadFormat(&'static str),
}

/// Mono samples in [-1, 1] and their rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Wav {
    pub sample_rate: u32,
    pub samples: Vec<f32>,
}

const PCM: u16 = 1;
const FLOAT: u16 = 3;
const EXTENSIBLE: u16 = 0xFFFE;

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Reads a whole WAV stream.
pub fn read_wav(mut r: impl Read) -> Result<Wav, WavError> {
    let mut bytes = Vec::new();
    r.read_to_end(&mut bytes)?;
    parse_wav(&bytes)
}

/// Parses the bytes of a WAV file.
pub fn parse_wav(b: &[u8]) -> Result<Wav, WavError> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut fmt: Option<(u16, u16, u32, u16, u16)> = None; // tag, channels, rate, block align, bits
    let mut pos = 12;
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let declared = u32_at(b, pos + 4) as usize;
        let start = pos + 8;
        let available = b.len() - start;
        // Streaming writers leave the data size at 0 or u32::MAX: read to the end.
        let size = if id == b"data" && (declared == 0 || declared == u32::MAX as usize) {
            available
        } else {
            declared
        };
        if size > available {
            return Err(WavError::Truncated {
                chunk: String::from_utf8_lossy(id).into_owned(),
                offset: pos,
                declared,
                available,
            });
        }
        let body = &b[start..start + size];
        match id {
            b"fmt " => {
                if body.len() < 16 {
                    return Err(WavError::BadFormat("shorter than 16 bytes"));
                }
                let mut tag = u16_at(body, 0);
                let bits = u16_at(body, 14);
                if tag == EXTENSIBLE {
                    if body.len() < 40 {
                        return Err(WavError::BadFormat(
                            "WAVE_FORMAT_EXTENSIBLE shorter than 40 bytes",
                        ));
                    }
                    // The sub-format GUID starts with the plain format tag.
                    tag = u16_at(body, 24);
                }
                fmt = Some((
                    tag,
                    u16_at(body, 2),
                    u32_at(body, 4),
                    u16_at(body, 12),
                    bits,
                ));
            }
            b"data" => {
                let (tag, channels, rate, align, bits) =
                    fmt.ok_or(WavError::MissingChunk("fmt "))?;
                return decode(body, tag, channels, rate, align, bits);
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        pos = start + size + (size & 1);
    }
    Err(WavError::MissingChunk(if fmt.is_some() {
        "data"
    } else {
        "fmt "
    }))
}

fn decode(
    data: &[u8],
    tag: u16,
    channels: u16,
    rate: u32,
    align: u16,
    bits: u16,
) -> Result<Wav, WavError> {
    if channels == 0 {
        return Err(WavError::BadFormat("zero channels"));
    }
    if rate == 0 {
        return Err(WavError::BadFormat("zero sample rate"));
    }
    let width = usize::from(bits).div_ceil(8);
    let sample: fn(&[u8]) -> f32 = match (tag, bits) {
        (PCM, 8) => |s| (f32::from(s[0]) - 128.0) / 128.0,
        (PCM, 16) => |s| f32::from(i16::from_le_bytes([s[0], s[1]])) / 32768.0,
        (PCM, 24) => |s| (i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as f32 / 8_388_608.0,
        (PCM, 32) => {
            |s| (f64::from(i32::from_le_bytes([s[0], s[1], s[2], s[3]])) / 2_147_483_648.0) as f32
        }
        (FLOAT, 32) => |s| f32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        (FLOAT, 64) => {
            |s| f64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]) as f32
        }
        _ => return Err(WavError::Unsupported { tag, bits }),
    };
    let channels = usize::from(channels);
    // A block align smaller than a frame is a broken header: trust the sample width.
    let frame = usize::from(align).max(width * channels);
    let samples = data
        .chunks_exact(frame)
        .map(|f| {
            (0..channels)
                .map(|c| sample(&f[c * width..(c + 1) * width]))
                .sum::<f32>()
                / channels as f32
        })
        .collect();
    Ok(Wav {
        sample_rate: rate,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV with a hand-built `fmt ` body and data, plus an odd-sized chunk before `fmt `.
    fn build(fmt: &[u8], data: &[u8]) -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
        b.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        b.extend_from_slice(b"fmt ");
        b.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
        b.extend_from_slice(fmt);
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        b
    }

    fn fmt(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut f = Vec::new();
        for v in [tag, channels] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&rate.to_le_bytes());
        f.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        f.extend_from_slice(&align.to_le_bytes());
        f.extend_from_slice(&bits.to_le_bytes());
        f
    }

    #[test]
    fn decodes_each_sample_format() {
        let w = parse_wav(&build(&fmt(1, 1, 8000, 8), &[0, 128, 255])).unwrap();
        assert_eq!(w.samples, vec![-1.0, 0.0, 127.0 / 128.0]);
        assert_eq!(w.sample_rate, 8000);
        let w = parse_wav(&build(&fmt(1, 1, 8000, 16), &[0x00, 0x80, 0xff, 0x7f])).unwrap();
        assert_eq!(w.samples, vec![-1.0, 32767.0 / 32768.0]);
        // 24-bit: -2^22 and 2^22 - 1 ... as little-endian triples.
        let w = parse_wav(&build(
            &fmt(1, 1, 8000, 24),
            &[0x00, 0x00, 0xc0, 0x00, 0x00, 0x40],
        ))
        .unwrap();
        assert_eq!(w.samples, vec![-0.5, 0.5]);
        let w = parse_wav(&build(&fmt(1, 1, 8000, 32), &i32::MIN.to_le_bytes())).unwrap();
        assert_eq!(w.samples, vec![-1.0]);
        let w = parse_wav(&build(&fmt(3, 1, 8000, 32), &0.25f32.to_le_bytes())).unwrap();
        assert_eq!(w.samples, vec![0.25]);
        let w = parse_wav(&build(&fmt(3, 1, 8000, 64), &(-0.75f64).to_le_bytes())).unwrap();
        assert_eq!(w.samples, vec![-0.75]);
    }

    #[test]
    fn averages_channels_and_reads_extensible() {
        // Stereo 16-bit, extensible with the PCM sub-format GUID.
        let mut f = fmt(0xFFFE, 2, 44100, 16);
        f.extend_from_slice(&22u16.to_le_bytes());
        f.extend_from_slice(&16u16.to_le_bytes());
        f.extend_from_slice(&3u32.to_le_bytes());
        f.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
        ]);
        let data: Vec<u8> = [16384i16, 0, -16384, -16384]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let w = parse_wav(&build(&f, &data)).unwrap();
        assert_eq!(w.samples, vec![0.25, -0.5]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            parse_wav(b"ID3\x03 not a wav at all"),
            Err(WavError::NotWav)
        ));
        let mut b = build(&fmt(1, 1, 8000, 16), &[0; 100]);
        b.truncate(b.len() - 10);
        let e = parse_wav(&b).unwrap_err().to_string();
        assert!(e.contains("declares 100 bytes but only 90 remain"), "{e}");
        assert!(matches!(
            parse_wav(&build(&fmt(2, 1, 8000, 4), &[0; 4])),
            Err(WavError::Unsupported { tag: 2, bits: 4 })
        ));
        let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
        b.extend_from_slice(b"data\x02\0\0\0\0\0");
        assert!(matches!(parse_wav(&b), Err(WavError::MissingChunk("fmt "))));
    }
}
