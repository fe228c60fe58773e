//! Record-batch compression codecs (the low three bits of a batch's attributes). Pure
//! functions over byte slices. The broker decompresses a produced batch to validate its
//! records and stores what producers send; only the log cleaner recompresses, a batch it
//! filtered, with that batch's own codec. The bench's native engine compresses its batches
//! with lz4 or zstd and reads them back.
//!
//! Kafka compresses the records section only (everything after the 61-byte batch header);
//! the header's `records_count`, offsets and timestamps stay readable.

use std::io::{Read, Write};

use super::record_batch::{
    ATTRIBUTES_POS, RECORD_BATCH_HEADER_BYTES, RecordBatchHeader, seal_batch,
};

/// Attribute bits that name the codec.
const CODEC_MASK: u16 = 0x07;

/// A codec the bench compresses with (Kafka's attribute bits in [`Codec::id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Lz4,
    Zstd,
}

/// Most bytes one batch's records may decompress to. Kafka bounds only the compressed
/// size; a ratio this high is a decompression bomb rather than a batch, and refusing it
/// bounds what validating one batch can allocate.
pub const DECOMPRESSED_RECORDS_BYTES_MAX: usize = 256 << 20;

/// The snappy-java ("xerial") stream header Kafka's Java client writes before its blocks:
/// magic, then version and compatible version (i32 each).
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\0";
const XERIAL_HEADER_BYTES: usize = 16;

/// The records section of a batch compressed with codec `id` (attribute bits 0-2),
/// decompressed; an error for a corrupt stream, an unknown codec, or more than `bytes_max`
/// bytes of output.
pub fn decompress_records(id: u16, compressed: &[u8], bytes_max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let limit = bytes_max as u64 + 1;
    match id {
        0 => out.extend_from_slice(compressed),
        1 => {
            flate2::read::GzDecoder::new(compressed)
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip: {e}"))?;
        }
        2 => decompress_snappy(compressed, bytes_max, &mut out)?,
        3 => {
            lz4_flex::frame::FrameDecoder::new(compressed)
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| format!("lz4: {e}"))?;
        }
        4 => {
            zstd::stream::read::Decoder::new(compressed)
                .and_then(|decoder| decoder.take(limit).read_to_end(&mut out))
                .map_err(|e| format!("zstd: {e}"))?;
        }
        other => return Err(format!("unknown compression codec {other}")),
    }
    if out.len() > bytes_max {
        return Err(format!("records decompress to more than {bytes_max} bytes"));
    }
    Ok(out)
}

/// Snappy as Kafka clients write it: the Java client's xerial framing (a header, then
/// blocks of `length: i32` + raw snappy), or one raw snappy block.
fn decompress_snappy(compressed: &[u8], bytes_max: usize, out: &mut Vec<u8>) -> Result<(), String> {
    let mut decoder = snap::raw::Decoder::new();
    let mut block = |raw: &[u8], out: &mut Vec<u8>| -> Result<(), String> {
        // The declared length comes from the wire: check it before it sizes anything.
        let length = snap::raw::decompress_len(raw).map_err(|e| format!("snappy: {e}"))?;
        if out.len() + length > bytes_max {
            return Err(format!("records decompress to more than {bytes_max} bytes"));
        }
        let start = out.len();
        out.resize(start + length, 0);
        decoder
            .decompress(raw, &mut out[start..])
            .map_err(|e| format!("snappy: {e}"))?;
        Ok(())
    };
    if !compressed.starts_with(XERIAL_MAGIC) {
        return block(compressed, out);
    }
    let mut rest = compressed
        .get(XERIAL_HEADER_BYTES..)
        .ok_or("snappy: a truncated xerial header")?;
    while !rest.is_empty() {
        let length = rest
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or("snappy: a truncated block length")?;
        let raw = rest
            .get(4..4 + length)
            .ok_or("snappy: a block longer than the batch")?;
        block(raw, out)?;
        rest = &rest[4 + length..];
    }
    Ok(())
}

/// Uncompressed bytes per block of the xerial snappy stream, as snappy-java writes them.
const XERIAL_BLOCK_BYTES: usize = 32 << 10;

/// `records` (an uncompressed records section) compressed with codec `id` (attribute bits
/// 0-2) as Kafka's clients write it: gzip, snappy in the Java client's xerial framing (which
/// librdkafka and the Java client both read), lz4 frames, zstd. The log cleaner uses it to
/// recompress a batch it filtered with the batch's own codec.
pub fn compress_records(id: u16, records: &[u8]) -> Result<Vec<u8>, String> {
    match id {
        0 => Ok(records.to_vec()),
        1 => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder
                .write_all(records)
                .map_err(|e| format!("gzip: {e}"))?;
            encoder.finish().map_err(|e| format!("gzip: {e}"))
        }
        2 => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_BYTES + records.len());
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for block in records.chunks(XERIAL_BLOCK_BYTES) {
                let raw = encoder
                    .compress_vec(block)
                    .map_err(|e| format!("snappy: {e}"))?;
                out.extend_from_slice(&(raw.len() as u32).to_be_bytes());
                out.extend_from_slice(&raw);
            }
            Ok(out)
        }
        3 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder
                .write_all(records)
                .map_err(|e| format!("lz4: {e}"))?;
            encoder.finish().map_err(|e| format!("lz4: {e}"))
        }
        4 => zstd::bulk::compress(records, 1).map_err(|e| format!("zstd: {e}")),
        other => Err(format!("unknown compression codec {other}")),
    }
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
    if codec == Codec::None {
        return Ok(batch[..header.size_bytes()].to_vec());
    }
    let compressed = compress_records(codec.id(), records)?;
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
    let codec = header.attributes as u16 & CODEC_MASK;
    let plain = decompress_records(codec, records, DECOMPRESSED_RECORDS_BYTES_MAX)?;
    let attributes = header.attributes as u16 & !CODEC_MASK;
    Ok(reframe(batch, attributes, &plain))
}

/// A topic's `compression.type` other than `producer`: the codec its batches are stored
/// with, by Kafka's name.
pub fn codec_id_by_name(name: &str) -> Option<u16> {
    match name {
        "uncompressed" => Some(0),
        "gzip" => Some(1),
        "snappy" => Some(2),
        "lz4" => Some(3),
        "zstd" => Some(4),
        _ => None,
    }
}

/// `batch` (a whole produced batch, already validated) stored with codec `id` instead of
/// the producer's: its records decompressed and compressed again, attributes, length and
/// CRC rewritten; every other header field (offsets, timestamps, producer id, sequence)
/// kept. `None` when the batch already uses that codec.
pub fn recompress_batch(batch: &[u8], id: u16) -> Result<Option<Vec<u8>>, String> {
    let header = RecordBatchHeader::decode(batch).map_err(|e| e.to_string())?;
    let codec = header.attributes as u16 & CODEC_MASK;
    if codec == id {
        return Ok(None);
    }
    let records = batch
        .get(RECORD_BATCH_HEADER_BYTES..header.size_bytes())
        .ok_or("batch shorter than its length")?;
    let plain;
    let records = if codec == 0 {
        records
    } else {
        plain = decompress_records(codec, records, DECOMPRESSED_RECORDS_BYTES_MAX)?;
        &plain[..]
    };
    let compressed = compress_records(id, records)?;
    let attributes = (header.attributes as u16 & !CODEC_MASK) | id;
    Ok(Some(reframe(batch, attributes, &compressed)))
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
    use crate::record_batch::{build_batch, record_keys_and_values, validate_produced};

    #[test]
    fn a_batch_recompressed_to_any_codec_keeps_its_records_and_header() {
        let records: Vec<(Option<&[u8]>, &[u8])> = (0..50)
            .map(|_| {
                (
                    Some(&b"key"[..]),
                    &b"a value that compresses well, well, well"[..],
                )
            })
            .collect();
        let plain = build_batch(1_700_000_000_000, &records);
        let expected = record_keys_and_values(&plain).unwrap();
        for from in 0..=4u16 {
            let source = if from == 0 {
                plain.clone()
            } else {
                recompress_batch(&plain, from)
                    .unwrap()
                    .expect("a new codec")
            };
            for to in ["uncompressed", "gzip", "snappy", "lz4", "zstd"] {
                let id = codec_id_by_name(to).unwrap();
                let Some(stored) = recompress_batch(&source, id).unwrap() else {
                    assert_eq!(from, id, "only the same codec is left alone");
                    continue;
                };
                let header = validate_produced(&stored).expect("a valid batch");
                assert_eq!(header.compression() as u16, id, "{from} -> {to}");
                let opened = decompress_batch(&stored).unwrap();
                assert_eq!(record_keys_and_values(&opened).unwrap(), expected);
                let before = RecordBatchHeader::decode(&source).unwrap();
                assert_eq!(
                    (
                        header.base_timestamp,
                        header.max_timestamp,
                        header.records_count
                    ),
                    (
                        before.base_timestamp,
                        before.max_timestamp,
                        before.records_count
                    )
                );
                assert_eq!(
                    (header.producer_id, header.base_sequence),
                    (before.producer_id, before.base_sequence)
                );
            }
        }
        assert_eq!(codec_id_by_name("producer"), None);
        assert_eq!(codec_id_by_name("brotli"), None);
    }

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
        let mut unknown = plain.clone();
        unknown[ATTRIBUTES_POS + 1] |= 6;
        assert!(decompress_batch(&unknown).unwrap_err().contains("codec 6"));
        assert!(compress_batch(&compress_batch(&plain, Codec::Zstd).unwrap(), Codec::Lz4).is_err());
    }
}
