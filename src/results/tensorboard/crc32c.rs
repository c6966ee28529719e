//! CRC-32C (Castagnoli), the checksum TensorBoard's record format uses, and its mask.

/// The reflected Castagnoli polynomial.
const POLYNOMIAL: u32 = 0x82F6_3B78;

/// The byte-at-a-time table, built at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32C of `bytes`. Event files are small (a record per epoch), so a table is enough.
pub fn crc32c(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |crc, &b| {
        TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

/// The masked form records store (TFRecord's: a checksum of data that holds checksums
/// must not look like one).
pub fn masked_crc32c(bytes: &[u8]) -> u32 {
    crc32c(bytes).rotate_right(15).wrapping_add(0xA282_EAD8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_check_values() {
        // RFC 3720 (iSCSI), appendix B.4, and the catalogue's check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn the_mask_rotates_then_offsets() {
        // TFRecord's definition, in 64-bit arithmetic.
        let crc = u64::from(crc32c(b"topo"));
        let rotated = ((crc >> 15) | (crc << 17)) & 0xFFFF_FFFF;
        let masked = (rotated + 0xA282_EAD8) & 0xFFFF_FFFF;
        assert_eq!(u64::from(masked_crc32c(b"topo")), masked);
    }
}
