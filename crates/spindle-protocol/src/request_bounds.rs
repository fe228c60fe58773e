//! The bounds check every request body passes before the codec decodes it. Pure; runs on
//! the core that read the frame.
//!
//! `kafka-protocol` sizes a `Vec` from an array count it has just read
//! (`Vec::with_capacity(count)`) and a string's buffer from its length, before it knows
//! whether the frame holds that much. A 20-byte Metadata request whose topic count is
//! 0x7fffffff asks for 150 GB, and a failed allocation aborts the process. This walk reads
//! the body by its schema ([`super::request_schema`]) and checks every length and count
//! against the bytes that remain, allocating nothing; only a body that passes reaches the
//! codec, whose allocations are then bounded by what actually arrived.

use kafka_protocol::messages::ApiKey;

use super::request_schema::{Field, Kind, request_schema};

/// Checks that every string, bytes and array length in `body` (a request body, after its
/// header) fits in the bytes that follow it. An API without a schema is not checked (the
/// caller decodes only APIs that have one; a test holds the two lists together).
pub fn check_request_body(api_key: ApiKey, version: i16, body: &[u8]) -> Result<(), String> {
    let Some(schema) = request_schema(api_key) else {
        return Ok(());
    };
    let mut walk = Walk {
        rest: body,
        version,
        flexible: schema.is_flexible(version),
    };
    walk.fields(schema.fields)
}

struct Walk<'a> {
    rest: &'a [u8],
    version: i16,
    flexible: bool,
}

impl Walk<'_> {
    fn take(&mut self, bytes: usize, what: &str) -> Result<&[u8], String> {
        if bytes > self.rest.len() {
            return Err(format!(
                "{what} of {bytes} bytes, but only {} remain in the frame",
                self.rest.len()
            ));
        }
        let (taken, rest) = self.rest.split_at(bytes);
        self.rest = rest;
        Ok(taken)
    }

    fn int(&mut self, bytes: usize) -> Result<i64, String> {
        let raw = self.take(bytes, "an integer")?;
        Ok(raw.iter().fold(0i64, |acc, &b| (acc << 8) | b as i64))
    }

    fn unsigned_varint(&mut self) -> Result<u32, String> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let byte = self.take(1, "a varint")?[0];
            value |= ((byte & 0x7f) as u32) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint longer than 5 bytes".into())
    }

    /// A length or count: `None` for null, an error when negative beyond null or larger
    /// than the bytes left (every element, character or byte takes at least one byte).
    fn length(&mut self, classic_bytes: usize, what: &str) -> Result<Option<usize>, String> {
        let length = if self.flexible {
            match self.unsigned_varint()? {
                0 => return Ok(None),
                n => (n - 1) as i64,
            }
        } else {
            let raw = self.int(classic_bytes)?;
            // Sign-extend the i16 or i32 just read.
            let shift = 64 - 8 * classic_bytes as u32;
            match (raw << shift) >> shift {
                -1 => return Ok(None),
                n if n < 0 => return Err(format!("{what} length {n}")),
                n => n,
            }
        };
        if length as usize > self.rest.len() {
            return Err(format!(
                "{what} length {length}, but only {} bytes remain in the frame",
                self.rest.len()
            ));
        }
        Ok(Some(length as usize))
    }

    fn kind(&mut self, kind: &Kind) -> Result<(), String> {
        if let Some(bytes) = kind.fixed_bytes() {
            self.take(bytes, "a field")?;
            return Ok(());
        }
        match kind {
            Kind::Str => {
                if let Some(length) = self.length(2, "string")? {
                    self.take(length, "a string")?;
                }
            }
            Kind::Bytes => {
                if let Some(length) = self.length(4, "bytes")? {
                    self.take(length, "bytes")?;
                }
            }
            Kind::Array(element) => {
                if let Some(count) = self.length(4, "array")? {
                    for _ in 0..count {
                        self.kind(element)?;
                    }
                }
            }
            Kind::Struct(fields) => self.fields(fields)?,
            _ => unreachable!("fixed-size kinds are handled above"),
        }
        Ok(())
    }

    fn fields(&mut self, fields: &[Field]) -> Result<(), String> {
        for field in fields {
            if field.tag.is_none() && field.in_version(self.version) {
                self.kind(&field.kind)?;
            }
        }
        if self.flexible {
            self.tagged_fields(fields)?;
        }
        Ok(())
    }

    /// The tagged-field section. A known tag's value is decoded by the codec from the
    /// stream itself, not from the `size` bytes it declares, so it is walked the same way
    /// and must end exactly where its size says.
    fn tagged_fields(&mut self, fields: &[Field]) -> Result<(), String> {
        let count = self.unsigned_varint()? as usize;
        if count > self.rest.len() {
            return Err(format!(
                "{count} tagged fields, but only {} bytes remain",
                self.rest.len()
            ));
        }
        for _ in 0..count {
            let tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()? as usize;
            if size > self.rest.len() {
                return Err(format!(
                    "tagged field {tag} of {size} bytes, but only {} remain",
                    self.rest.len()
                ));
            }
            let known = fields
                .iter()
                .find(|f| f.tag == Some(tag) && f.in_version(self.version));
            match known {
                Some(field) => {
                    let before = self.rest.len();
                    self.kind(&field.kind)?;
                    if before - self.rest.len() != size {
                        return Err(format!(
                            "tagged field {tag} declares {size} bytes but holds {}",
                            before - self.rest.len()
                        ));
                    }
                }
                None => {
                    self.take(size, "a tagged field")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::DECODABLE_APIS;
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::RequestKind;

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    struct Writer<'a> {
        out: BytesMut,
        rng: &'a mut Rng,
        version: i16,
        flexible: bool,
    }

    impl Writer<'_> {
        fn unsigned_varint(&mut self, mut value: u32) {
            while value >= 0x80 {
                self.out.put_u8((value as u8) | 0x80);
                value >>= 7;
            }
            self.out.put_u8(value as u8);
        }

        fn length(&mut self, length: usize, classic_bytes: usize) {
            if self.flexible {
                self.unsigned_varint(length as u32 + 1);
            } else if classic_bytes == 2 {
                self.out.put_i16(length as i16);
            } else {
                self.out.put_i32(length as i32);
            }
        }

        fn kind(&mut self, kind: &Kind) {
            match kind {
                Kind::Bool => self.out.put_u8(self.rng.below(2) as u8),
                Kind::Str => {
                    let length = self.rng.below(6) as usize;
                    self.length(length, 2);
                    for _ in 0..length {
                        self.out.put_u8(b'a' + self.rng.below(26) as u8);
                    }
                }
                Kind::Bytes => {
                    let length = self.rng.below(6) as usize;
                    self.length(length, 4);
                    for _ in 0..length {
                        self.out.put_u8(self.rng.next() as u8);
                    }
                }
                Kind::Array(element) => {
                    let count = self.rng.below(3) as usize;
                    self.length(count, 4);
                    for _ in 0..count {
                        self.kind(element);
                    }
                }
                Kind::Struct(fields) => self.fields(fields),
                fixed => {
                    for _ in 0..fixed.fixed_bytes().unwrap() {
                        self.out.put_u8(self.rng.next() as u8);
                    }
                }
            }
        }

        fn fields(&mut self, fields: &[Field]) {
            for field in fields {
                if field.tag.is_none() && field.in_version(self.version) {
                    self.kind(&field.kind);
                }
            }
            if !self.flexible {
                return;
            }
            // Every known tagged field of this version, sometimes, and one unknown tag.
            let mut tagged: Vec<(u32, BytesMut)> = Vec::new();
            for field in fields {
                if let Some(tag) = field.tag
                    && field.in_version(self.version)
                    && self.rng.below(2) == 0
                {
                    let outer = std::mem::take(&mut self.out);
                    self.kind(&field.kind);
                    tagged.push((tag, std::mem::replace(&mut self.out, outer)));
                }
            }
            if self.rng.below(3) == 0 {
                tagged.push((90, BytesMut::from(&b"xyz"[..])));
            }
            self.unsigned_varint(tagged.len() as u32);
            for (tag, value) in tagged {
                self.unsigned_varint(tag);
                self.unsigned_varint(value.len() as u32);
                self.out.put_slice(&value);
            }
        }
    }

    fn random_body(api_key: ApiKey, version: i16, rng: &mut Rng) -> Bytes {
        let schema = request_schema(api_key).unwrap();
        let mut writer = Writer {
            out: BytesMut::new(),
            rng,
            version,
            flexible: schema.is_flexible(version),
        };
        writer.fields(schema.fields);
        writer.out.freeze()
    }

    #[test]
    fn every_served_api_has_a_schema() {
        for &(api_key, _, _) in DECODABLE_APIS {
            assert!(request_schema(api_key).is_some(), "{api_key:?}");
        }
    }

    /// The tables agree with the codec: a random body built from a table decodes with
    /// `kafka-protocol` and uses every byte, at every served version of every API.
    #[test]
    fn schemas_match_the_codec_at_every_served_version() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for &(api_key, min, max) in DECODABLE_APIS {
            for version in min..=max {
                for round in 0..200 {
                    let body = random_body(api_key, version, &mut rng);
                    check_request_body(api_key, version, &body).unwrap_or_else(|e| {
                        panic!("{api_key:?} v{version} round {round}: own body rejected: {e}")
                    });
                    let mut decoding = body.clone();
                    RequestKind::decode(api_key, &mut decoding, version).unwrap_or_else(|e| {
                        panic!("{api_key:?} v{version} round {round}: codec: {e} {body:?}")
                    });
                    assert!(
                        decoding.is_empty(),
                        "{api_key:?} v{version} round {round}: codec left {} bytes of {body:?}",
                        decoding.len()
                    );
                }
            }
        }
    }

    /// Any four bytes of a valid body replaced by a huge count or length: the check
    /// refuses what the frame cannot hold, so what reaches the codec decodes (or fails)
    /// without asking for more memory than the frame implies. Without the check, the first
    /// such body aborts the test process on a failed allocation.
    #[test]
    fn huge_lengths_anywhere_are_refused_before_decoding() {
        let mut rng = Rng(0x0bad_cafe_0000_0002);
        let mut refused = 0;
        for &(api_key, min, max) in DECODABLE_APIS {
            for version in min..=max {
                for _ in 0..20 {
                    let body = random_body(api_key, version, &mut rng);
                    if body.len() < 4 {
                        continue;
                    }
                    for at in 0..body.len() - 3 {
                        for huge in [[0x7f, 0xff, 0xff, 0xff], [0xff, 0xff, 0xff, 0x0f]] {
                            let mut bad = BytesMut::from(&body[..]);
                            bad[at..at + 4].copy_from_slice(&huge);
                            if check_request_body(api_key, version, &bad).is_err() {
                                refused += 1;
                                continue;
                            }
                            let _ = RequestKind::decode(api_key, &mut bad.freeze(), version);
                        }
                    }
                }
            }
        }
        assert!(refused > 1000, "only {refused} bodies refused");
    }

    #[test]
    fn metadata_with_a_huge_topic_count_is_refused() {
        // Metadata v4: topics count 0x7fffffff, allow_auto_topic_creation.
        let body = [0x7f, 0xff, 0xff, 0xff, 1];
        let error = check_request_body(ApiKey::Metadata, 4, &body).unwrap_err();
        assert!(error.contains("array length 2147483647"), "{error}");
        // Compact (v9+): count 0x7fffffff + 1 as a varint.
        let body = [0x80, 0x80, 0x80, 0x80, 0x08, 1, 0, 0];
        assert!(check_request_body(ApiKey::Metadata, 12, &body).is_err());
        // Null topics (all topics) is fine.
        assert!(check_request_body(ApiKey::Metadata, 4, &[0xff, 0xff, 0xff, 0xff, 1]).is_ok());
    }

    /// Writes the fuzz seed corpus (`fuzz/capture-seeds.sh` runs it): every frame captured
    /// from real clients (`--capture-requests-dir`), every record batch inside their
    /// Produce requests, and generated requests for every served API and version (the
    /// ones no client at hand sends). Seeds start with the fuzz target's selector byte.
    #[test]
    #[ignore = "writes files: SPINDLE_FUZZ_CORPUS=DIR [SPINDLE_CAPTURED=DIR]"]
    fn write_fuzz_seed_corpus() {
        use crate::api::decode_request;
        use crate::compression::{Codec, compress_batch};
        use crate::record_batch::{RecordBatchHeader, build_batch};
        use kafka_protocol::messages::RequestHeader;
        use kafka_protocol::protocol::{Encodable, StrBytes};
        let corpus = std::path::PathBuf::from(
            std::env::var("SPINDLE_FUZZ_CORPUS").expect("SPINDLE_FUZZ_CORPUS"),
        );
        std::fs::create_dir_all(&corpus).unwrap();
        let write = |selector: u8, bytes: &[u8]| {
            let mut seed = vec![selector];
            seed.extend_from_slice(bytes);
            let name = format!("{:08x}-{}", crate::record_batch::crc32c(&seed), seed.len());
            std::fs::write(corpus.join(name), seed).unwrap();
        };
        let write_batches = |records: &Bytes| {
            let mut rest = &records[..];
            while let Ok(header) = RecordBatchHeader::decode(rest) {
                let size = header.size_bytes().min(rest.len());
                write(1, &rest[..size]);
                rest = &rest[size..];
            }
        };
        if let Ok(captured) = std::env::var("SPINDLE_CAPTURED") {
            for entry in std::fs::read_dir(captured).unwrap() {
                let frame = Bytes::from(std::fs::read(entry.unwrap().path()).unwrap());
                write(0, &frame);
                if let Ok(request) = decode_request(frame, DECODABLE_APIS)
                    && let RequestKind::Produce(produce) = request.body
                {
                    for topic in &produce.topic_data {
                        for partition in &topic.partition_data {
                            if let Some(records) = &partition.records {
                                write_batches(records);
                            }
                        }
                    }
                }
            }
        }
        let mut rng = Rng(0x5eed_0000_c0de_0003);
        for &(api_key, min, max) in DECODABLE_APIS {
            for version in min..=max {
                for _ in 0..2 {
                    let mut frame = BytesMut::new();
                    RequestHeader::default()
                        .with_request_api_key(api_key as i16)
                        .with_request_api_version(version)
                        .with_correlation_id(1)
                        .with_client_id(Some(StrBytes::from_static_str("seed")))
                        .encode(&mut frame, api_key.request_header_version(version))
                        .unwrap();
                    frame.extend_from_slice(&random_body(api_key, version, &mut rng));
                    write(0, &frame);
                }
            }
        }
        let plain = build_batch(1_700_000_000_000, &[(Some(b"k"), b"value"), (None, b"v2")]);
        write(1, &plain);
        for codec in [Codec::Lz4, Codec::Zstd] {
            write(1, &compress_batch(&plain, codec).unwrap());
        }
    }
}
