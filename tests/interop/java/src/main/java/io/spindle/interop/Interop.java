package io.spindle.interop;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ElectionNotNeededException;
import org.apache.kafka.common.errors.InvalidRequestException;
import org.apache.kafka.common.errors.NoReassignmentInProgressException;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.quota.ClientQuotaFilterComponent;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Kafka's Java client (the version in pom.xml) against a broker: the default producer with
 * every compression codec, classic consumer groups (eager and cooperative-sticky), and the
 * AdminClient calls people script with. Prints one line per check: "PASS name", or
 * "FAIL name: what happened". Every call is bounded in time, so an unserved call shows as a
 * failure with its error, never a hang. Usage: Interop BOOTSTRAP
 */
public final class Interop {
    private static final Duration CALL = Duration.ofSeconds(20);
    private static String bootstrap;

    interface Check {
        void run() throws Exception;
    }

    public static void main(String[] args) {
        bootstrap = args[0];
        String run = Long.toString(System.nanoTime());
        for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
            check("produce-consume-" + codec, () -> produceAndConsume("compression-" + codec + "-" + run, codec));
        }
        check("group-eager", () -> group("group-eager-" + run,
                "org.apache.kafka.clients.consumer.RangeAssignor"));
        check("group-cooperative-sticky", () -> group("group-coop-" + run,
                "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"));
        check("group-static-membership", () -> staticMembership("group-static-" + run));
        check("streams-word-count", () -> WordCount.run(bootstrap, run));
        admin(run);
        System.out.println("DONE");
    }

    static void check(String name, Check check) {
        try {
            check.run();
            System.out.println("PASS " + name);
        } catch (Throwable e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            System.out.println("FAIL " + name + ": " + cause.getClass().getSimpleName() + ": " + cause.getMessage());
        }
        System.out.flush();
    }

    static void require(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }

    static Admin admin() {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) CALL.toMillis());
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        return Admin.create(props);
    }

    static void createTopic(String topic, int partitions) throws Exception {
        try (Admin admin = admin()) {
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1)))
                    .all().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    static KafkaProducer<String, String> producer(String codec) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 20_000);
        return new KafkaProducer<>(props, new StringSerializer(), new StringSerializer());
    }

    static KafkaConsumer<String, String> consumer(String group, Map<String, Object> extra) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.putAll(extra);
        return new KafkaConsumer<>(props, new StringDeserializer(), new StringDeserializer());
    }

    /** Sends `count` keyed records (idempotent, acks=all: the defaults) and waits for each ack. */
    static void produce(String topic, String codec, int from, int count) throws Exception {
        try (KafkaProducer<String, String> producer = producer(codec)) {
            List<java.util.concurrent.Future<?>> acks = new ArrayList<>();
            for (int i = from; i < from + count; i++) {
                acks.add(producer.send(new ProducerRecord<>(topic, "key-" + i, "value-" + i)));
            }
            for (var ack : acks) {
                ack.get(CALL.toMillis(), TimeUnit.MILLISECONDS);
            }
        }
    }

    /** Polls until `count` records arrived or the time is up; returns their values. */
    static List<String> poll(KafkaConsumer<String, String> consumer, int count) {
        List<String> values = new ArrayList<>();
        long deadline = System.nanoTime() + CALL.toNanos();
        while (values.size() < count && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(200))) {
                values.add(record.value());
            }
        }
        return values;
    }

    static void produceAndConsume(String topic, String codec) throws Exception {
        createTopic(topic, 3);
        produce(topic, codec, 0, 1000);
        try (KafkaConsumer<String, String> consumer = consumer(null, Map.of())) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (int p = 0; p < 3; p++) {
                partitions.add(new TopicPartition(topic, p));
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            List<String> values = poll(consumer, 1000);
            require(values.size() == 1000, "consumed " + values.size() + " of 1000");
            require(new HashSet<>(values).size() == 1000, "duplicates among " + values.size());
        }
    }

    /**
     * Two members share a 4-partition topic; they commit and leave; a member that joins
     * later gets only what was produced after the commits.
     */
    static void group(String topic, String assignor) throws Exception {
        createTopic(topic, 4);
        produce(topic, "none", 0, 400);
        String group = "g-" + topic;
        Map<String, Object> extra = Map.of(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
        try (KafkaConsumer<String, String> a = consumer(group, extra);
                KafkaConsumer<String, String> b = consumer(group, extra)) {
            a.subscribe(List.of(topic));
            b.subscribe(List.of(topic));
            Set<String> seen = new HashSet<>();
            long deadline = System.nanoTime() + CALL.toNanos();
            while ((seen.size() < 400 || a.assignment().isEmpty() || b.assignment().isEmpty())
                    && System.nanoTime() < deadline) {
                for (var record : a.poll(Duration.ofMillis(100))) {
                    seen.add(record.value());
                }
                for (var record : b.poll(Duration.ofMillis(100))) {
                    seen.add(record.value());
                }
            }
            require(seen.size() == 400, "the group consumed " + seen.size() + " of 400");
            require(!a.assignment().isEmpty() && !b.assignment().isEmpty(),
                    "both members hold partitions: " + a.assignment() + " / " + b.assignment());
            require(a.assignment().size() + b.assignment().size() == 4, "4 partitions shared");
            a.commitSync(CALL);
            b.commitSync(CALL);
        }
        produce(topic, "none", 400, 100);
        try (KafkaConsumer<String, String> c = consumer(group, extra)) {
            c.subscribe(List.of(topic));
            List<String> values = poll(c, 100);
            for (int i = 0; i < 10; i++) {
                for (var record : c.poll(Duration.ofMillis(100))) {
                    values.add(record.value());
                }
            }
            require(values.size() == 100, "after the commits: " + values.size() + " records, want 100");
            for (String value : values) {
                require(Integer.parseInt(value.substring("value-".length())) >= 400, "replayed " + value);
            }
        }
    }

    /** Counts a member's rebalances: how often it was given partitions or lost them. */
    static final class Rebalances implements org.apache.kafka.clients.consumer.ConsumerRebalanceListener {
        int assigned;
        int revoked;

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            assigned++;
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            if (!partitions.isEmpty()) {
                revoked++;
            }
        }
    }

    /**
     * Static membership (KIP-345): two members with a group.instance.id share a topic. One
     * is closed (a static member sends no LeaveGroup) and restarted under the same instance
     * id within its session timeout: it gets its partitions back from the committed offsets,
     * and the other member sees no rebalance at all.
     */
    static void staticMembership(String topic) throws Exception {
        createTopic(topic, 4);
        produce(topic, "none", 0, 400);
        String group = "g-" + topic;
        Map<String, Object> asA = Map.of(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "member-a",
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 30_000);
        Map<String, Object> asB = Map.of(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "member-b",
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 30_000);
        Rebalances seenByB = new Rebalances();
        try (KafkaConsumer<String, String> b = consumer(group, asB)) {
            b.subscribe(List.of(topic), seenByB);
            Set<TopicPartition> assignedToA;
            Set<String> seen = new HashSet<>();
            try (KafkaConsumer<String, String> a = consumer(group, asA)) {
                a.subscribe(List.of(topic));
                long deadline = System.nanoTime() + CALL.toNanos();
                while ((seen.size() < 400 || a.assignment().isEmpty() || b.assignment().isEmpty()
                        || a.assignment().size() + b.assignment().size() != 4)
                        && System.nanoTime() < deadline) {
                    for (var record : a.poll(Duration.ofMillis(100))) {
                        seen.add(record.value());
                    }
                    for (var record : b.poll(Duration.ofMillis(100))) {
                        seen.add(record.value());
                    }
                }
                require(seen.size() == 400, "the group consumed " + seen.size() + " of 400");
                require(!a.assignment().isEmpty() && !b.assignment().isEmpty()
                        && a.assignment().size() + b.assignment().size() == 4,
                        "both members share 4 partitions: " + a.assignment() + " / " + b.assignment());
                assignedToA = new HashSet<>(a.assignment());
                a.commitSync(CALL);
                b.commitSync(CALL);
            }
            int assignedBefore = seenByB.assigned;
            int revokedBefore = seenByB.revoked;
            produce(topic, "none", 400, 100);
            try (KafkaConsumer<String, String> a = consumer(group, asA)) {
                a.subscribe(List.of(topic));
                Set<String> after = new HashSet<>();
                long deadline = System.nanoTime() + CALL.toNanos();
                while (after.size() < 100 && System.nanoTime() < deadline) {
                    for (var record : a.poll(Duration.ofMillis(100))) {
                        require(Integer.parseInt(record.value().substring("value-".length())) >= 400,
                                "the restarted member replayed " + record.value());
                        after.add(record.value());
                    }
                    for (var record : b.poll(Duration.ofMillis(100))) {
                        after.add(record.value());
                    }
                }
                require(after.size() == 100, "after the restart: " + after.size() + " of 100");
                require(a.assignment().equals(assignedToA),
                        "the restarted member holds " + a.assignment() + ", it held " + assignedToA);
                require(seenByB.assigned == assignedBefore && seenByB.revoked == revokedBefore,
                        "the other member rebalanced: assigned " + assignedBefore + " -> " + seenByB.assigned
                                + ", revoked " + revokedBefore + " -> " + seenByB.revoked);
            }
        }
    }

    static void admin(String run) {
        String topic = "admin-" + run;
        String group = "admin-group-" + run;
        TopicPartition tp0 = new TopicPartition(topic, 0);
        try (Admin admin = admin()) {
            check("admin-createTopics", () -> {
                createTopic(topic, 2);
                produce(topic, "none", 0, 50);
            });
            check("admin-describeTopics", () -> {
                var description = admin.describeTopics(List.of(topic)).allTopicNames()
                        .get(CALL.toMillis(), TimeUnit.MILLISECONDS).get(topic);
                require(description.partitions().size() == 2, "partitions: " + description.partitions().size());
            });
            check("admin-describeCluster", () -> {
                var nodes = admin.describeCluster().nodes().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                require(!nodes.isEmpty(), "no nodes");
            });
            Map<String, OffsetSpec> specs = Map.of("earliest", OffsetSpec.earliest(), "latest",
                    OffsetSpec.latest(), "by-timestamp", OffsetSpec.forTimestamp(0), "max-timestamp",
                    OffsetSpec.maxTimestamp());
            for (var spec : specs.entrySet()) {
                check("admin-listOffsets-" + spec.getKey(), () -> {
                    var info = admin.listOffsets(Map.of(tp0, spec.getValue())).partitionResult(tp0)
                            .get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                    require(info.offset() >= 0, "offset " + info.offset());
                });
            }
            check("admin-alterConsumerGroupOffsets", () -> admin.alterConsumerGroupOffsets(group,
                    Map.of(tp0, new OffsetAndMetadata(5))).all().get(CALL.toMillis(), TimeUnit.MILLISECONDS));
            check("admin-listConsumerGroupOffsets", () -> {
                var offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata()
                        .get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                require(offsets.get(tp0) != null && offsets.get(tp0).offset() == 5, "offsets " + offsets);
            });
            check("admin-listConsumerGroups", () -> {
                Collection<?> groups = admin.listConsumerGroups().all().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                require(groups.stream().anyMatch(g -> g.toString().contains(group)), "groups " + groups);
            });
            check("admin-describeConsumerGroups", () -> admin.describeConsumerGroups(List.of(group))
                    .all().get(CALL.toMillis(), TimeUnit.MILLISECONDS));
            check("admin-deleteConsumerGroupOffsets", () -> admin.deleteConsumerGroupOffsets(group, Set.of(tp0))
                    .all().get(CALL.toMillis(), TimeUnit.MILLISECONDS));
            check("admin-describeConfigs", () -> {
                var configs = admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, topic)))
                        .all().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                require(!configs.isEmpty(), "no configs");
            });
            check("admin-incrementalAlterConfigs", () -> {
                ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                admin.incrementalAlterConfigs(Map.of(resource, List.of(
                        new AlterConfigOp(new ConfigEntry("retention.ms", "86400000"), AlterConfigOp.OpType.SET),
                        new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND))))
                        .all().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                var config = admin.describeConfigs(List.of(resource)).all()
                        .get(CALL.toMillis(), TimeUnit.MILLISECONDS).get(resource);
                require(config.get("retention.ms").value().equals("86400000"), "retention.ms " + config.get("retention.ms"));
                require(config.get("cleanup.policy").value().equals("delete,compact"),
                        "cleanup.policy " + config.get("cleanup.policy"));
            });
            check("admin-brokerConfigs", () -> {
                // kafka-configs --entity-type brokers: the cluster-wide default, then one
                // broker's own value, each described with its source; a start-time setting
                // refused; then both removed again.
                String id = admin.describeCluster().nodes().get(CALL.toMillis(), TimeUnit.MILLISECONDS)
                        .iterator().next().idString();
                ConfigResource all = new ConfigResource(ConfigResource.Type.BROKER, "");
                ConfigResource one = new ConfigResource(ConfigResource.Type.BROKER, id);
                ConfigResource topicResource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                admin.incrementalAlterConfigs(Map.of(all, List.of(new AlterConfigOp(
                        new ConfigEntry("log.roll.ms", "3600000"), AlterConfigOp.OpType.SET))))
                        .all().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                var roll = admin.describeConfigs(List.of(one, topicResource)).all()
                        .get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                ConfigEntry brokerRoll = roll.get(one).get("log.roll.ms");
                require(brokerRoll.value().equals("3600000")
                        && brokerRoll.source() == ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
                        "broker log.roll.ms " + brokerRoll);
                ConfigEntry topicRoll = roll.get(topicResource).get("segment.ms");
                require(topicRoll.value().equals("3600000")
                        && topicRoll.source() == ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
                        "topic segment.ms " + topicRoll);
                // kafka-configs --describe --all asks for synonyms: where else it is set.
                var withSynonyms = admin.describeConfigs(List.of(topicResource),
                                new DescribeConfigsOptions().includeSynonyms(true)).all()
                        .get(CALL.toMillis(), TimeUnit.MILLISECONDS).get(topicResource).get("segment.ms");
                var first = withSynonyms.synonyms().get(0);
                require(first.name().equals("log.roll.ms") && first.value().equals("3600000")
                        && first.source() == ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
                        "segment.ms synonyms " + withSynonyms.synonyms());
                admin.incrementalAlterConfigs(Map.of(one, List.of(new AlterConfigOp(
                        new ConfigEntry("log.roll.ms", "7200000"), AlterConfigOp.OpType.SET))))
                        .all().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                ConfigEntry own = admin.describeConfigs(List.of(one)).all()
                        .get(CALL.toMillis(), TimeUnit.MILLISECONDS).get(one).get("log.roll.ms");
                require(own.value().equals("7200000")
                        && own.source() == ConfigEntry.ConfigSource.DYNAMIC_BROKER_CONFIG,
                        "own log.roll.ms " + own);
                try {
                    admin.incrementalAlterConfigs(Map.of(all, List.of(new AlterConfigOp(
                            new ConfigEntry("num.partitions", "5"), AlterConfigOp.OpType.SET))))
                            .all().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                    require(false, "num.partitions changed while running");
                } catch (ExecutionException e) {
                    require(e.getCause() instanceof InvalidRequestException, "num.partitions: " + e.getCause());
                }
                for (ConfigResource resource : List.of(one, all)) {
                    admin.incrementalAlterConfigs(Map.of(resource, List.of(new AlterConfigOp(
                            new ConfigEntry("log.roll.ms", null), AlterConfigOp.OpType.DELETE))))
                            .all().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                }
            });
            check("admin-deleteRecords", () -> {
                long end = admin.listOffsets(Map.of(tp0, OffsetSpec.latest())).partitionResult(tp0)
                        .get(CALL.toMillis(), TimeUnit.MILLISECONDS).offset();
                require(end >= 2, "records in " + tp0 + ": " + end);
                long low = admin.deleteRecords(Map.of(tp0, RecordsToDelete.beforeOffset(end / 2)))
                        .lowWatermarks().get(tp0).get(CALL.toMillis(), TimeUnit.MILLISECONDS).lowWatermark();
                require(low == end / 2, "low watermark " + low + ", asked " + end / 2);
                long earliest = admin.listOffsets(Map.of(tp0, OffsetSpec.earliest())).partitionResult(tp0)
                        .get(CALL.toMillis(), TimeUnit.MILLISECONDS).offset();
                require(earliest == end / 2, "earliest " + earliest);
            });
            check("admin-clientQuotas", () -> {
                ClientQuotaEntity entity = new ClientQuotaEntity(
                        Map.of(ClientQuotaEntity.CLIENT_ID, "interop-" + run));
                admin.alterClientQuotas(List.of(new ClientQuotaAlteration(entity,
                        List.of(new ClientQuotaAlteration.Op("producer_byte_rate", 1048576.0)))))
                        .all().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                var quotas = admin.describeClientQuotas(ClientQuotaFilter.containsOnly(List.of(
                        ClientQuotaFilterComponent.ofEntity(ClientQuotaEntity.CLIENT_ID, "interop-" + run))))
                        .entities().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                Double rate = quotas.getOrDefault(entity, Map.of()).get("producer_byte_rate");
                require(rate != null && rate == 1048576.0, "quotas " + quotas);
            });
            check("admin-partitionReassignments", () -> {
                TopicPartition first = new TopicPartition(topic, 0);
                var listed = admin.listPartitionReassignments(Set.of(first)).reassignments()
                        .get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                require(listed.isEmpty(), "moves under way " + listed);
                try {
                    admin.alterPartitionReassignments(Map.of(first, Optional.empty())).all()
                            .get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                    require(false, "a cancel with nothing under way was accepted");
                } catch (ExecutionException e) {
                    require(e.getCause() instanceof NoReassignmentInProgressException,
                            "cancel: " + e.getCause());
                }
                // Its leader is live: nothing to elect, cleanly or not.
                var elected = admin.electLeaders(ElectionType.UNCLEAN, Set.of(first)).partitions()
                        .get(CALL.toMillis(), TimeUnit.MILLISECONDS);
                require(elected.get(first).filter(e -> e instanceof ElectionNotNeededException)
                        .isPresent(), "unclean election " + elected);
            });
            check("admin-createPartitions", () -> {
                Map<String, NewPartitions> more = new HashMap<>();
                more.put(topic, NewPartitions.increaseTo(3));
                admin.createPartitions(more).all().get(CALL.toMillis(), TimeUnit.MILLISECONDS);
            });
            check("admin-deleteTopics", () -> admin.deleteTopics(List.of(topic)).all()
                    .get(CALL.toMillis(), TimeUnit.MILLISECONDS));
        }
        check("group-protocol-consumer", () -> {
            String t = "kip848-" + run;
            createTopic(t, 1);
            try (KafkaConsumer<String, String> c = consumer("kip848-" + run,
                    Map.of(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer"))) {
                c.subscribe(List.of(t));
                c.poll(Duration.ofSeconds(5));
            }
        });
    }
}
