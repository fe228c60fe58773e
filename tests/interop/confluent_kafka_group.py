"""Interop: a consumer group driven by Debian's python3-confluent-kafka (librdkafka 2.0.2).

Two consumers subscribe with group.id, split the partitions between them, read every
message exactly once and commit; a third consumer of the same group started afterwards
finds nothing left to read (it starts at the committed offsets).

Usage: python3 confluent_kafka_group.py BOOTSTRAP TOPIC
"""
import sys
import threading
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic = sys.argv[1], sys.argv[2]
count = 4000
group = "my-group"

admin = AdminClient({"bootstrap.servers": bootstrap})
for _, future in admin.create_topics([NewTopic(topic, 4, 1)]).items():
    future.result(timeout=10)

producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
for i in range(count):
    producer.produce(topic, key=str(i % 31), value=str(i))
    producer.poll(0)
assert producer.flush(30) == 0


def consumer(name):
    return Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "client.id": name,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 300,
    })


read = {"a": [], "b": []}
assigned = {"a": set(), "b": set()}
stop = threading.Event()


def run(name):
    c = consumer(name)
    c.subscribe([topic], on_assign=lambda _, parts: assigned[name].update(p.partition for p in parts))
    while not stop.is_set():
        m = c.poll(0.1)
        if m is None:
            continue
        assert m.error() is None, m.error()
        read[name].append((m.partition(), m.value().decode()))
        c.commit(message=m, asynchronous=False)
    c.close()


threads = [threading.Thread(target=run, args=(n,)) for n in read]
for t in threads:
    t.start()
deadline = time.time() + 60
while sum(len(v) for v in read.values()) < count and time.time() < deadline:
    time.sleep(0.1)
time.sleep(0.5)
stop.set()
for t in threads:
    t.join()

values = [v for name in read for _, v in read[name]]
assert len(values) == count, f"read {len(values)} of {count}"
assert len(set(values)) == count, "duplicates"
assert read["a"] and read["b"], "both members got a share"
parts_a = {p for p, _ in read["a"]}
parts_b = {p for p, _ in read["b"]}
assert not (parts_a & parts_b), f"shares overlap: {parts_a} {parts_b}"

late = consumer("c")
late.subscribe([topic])
leftovers = []
end = time.time() + 8
while time.time() < end:
    m = late.poll(0.2)
    if m is not None and m.error() is None:
        leftovers.append(m.value())
late.close()
assert not leftovers, f"read again after commit: {leftovers[:5]}"
print(f"OK {count} messages, shares {sorted(parts_a)} and {sorted(parts_b)}")
