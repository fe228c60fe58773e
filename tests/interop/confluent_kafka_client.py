"""Interop check with Debian's python3-confluent-kafka (librdkafka 2.0.2).

Creates a topic through the admin API, produces keyed messages with acks=all, reads them
back from the earliest offset, and checks count, uniqueness, per-partition order and that a
key always maps to one partition. Exits non-zero on any mismatch.

Usage: python3 confluent_kafka_client.py BOOTSTRAP TOPIC
"""
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic = sys.argv[1], sys.argv[2]
count = 20000
partitions = 4

admin = AdminClient({"bootstrap.servers": bootstrap})
for name, future in admin.create_topics([NewTopic(topic, partitions, 1)]).items():
    future.result(timeout=10)

delivered = {}
failed = []


def on_delivery(error, message):
    if error is not None:
        failed.append(error)
    else:
        delivered[message.value().decode()] = (message.partition(), message.offset())


producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
for i in range(count):
    while True:
        try:
            producer.produce(topic, key=f"key-{i % 97}", value=str(i), on_delivery=on_delivery)
            break
        except BufferError:
            producer.poll(0.01)
    producer.poll(0)
assert producer.flush(30) == 0, "messages left unsent"
assert not failed, failed[:3]
assert len(delivered) == count, len(delivered)

consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": "interop-unused",
    "enable.auto.commit": False,
})
consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
seen = {}
next_offset = {p: 0 for p in range(partitions)}
key_partition = {}
deadline = time.time() + 60
while len(seen) < count and time.time() < deadline:
    message = consumer.poll(0.2)
    if message is None:
        continue
    assert message.error() is None, message.error()
    partition, offset = message.partition(), message.offset()
    assert offset == next_offset[partition], (partition, offset, next_offset[partition])
    next_offset[partition] += 1
    key = message.key().decode()
    assert key_partition.setdefault(key, partition) == partition, key
    value = message.value().decode()
    assert value not in seen, f"duplicate {value}"
    seen[value] = (partition, offset)
consumer.close()
assert len(seen) == count, f"consumed {len(seen)} of {count}"
assert seen == delivered, "consumed positions differ from the acknowledged ones"
print(f"OK {count} messages over {partitions} partitions")
