//! `compression.type` (issue 16): a topic that names a codec stores every produced batch
//! with it, whatever the producer sent (recompressed on append, as Kafka does); `producer`
//! keeps the producer's codec. The config is live, and librdkafka reads what was stored.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, FetchResponse};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use spindle_protocol::compression::{decompress_batch, recompress_batch};
use spindle_protocol::record_batch::{RecordBatchHeader, build_batch, record_keys_and_values};

use crate::common::{
    Broker, RawClient, fetch_request, produce_records, spindle_cli, spindle_cli_ok, temp_dir,
};

/// Every stored batch of partition 0 from offset 0: `(codec, values)`.
fn stored_batches(client: &mut RawClient, topic: &str) -> Vec<(i16, Vec<String>)> {
    let response: FetchResponse = client.call(
        ApiKey::Fetch,
        12,
        &fetch_request(topic, uuid::Uuid::nil(), 0, 0),
    );
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    let records = partition.records.clone().unwrap_or_default();
    let mut batches = Vec::new();
    let mut rest = &records[..];
    while !rest.is_empty() {
        let header = RecordBatchHeader::decode(rest).expect("a batch");
        let batch = &rest[..header.size_bytes()];
        let plain = decompress_batch(batch).expect("decompresses");
        let values = record_keys_and_values(&plain)
            .expect("records")
            .into_iter()
            .map(|(_, value)| String::from_utf8(value.unwrap().to_vec()).unwrap())
            .collect();
        batches.push((header.compression(), values));
        rest = &rest[header.size_bytes()..];
    }
    batches
}

fn batch(values: &[&str], codec: u16) -> Bytes {
    let records: Vec<(Option<&[u8]>, &[u8])> = values
        .iter()
        .map(|v| (Some(&b"k"[..]), v.as_bytes()))
        .collect();
    let plain = build_batch(1_700_000_000_000, &records);
    match recompress_batch(&plain, codec).unwrap() {
        Some(compressed) => Bytes::from(compressed),
        None => Bytes::from(plain),
    }
}

#[test]
fn a_topics_compression_type_is_the_codec_its_batches_are_stored_with() {
    let dir = temp_dir("topic-compression");
    let broker = Broker::start(dir.path(), &["--cores", "1"]);
    let brokers = broker.bootstrap.as_str();
    spindle_cli_ok(
        brokers,
        &[
            "topic",
            "create",
            "squeezed",
            "-p",
            "1",
            "-c",
            "compression.type=zstd",
        ],
    );
    let mut client = RawClient::connect(brokers);
    // Uncompressed and gzip batches in, zstd stored.
    assert_eq!(
        produce_records(&mut client, "squeezed", 0, batch(&["a", "b"], 0), -1),
        (0, 0)
    );
    assert_eq!(
        produce_records(&mut client, "squeezed", 0, batch(&["c"], 1), -1),
        (0, 2)
    );
    // Live: `producer` keeps what the producer sent (lz4 here).
    spindle_cli_ok(
        brokers,
        &[
            "topic",
            "alter-config",
            "squeezed",
            "--set",
            "compression.type=producer",
        ],
    );
    assert_eq!(
        produce_records(&mut client, "squeezed", 0, batch(&["d"], 3), -1),
        (0, 3)
    );
    // `uncompressed` opens a compressed batch.
    spindle_cli_ok(
        brokers,
        &[
            "topic",
            "alter-config",
            "squeezed",
            "--set",
            "compression.type=uncompressed",
        ],
    );
    assert_eq!(
        produce_records(&mut client, "squeezed", 0, batch(&["e", "f"], 2), -1),
        (0, 4)
    );
    let strings = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    assert_eq!(
        stored_batches(&mut client, "squeezed"),
        vec![
            (4, strings(&["a", "b"])),
            (4, strings(&["c"])),
            (3, strings(&["d"])),
            (0, strings(&["e", "f"])),
        ]
    );

    // A bad codec name is INVALID_CONFIG, and the topic keeps its setting.
    let (code, stdout, _) = spindle_cli(
        brokers,
        &[
            "topic",
            "alter-config",
            "squeezed",
            "--set",
            "compression.type=brotli",
        ],
    );
    assert_eq!(code, 1, "brotli is refused");
    assert!(stdout.contains("InvalidConfig"), "{stdout}");

    // librdkafka reads every stored codec back.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "topic-compression-unused")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("squeezed", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < 6 && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message.expect("a record");
            seen.push(String::from_utf8(message.payload().unwrap().to_vec()).unwrap());
        }
    }
    assert_eq!(seen, strings(&["a", "b", "c", "d", "e", "f"]));
    drop(consumer);
    broker.stop();
}
