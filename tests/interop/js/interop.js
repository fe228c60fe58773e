// KafkaJS, the most used pure-JavaScript Kafka client, against a broker: admin calls, a
// gzip producer, a consumer group that commits and is resumed by a later member, and seek.
// Prints "PASS name" or "FAIL name: error" per check, then "DONE". Every check is bounded in
// time. Usage: node interop.js BOOTSTRAP (tests/it/js_client.rs runs it).
'use strict';
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const bootstrap = process.argv[2];
const run = String(Date.now());
const kafka = new Kafka({ clientId: 'spindle-interop', brokers: [bootstrap], logLevel: logLevel.NOTHING });

function within(ms, promise) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function check(name, body) {
  try {
    await within(30000, body());
    console.log(`PASS ${name}`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
  }
}

function require_(condition, what) {
  if (!condition) throw new Error(what);
}

async function produce(topic, from, count, compression) {
  const producer = kafka.producer();
  await producer.connect();
  try {
    const messages = [];
    for (let i = from; i < from + count; i++) messages.push({ key: `key-${i}`, value: `value-${i}` });
    await producer.send({ topic, messages, compression });
  } finally {
    await producer.disconnect();
  }
}

// Runs a group member until `count` messages arrived (or `stopAfter` ms); their values.
async function consumeInGroup(groupId, topic, count, { seekTo } = {}) {
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const values = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  await consumer.run({
    eachMessage: async ({ message }) => {
      values.push(message.value.toString());
      if (values.length >= count) done();
    },
  });
  if (seekTo !== undefined) consumer.seek({ topic, partition: 0, offset: String(seekTo) });
  try {
    await within(20000, finished);
  } finally {
    await consumer.disconnect();
  }
  return values;
}

async function main() {
  const admin = kafka.admin();
  await admin.connect();
  const topic = `kafkajs-${run}`;
  await check('admin-createTopics', async () => {
    const created = await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
    require_(created === true, `createTopics returned ${created}`);
  });
  await check('admin-fetchTopicMetadata', async () => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    require_(topics[0].partitions.length === 3, `partitions: ${topics[0].partitions.length}`);
  });
  await check('producer-gzip', () => produce(topic, 0, 300, CompressionTypes.GZIP));
  await check('admin-fetchTopicOffsets', async () => {
    const offsets = await admin.fetchTopicOffsets(topic);
    const total = offsets.reduce((sum, p) => sum + Number(p.high), 0);
    require_(total === 300, `high watermarks sum to ${total}`);
  });
  const group = `kafkajs-group-${run}`;
  await check('consumer-group-commit-resume', async () => {
    const first = await consumeInGroup(group, topic, 300);
    require_(new Set(first).size === 300, `first member got ${first.length} (${new Set(first).size} distinct)`);
    await produce(topic, 300, 30, CompressionTypes.None);
    const later = await consumeInGroup(group, topic, 30);
    const replayed = later.filter((v) => Number(v.slice('value-'.length)) < 300);
    require_(replayed.length === 0, `replayed after the commit: ${replayed.slice(0, 3)}`);
  });
  await check('admin-fetchOffsets', async () => {
    const [entry] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    const committed = entry.partitions.reduce((sum, p) => sum + Number(p.offset), 0);
    require_(committed === 330, `committed offsets sum to ${committed}`);
  });
  await check('consumer-seek', async () => {
    const single = `kafkajs-seek-${run}`;
    await admin.createTopics({ topics: [{ topic: single, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    await produce(single, 0, 50, CompressionTypes.None);
    const values = await consumeInGroup(`kafkajs-seek-${run}`, single, 10, { seekTo: 40 });
    require_(values[0] === 'value-40', `after seek to 40 the first value is ${values[0]}`);
  });
  await check('admin-listGroups', async () => {
    const { groups } = await admin.listGroups();
    require_(groups.some((g) => g.groupId === group), `groups: ${groups.map((g) => g.groupId)}`);
  });
  await check('admin-deleteTopics', () => admin.deleteTopics({ topics: [topic] }));
  await admin.disconnect();
  console.log('DONE');
}

main().catch((e) => { console.log(`FAIL main: ${e.message}`); process.exit(1); });
