//! The Kafka APIs and versions this crate can check and decode, and the pure framing of
//! requests and responses around the `kafka-protocol` codec. No I/O: bytes in, typed values out, so
//! every function here runs on any core and can be fuzzed.
//!
//! A frame is `size: i32` followed by `size` bytes. A request frame starts with a header
//! whose first three fields (api key, api version, correlation id) sit at fixed positions in
//! every header version; that lets us answer a request we cannot decode.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::ErrorCode;

/// `(api key, min version, max version)` rows: what a broker serves (its registry, which
/// ApiVersions advertises) or what this crate can decode.
pub type ApiVersionTable = [(ApiKey, i16, i16)];

/// Every API and version this crate can bounds-check (`request_schema` has its fields) and
/// decode: the intersection of what Apache Kafka 4.x accepts and what the codec knows. A
/// broker serves a subset of it, from its own registry.
pub const DECODABLE_APIS: &ApiVersionTable = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
];

/// The versions of `api_key` in `table`, if any.
pub fn versions_in(table: &ApiVersionTable, api_key: i16) -> Option<(i16, i16)> {
    table
        .iter()
        .find(|(key, _, _)| *key as i16 == api_key)
        .map(|&(_, min, max)| (min, max))
}

/// Bytes of the size prefix of every frame.
pub const FRAME_PREFIX_BYTES: usize = 4;

/// Why a frame cannot be served. `Malformed` closes the connection; the others are
/// answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The frame is shorter than a header or its body does not decode. The connection is
    /// closed: after a bad frame nothing later on the stream can be trusted.
    Malformed(String),
    /// An API or version Spindle does not serve; answered with UNSUPPORTED_VERSION.
    Unsupported {
        api_key: i16,
        api_version: i16,
        correlation_id: i32,
    },
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Malformed(reason) => write!(f, "malformed request: {reason}"),
            RequestError::Unsupported {
                api_key,
                api_version,
                ..
            } => write!(f, "unsupported api key {api_key} version {api_version}"),
        }
    }
}

/// A decoded request: its header and typed body.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// Parses the size prefix: `Ok(None)` while fewer than four bytes are buffered, the body
/// size otherwise. A negative or oversized size is malformed.
pub fn frame_body_bytes(buffered: &[u8], body_bytes_max: usize) -> Result<Option<usize>, String> {
    if buffered.len() < FRAME_PREFIX_BYTES {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buffered[0], buffered[1], buffered[2], buffered[3]]);
    if size < 8 {
        return Err(format!(
            "frame size {size} is smaller than a request header"
        ));
    }
    let size = size as usize;
    if size > body_bytes_max {
        return Err(format!(
            "frame size {size} exceeds the limit of {body_bytes_max} bytes (--max-request-bytes)"
        ));
    }
    Ok(Some(size))
}

/// Decodes one request frame body (without its size prefix) of an API and version in
/// `served` (which must lie within [`DECODABLE_APIS`]); any other is `Unsupported`. Record
/// batches inside stay slices of `body` (no copy).
pub fn decode_request(mut body: Bytes, served: &ApiVersionTable) -> Result<Request, RequestError> {
    if body.len() < 8 {
        return Err(RequestError::Malformed(format!(
            "{} bytes is shorter than a request header",
            body.len()
        )));
    }
    let api_key_raw = i16::from_be_bytes([body[0], body[1]]);
    let api_version = i16::from_be_bytes([body[2], body[3]]);
    let correlation_id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    let unsupported = RequestError::Unsupported {
        api_key: api_key_raw,
        api_version,
        correlation_id,
    };
    let (min, max) = versions_in(served, api_key_raw).ok_or(unsupported.clone())?;
    if api_version < min || api_version > max {
        return Err(unsupported);
    }
    let api_key = ApiKey::try_from(api_key_raw).map_err(|()| unsupported.clone())?;
    let header_version = api_key.request_header_version(api_version);
    let header = RequestHeader::decode(&mut body, header_version)
        .map_err(|e| RequestError::Malformed(format!("request header: {e}")))?;
    // No length from the wire may size an allocation before it is checked against the
    // frame: the codec trusts array counts (see request_bounds).
    super::request_bounds::check_request_body(api_key, api_version, &body)
        .map_err(|e| RequestError::Malformed(format!("{api_key:?} v{api_version} body: {e}")))?;
    let request = RequestKind::decode(api_key, &mut body, api_version)
        .map_err(|e| RequestError::Malformed(format!("{api_key:?} v{api_version} body: {e}")))?;
    // Bytes after the body are ignored, as Kafka ignores them: librdkafka 2.0.2 (Debian's
    // kcat) sends Metadata v12 requests with 3 bytes past the body Kafka's schema defines
    // (seen in tests/it/interop.rs).
    Ok(Request {
        api_key,
        api_version,
        header,
        body: request,
    })
}

/// Encodes a whole response frame (size prefix, header, body).
pub fn encode_response(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<BytesMut, String> {
    let mut frame = BytesMut::with_capacity(256);
    frame.put_i32(0);
    let header_version = api_key.response_header_version(api_version);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut frame, header_version)
        .map_err(|e| format!("{api_key:?} v{api_version} response header: {e}"))?;
    body.encode(&mut frame, api_version)
        .map_err(|e| format!("{api_key:?} v{api_version} response: {e}"))?;
    let size = (frame.len() - FRAME_PREFIX_BYTES) as i32;
    frame[..FRAME_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

/// The ApiVersions body listing `served`.
pub fn api_versions_body(error_code: ErrorCode, served: &ApiVersionTable) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error_code.code())
        .with_api_keys(
            served
                .iter()
                .map(|&(key, min, max)| {
                    ApiVersion::default()
                        .with_api_key(key as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
}

/// The answer to a request Spindle does not serve. ApiVersions at a version newer than ours
/// gets Kafka's fallback: a v0 response (v0 header, no tagged fields) with
/// UNSUPPORTED_VERSION and our ranges, so the client retries with a version we know. Any
/// other API gets a frame holding the correlation id and the error code UNSUPPORTED_VERSION:
/// clients treat the request as failed and, having read ApiVersions, never send it again.
pub fn encode_unsupported(api_key: i16, correlation_id: i32, served: &ApiVersionTable) -> BytesMut {
    let mut frame = BytesMut::with_capacity(64);
    frame.put_i32(0);
    frame.put_i32(correlation_id);
    if api_key == ApiKey::ApiVersions as i16 {
        api_versions_body(ErrorCode::UnsupportedVersion, served)
            .encode(&mut frame, 0)
            .expect("v0 ApiVersions always encodes");
    } else {
        frame.put_i16(ErrorCode::UnsupportedVersion.code());
    }
    let size = (frame.len() - FRAME_PREFIX_BYTES) as i32;
    frame[..FRAME_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::StrBytes;

    fn request_frame(api_key: ApiKey, version: i16, body: &RequestKind) -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("test")))
            .encode(&mut buf, api_key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn supported_table_is_within_the_codec_ranges() {
        for &(key, min, max) in DECODABLE_APIS {
            let range = key.valid_versions();
            assert!(
                min >= range.min && max <= range.max && min <= max,
                "{key:?}"
            );
        }
    }

    #[test]
    fn decodes_every_supported_version_of_metadata() {
        for version in 0..=12 {
            let body = RequestKind::Metadata(MetadataRequest::default());
            let request = decode_request(
                request_frame(ApiKey::Metadata, version, &body),
                DECODABLE_APIS,
            )
            .unwrap();
            assert_eq!(request.api_version, version);
            assert_eq!(request.header.correlation_id, 7);
            assert!(matches!(request.body, RequestKind::Metadata(_)));
        }
    }

    #[test]
    fn unsupported_version_and_garbage_are_told_apart() {
        let body = RequestKind::ApiVersions(ApiVersionsRequest::default());
        let frame = request_frame(ApiKey::ApiVersions, 4, &body);
        let mut newer = BytesMut::from(&frame[..]);
        newer[3] = 9; // api_version 9
        assert_eq!(
            decode_request(newer.freeze(), DECODABLE_APIS).unwrap_err(),
            RequestError::Unsupported {
                api_key: 18,
                api_version: 9,
                correlation_id: 7
            }
        );
        let mut truncated = BytesMut::from(&frame[..]);
        truncated.truncate(frame.len() - 1);
        assert!(matches!(
            decode_request(truncated.freeze(), DECODABLE_APIS),
            Err(RequestError::Malformed(_))
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 3]), DECODABLE_APIS),
            Err(RequestError::Malformed(_))
        ));
        let mut trailing = BytesMut::from(&frame[..]);
        trailing.put_u8(0);
        assert!(
            decode_request(trailing.freeze(), DECODABLE_APIS).is_ok(),
            "trailing bytes are ignored"
        );
    }

    #[test]
    fn frame_size_limits() {
        assert_eq!(frame_body_bytes(&[0, 0], 100), Ok(None));
        assert_eq!(frame_body_bytes(&[0, 0, 0, 20], 100), Ok(Some(20)));
        assert!(frame_body_bytes(&[0, 0, 1, 0], 100).is_err());
        assert!(frame_body_bytes(&[0xff, 0xff, 0xff, 0xff], 100).is_err());
    }

    #[test]
    fn api_versions_v3_answer_writes_no_tagged_fields() {
        // librdkafka before 2.2 mis-skips tagged fields; Kafka writes none at their defaults.
        let body = ResponseKind::ApiVersions(api_versions_body(ErrorCode::None, DECODABLE_APIS));
        let frame = encode_response(ApiKey::ApiVersions, 3, 1, &body).unwrap();
        // The body ends with the top-level tagged-field count, which must be zero, and
        // each api key entry ends with an empty tagged-field section too.
        assert_eq!(*frame.last().unwrap(), 0);
        let entries = DECODABLE_APIS.len();
        // prefix 4 + correlation 4 (v0 header for ApiVersions) + error 2 + compact array
        // length 1 + entries * (2+2+2+1) + throttle 4 + tagged 1
        assert_eq!(frame.len(), 4 + 4 + 2 + 1 + entries * 7 + 4 + 1);
    }

    #[test]
    fn unsupported_api_versions_gets_a_v0_answer() {
        let frame = encode_unsupported(ApiKey::ApiVersions as i16, 42, DECODABLE_APIS);
        let mut body = frame.freeze();
        body.advance(4);
        assert_eq!(body.get_i32(), 42);
        let response = ApiVersionsResponse::decode(&mut body, 0).unwrap();
        assert_eq!(response.error_code, 35);
        assert_eq!(response.api_keys.len(), DECODABLE_APIS.len());
    }
}
