"""librdkafka (Debian's python3-confluent-kafka) meets OFFSET_OUT_OF_RANGE in a Fetch
answer: with auto.offset.reset=earliest it starts over and reads every message; with
auto.offset.reset=error it reports the reset error to the application. Either way it saw
the partition's error, which a response it could not parse would have hidden. The broker
under test advertises one Fetch version at most, so this runs at each version.

Prints "OK" and exits 0 when both hold.

Usage: python3 confluent_kafka_fetch_errors.py BOOTSTRAP TOPIC
"""
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic = sys.argv[1], sys.argv[2]
count = 20
admin = AdminClient({"bootstrap.servers": bootstrap})
for _, future in admin.create_topics([NewTopic(topic, 1, 1)]).items():
    future.result(timeout=10)
producer = Producer({"bootstrap.servers": bootstrap})
for i in range(count):
    producer.produce(topic, value=f"m{i}".encode())
assert producer.flush(10) == 0, "messages left undelivered"


def consumer(reset):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"fetch-errors-{reset}",
                  "auto.offset.reset": reset, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, count + 500)])
    return c


reader = consumer("earliest")
values = 0
deadline = time.time() + 15
while values < count and time.time() < deadline:
    message = reader.poll(0.5)
    if message is not None and message.error() is None:
        values += 1
reader.close()
if values != count:
    sys.exit(f"auto.offset.reset=earliest: read {values} of {count}")

strict = consumer("error")
seen = None
deadline = time.time() + 15
while seen is None and time.time() < deadline:
    message = strict.poll(0.5)
    if message is not None and message.error() is not None:
        seen = message.error()
strict.close()
if seen is None or seen.code() != KafkaError._AUTO_OFFSET_RESET:
    sys.exit(f"auto.offset.reset=error: expected the reset error, got {seen}")
print("OK")
