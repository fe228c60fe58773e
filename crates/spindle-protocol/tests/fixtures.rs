//! Byte fixtures: one real request body per API and version this crate decodes
//! (`tests/fixtures/requests/KEY-vVERSION.bin`, taken from the fuzz seed corpus, which was
//! captured from librdkafka, kcat, python3-confluent-kafka and spindle-bench and completed
//! with generated requests). A codec upgrade or a bounds-table change that stops decoding
//! any of them, or decodes one differently from how it re-encodes, fails here.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::RequestHeader;
use kafka_protocol::protocol::Encodable;
use spindle_protocol::api::{DECODABLE_APIS, decode_request};

fn fixture(key: i16, version: i16) -> Option<Bytes> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/requests")
        .join(format!("{key:02}-v{version:02}.bin"));
    std::fs::read(path).ok().map(Bytes::from)
}

#[test]
fn every_decodable_version_has_a_fixture_that_decodes_and_round_trips() {
    let mut missing = Vec::new();
    for &(api_key, min, max) in DECODABLE_APIS {
        for version in min..=max {
            let Some(bytes) = fixture(api_key as i16, version) else {
                missing.push(format!("{api_key:?} v{version}"));
                continue;
            };
            let request = decode_request(bytes, DECODABLE_APIS)
                .unwrap_or_else(|e| panic!("{api_key:?} v{version}: {e}"));
            assert_eq!((request.api_key, request.api_version), (api_key, version));
            // Encode what was decoded and decode that again: the same request.
            let mut again = BytesMut::new();
            RequestHeader::default()
                .with_request_api_key(api_key as i16)
                .with_request_api_version(version)
                .with_correlation_id(request.header.correlation_id)
                .with_client_id(request.header.client_id.clone())
                .encode(&mut again, api_key.request_header_version(version))
                .expect("header encodes");
            request
                .body
                .encode(&mut again, version)
                .unwrap_or_else(|e| panic!("{api_key:?} v{version} re-encodes: {e}"));
            let twice = decode_request(again.freeze(), DECODABLE_APIS)
                .unwrap_or_else(|e| panic!("{api_key:?} v{version} decodes again: {e}"));
            assert_eq!(twice.body, request.body, "{api_key:?} v{version}");
        }
    }
    assert!(missing.is_empty(), "no fixture for {}", missing.join(", "));
}
