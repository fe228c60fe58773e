package io.spindle.interop;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.Stores;

/**
 * Kafka Streams' word count, the application every Streams user starts with, at
 * at_least_once: lines in, a count per word out, through a repartition topic and a
 * compacted changelog topic that Streams creates itself. The check waits until the output
 * holds every word's final count, then checks that the changelog topic is compacted.
 */
final class WordCount {
    private static final List<String> WORDS = List.of("kafka", "spindle", "stream", "log", "broker", "offset");

    static void run(String bootstrap, String run) throws Exception {
        String input = "words-in-" + run;
        String output = "words-out-" + run;
        String application = "wordcount-" + run;
        Interop.createTopic(input, 2);
        Interop.createTopic(output, 2);

        // 300 lines; word i of the vocabulary appears (i + 1) times in every tenth line.
        Map<String, Long> expected = new TreeMap<>();
        try (KafkaProducer<String, String> producer = Interop.producer("none")) {
            for (int line = 0; line < 300; line++) {
                StringBuilder text = new StringBuilder();
                for (int i = 0; i < WORDS.size(); i++) {
                    if ((line + i) % 10 == 0) {
                        for (int n = 0; n <= i; n++) {
                            text.append(WORDS.get(i).toUpperCase()).append(' ');
                            expected.merge(WORDS.get(i), 1L, Long::sum);
                        }
                    }
                }
                producer.send(new ProducerRecord<>(input, "line-" + line, text.toString().trim()))
                        .get(20, TimeUnit.SECONDS);
            }
        }

        StreamsBuilder builder = new StreamsBuilder();
        builder.<String, String>stream(input)
                .flatMapValues(text -> Arrays.asList(text.toLowerCase().split("\\W+")))
                .filter((key, word) -> !word.isEmpty())
                .groupBy((key, word) -> word)
                .count(Materialized.as(Stores.inMemoryKeyValueStore("counts")))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, application);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.String().getClass());
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.String().getClass());
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 500);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.STATE_DIR_CONFIG, Files.createTempDirectory("wordcount").toString());
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");

        Map<String, Long> counts = new HashMap<>();
        try (KafkaStreams streams = new KafkaStreams(builder.build(), props)) {
            streams.start();
            try (KafkaConsumer<String, Long> consumer = new KafkaConsumer<>(
                    consumerProps(bootstrap), new StringDeserializer(), new LongDeserializer())) {
                consumer.subscribe(List.of(output));
                long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
                while (!counts.equals(expected) && System.nanoTime() < deadline) {
                    for (ConsumerRecord<String, Long> record : consumer.poll(Duration.ofMillis(500))) {
                        counts.put(record.key(), record.value());
                    }
                    Interop.require(streams.state() != KafkaStreams.State.ERROR, "streams failed");
                }
            }
            Interop.require(counts.equals(expected), "counts " + counts + ", expected " + expected);

            // Streams made its changelog topic compacted, and the broker kept it so.
            String changelog = application + "-counts-changelog";
            try (Admin admin = Interop.admin()) {
                ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, changelog);
                Config config = admin.describeConfigs(List.of(resource)).all()
                        .get(20, TimeUnit.SECONDS).get(resource);
                String policy = config.get("cleanup.policy").value();
                Interop.require(policy.equals("compact"), changelog + " has cleanup.policy " + policy);
            }
            streams.close(Duration.ofSeconds(20));
        }
    }

    private static Properties consumerProps(String bootstrap) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, "wordcount-reader-" + System.nanoTime());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return props;
    }
}
