//! `message.timestamp.before.max.ms` and `message.timestamp.after.max.ms` (issue 16): under
//! CreateTime, a batch holding a record older or newer than the topic allows is refused
//! with INVALID_TIMESTAMP, as Kafka 4 refuses it (its default: no bound into the past, one
//! hour into the future). The bounds are live configs, and a LogAppendTime topic ignores
//! them, as Kafka does.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use crate::common::{Broker, spindle_cli_ok, temp_dir};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Keeps each delivery's outcome: `None` acknowledged, or the broker's error code.
#[derive(Default)]
struct Deliveries(Mutex<Vec<Option<RDKafkaErrorCode>>>);

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let outcome = match result {
            Ok(_) => None,
            Err((KafkaError::MessageProduction(code), _)) => Some(*code),
            Err((other, _)) => panic!("{other:?}"),
        };
        self.0.lock().unwrap().push(outcome);
    }
}

/// Produces one record stamped `timestamp` and returns the broker's error code, if any.
fn produce(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    timestamp: i64,
) -> Option<RDKafkaErrorCode> {
    producer
        .send(
            BaseRecord::<str, str>::to(topic)
                .partition(0)
                .payload("v")
                .timestamp(timestamp),
        )
        .map_err(|(e, _)| e)
        .expect("queued");
    producer.flush(Duration::from_secs(10)).expect("delivered");
    producer
        .context()
        .0
        .lock()
        .unwrap()
        .pop()
        .expect("a delivery report")
}

#[test]
fn records_outside_the_topics_timestamp_bounds_are_refused() {
    let dir = temp_dir("timestamp-bounds");
    let broker = Broker::start(dir.path(), &["--cores", "1"]);
    let brokers = broker.bootstrap.as_str();
    let hour_ms = 3_600_000;
    spindle_cli_ok(brokers, &["topic", "create", "open", "-p", "1"]);
    spindle_cli_ok(
        brokers,
        &[
            "topic",
            "create",
            "recent",
            "-p",
            "1",
            "-c",
            "message.timestamp.before.max.ms=60000",
        ],
    );
    let producer: BaseProducer<Deliveries> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        // One attempt, so the refusal comes back as it is.
        .set("enable.idempotence", "false")
        .set("retries", "0")
        .create_with_context(Deliveries::default())
        .expect("producer");

    // Kafka 4's defaults: the past is open, one hour into the future is the limit.
    assert_eq!(produce(&producer, "open", 1_000), None, "1970 is fine");
    assert_eq!(produce(&producer, "open", now_ms()), None);
    assert_eq!(
        produce(&producer, "open", now_ms() + 2 * hour_ms),
        Some(RDKafkaErrorCode::InvalidTimestamp),
        "two hours ahead"
    );
    // The topic's own bound into the past.
    assert_eq!(
        produce(&producer, "recent", now_ms() - 10 * 60_000),
        Some(RDKafkaErrorCode::InvalidTimestamp),
        "ten minutes old against a one-minute bound"
    );
    assert_eq!(produce(&producer, "recent", now_ms() - 1_000), None);

    // Live: widening the bound lets the same old record in.
    spindle_cli_ok(
        brokers,
        &[
            "topic",
            "alter-config",
            "recent",
            "--set",
            "message.timestamp.before.max.ms=3600000",
        ],
    );
    assert_eq!(produce(&producer, "recent", now_ms() - 10 * 60_000), None);
    // LogAppendTime ignores the producer's timestamp, and so the bounds.
    spindle_cli_ok(
        brokers,
        &[
            "topic",
            "alter-config",
            "open",
            "--set",
            "message.timestamp.type=LogAppendTime",
        ],
    );
    assert_eq!(produce(&producer, "open", now_ms() + 2 * hour_ms), None);

    // Only the accepted records were stored.
    let mut client = crate::common::RawClient::connect(brokers);
    assert_eq!(crate::common::list_offset(&mut client, "open", 0, -1).1, 3);
    assert_eq!(
        crate::common::list_offset(&mut client, "recent", 0, -1).1,
        2
    );
    drop(producer);
    broker.stop();
}
