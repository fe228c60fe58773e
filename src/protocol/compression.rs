//! Record-batch compression codecs (the low three bits of a batch's attributes). Pure
//! functions over byte slices; used by the bench's native engine to build compressed
//! batches and to read its own records back. The broker itself never recompresses: it
//! stores what producers send.
//!
//! Kafka compresses the records section only (everything after the 61-byte batch header);
//! the header's `records_count`, offsets and timestamps stay readable.

use std::io::{Read, Write};

use super::record_batch::{
    ATTRIBUTES_POS, RECORD_BATCH_HEADER_BYTES, RecordBatchHeader, seal_batch,
};

/// Attribute bits that name the codec.
const CODEC_MASK: u16 = 0x07;

/// A codec of Kafka's batch attributes. Gzip (1) and snappy (2) are not built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Lz4,
    Zstd,
}

impl Codec {
    /// The attribute bits Kafka uses for this codec.
    pub fn id(self) -> u16 {
        match self {
            Codec::None => 0,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }

    fn from_id(id: u16) -> Result<Codec, String> {
        match id {
            0 => Ok(Codec::None),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            1 => Err("gzip batches are not supported here".into()),
            2 => Err("snappy batches are not supported here".into()),
            other => Err(format!("unknown compression codec {other}")),
        }
    }
}

/// `batch` (a whole uncompressed RecordBatch v2) with its records section compressed by
/// `codec`, its attributes, length and CRC updated. `Codec::None` returns it unchanged.
pub fn compress_batch(batch: &[u8], codec: Codec) -> Result<Vec<u8>, String> {
    let header = RecordBatchHeader::decode(batch).map_err(|e| e.to_string())?;
    if header.compression() != 0 {
        return Err("batch is already compressed".into());
    }
    let records = batch
        .get(RECORD_BATCH_HEADER_BYTES..header.size_bytes())
        .ok_or("batch shorter than its length")?;
    let compressed = match codec {
        Codec::None => return Ok(batch[..header.size_bytes()].to_vec()),
        Codec::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(records).map_err(|e| e.to_string())?;
            encoder.finish().map_err(|e| e.to_string())?
        }
        Codec::Zstd => zstd::bulk::compress(records, 1).map_err(|e| e.to_string())?,
    };
    let attributes = (header.attributes as u16 & !CODEC_MASK) | codec.id();
    Ok(reframe(batch, attributes, &compressed))
}

/// `batch` with its records section decompressed (attributes' codec bits cleared, length
/// and CRC updated), so record-level readers can walk it. An uncompressed batch is copied.
pub fn decompress_batch(batch: &[u8]) -> Result<Vec<u8>, String> {
    let header = RecordBatchHeader::decode(batch).map_err(|e| e.to_string())?;
    let records = batch
        .get(RECORD_BATCH_HEADER_BYTES..header.size_bytes())
        .ok_or("batch shorter than its length")?;
    let plain = match Codec::from_id(header.attributes as u16 & CODEC_MASK)? {
        Codec::None => return Ok(batch[..header.size_bytes()].to_vec()),
        Codec::Lz4 => {
            let mut out = Vec::new();
            lz4_flex::frame::FrameDecoder::new(records)
                .read_to_end(&mut out)
                .map_err(|e| format!("lz4: {e}"))?;
            out
        }
        Codec::Zstd => {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(records)
                .and_then(|mut decoder| decoder.read_to_end(&mut out))
                .map_err(|e| format!("zstd: {e}"))?;
            out
        }
    };
    let attributes = header.attributes as u16 & !CODEC_MASK;
    Ok(reframe(batch, attributes, &plain))
}

/// The header of `batch` followed by `records`, with `attributes`, the batch length and
/// the CRC rewritten to match.
fn reframe(batch: &[u8], attributes: u16, records: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_BATCH_HEADER_BYTES + records.len());
    out.extend_from_slice(&batch[..RECORD_BATCH_HEADER_BYTES]);
    out.extend_from_slice(records);
    out[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    seal_batch(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::{build_batch, record_keys_and_values, validate_produced};

    #[test]
    fn compressed_batches_validate_and_decompress_to_the_same_records() {
        let values: Vec<Vec<u8>> = (0..200u32)
            .map(|i| format!("value number {i} with some repetition repetition").into_bytes())
            .collect();
        let records: Vec<(Option<&[u8]>, &[u8])> = values
            .iter()
            .map(|v| (Some(b"key".as_slice()), v.as_slice()))
            .collect();
        let plain = build_batch(1_700_000_000_000, &records);
        for codec in [Codec::Lz4, Codec::Zstd] {
            let compressed = compress_batch(&plain, codec).expect("compress");
            let header = validate_produced(&compressed).expect("a valid batch");
            assert_eq!(header.compression() as u16, codec.id());
            assert_eq!(header.records_count, 200);
            assert!(compressed.len() < plain.len() / 2, "{codec:?} compressed");
            assert!(record_keys_and_values(&compressed).is_none());
            let back = decompress_batch(&compressed).expect("decompress");
            assert_eq!(back, plain, "{codec:?} round trip");
        }
        assert_eq!(compress_batch(&plain, Codec::None).unwrap(), plain);
        assert_eq!(decompress_batch(&plain).unwrap(), plain);
    }

    #[test]
    fn corrupt_or_unsupported_compressed_batches_are_errors() {
        let plain = build_batch(0, &[(None, b"abcdefgh".as_slice())]);
        let mut compressed = compress_batch(&plain, Codec::Lz4).unwrap();
        let last = compressed.len() - 3;
        compressed[last] ^= 0xff;
        assert!(decompress_batch(&compressed).is_err());
        let mut gzip = plain.clone();
        gzip[ATTRIBUTES_POS + 1] |= 1;
        assert!(decompress_batch(&gzip).unwrap_err().contains("gzip"));
        assert!(compress_batch(&compress_batch(&plain, Codec::Zstd).unwrap(), Codec::Lz4).is_err());
    }
}
