"""What librdkafka (Debian's python3-confluent-kafka) sees when things go wrong.

(A consumer past the end of a partition is checked at every Fetch version by
confluent_kafka_fetch_errors.py.)

1. A transactional producer fails fast with a fatal error instead of retrying the
   coordinator lookup until its own timeout.
2. A consumer group whose members all left keeps protocol type "consumer".
3. Batches compressed by librdkafka with every codec pass the broker's record validation
   and read back whole.

Prints "OK" and exits 0 when all hold; exits non-zero with the reason otherwise.

Usage: python3 confluent_kafka_faults.py BOOTSTRAP TOPIC
"""
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": bootstrap})
for _, future in admin.create_topics([NewTopic(topic, 1, 1)]).items():
    future.result(timeout=10)

# 1. Transactions: a fatal error well before librdkafka's 60 s default timeout.
transactional = Producer({"bootstrap.servers": bootstrap, "transactional.id": "faults-txn"})
started = time.time()
try:
    transactional.init_transactions(30)
    sys.exit("init_transactions succeeded on a broker without transactions")
except KafkaException as e:
    error = e.args[0]
    elapsed = time.time() - started
    if elapsed > 10:
        sys.exit(f"init_transactions took {elapsed:.1f} s to fail: {error}")
    if not error.fatal():
        sys.exit(f"init_transactions failed with a non-fatal error: {error}")

# 2. A group that empties keeps its protocol type.
member = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-group",
                   "auto.offset.reset": "earliest"})
member.subscribe([topic])
deadline = time.time() + 20
while not member.assignment() and time.time() < deadline:
    member.poll(0.2)
if not member.assignment():
    sys.exit("the group member got no assignment")
member.close()
# Debian's client has the older ListGroups/DescribeGroups call.
groups = [g for g in admin.list_groups("faults-group", timeout=10) if g.id == "faults-group"]
if len(groups) != 1:
    sys.exit(f"the group is not listed: {groups}")
if groups[0].protocol_type != "consumer":
    sys.exit(f"an emptied consumer group reports protocol type {groups[0].protocol_type!r}")

# 3. Every codec librdkafka writes passes record validation and reads back.
for codec in ["gzip", "snappy", "lz4", "zstd"]:
    codec_topic = f"{topic}-{codec}"
    compressing = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                            "linger.ms": 20})
    errors = []
    for i in range(2000):
        compressing.produce(codec_topic, key=f"k{i % 7}".encode(),
                            value=f"{codec} message {i} ".encode() * 3,
                            headers=[("h", b"v")] if i % 3 == 0 else None,
                            on_delivery=lambda error, _: error and errors.append(error))
    compressing.flush(20)
    if errors:
        sys.exit(f"{codec}: {len(errors)} deliveries failed, first {errors[0]}")
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"faults-{codec}",
                       "auto.offset.reset": "earliest"})
    reader.subscribe([codec_topic])
    seen = 0
    deadline = time.time() + 30
    while seen < 2000 and time.time() < deadline:
        message = reader.poll(0.5)
        if message is not None and message.error() is None:
            seen += 1
    reader.close()
    if seen != 2000:
        sys.exit(f"{codec}: read back {seen} of 2000")
print("OK")
