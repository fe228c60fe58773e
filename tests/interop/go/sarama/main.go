// Command sarama runs IBM sarama, the other widely used Go Kafka client, against a broker:
// a SyncProducer with its default (hash) partitioner and each compression codec, a
// consumer group that commits and is resumed by a later member, and ClusterAdmin calls.
// It prints one line per check, "PASS name" or "FAIL name: error", then "DONE". Every
// check is bounded in time. Usage: sarama BOOTSTRAP (tests/it/go_clients.rs runs it).
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

var bootstrap string

func config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V3_6_0_0
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Net.DialTimeout = 10 * time.Second
	c.Admin.Timeout = 20 * time.Second
	return c
}

func check(name string, run func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- run(ctx) }()
	var err error
	select {
	case err = <-result:
	case <-ctx.Done():
		err = fmt.Errorf("timed out: %w", ctx.Err())
	}
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("PASS %s\n", name)
}

func createTopic(topic string, partitions int32) error {
	admin, err := sarama.NewClusterAdmin([]string{bootstrap}, config())
	if err != nil {
		return err
	}
	defer admin.Close()
	return admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
}

func produce(topic string, codec sarama.CompressionCodec, from, count int) error {
	c := config()
	c.Producer.Compression = codec
	producer, err := sarama.NewSyncProducer([]string{bootstrap}, c)
	if err != nil {
		return err
	}
	defer producer.Close()
	var messages []*sarama.ProducerMessage
	for i := from; i < from+count; i++ {
		messages = append(messages, &sarama.ProducerMessage{Topic: topic,
			Key: sarama.StringEncoder("key-" + strconv.Itoa(i)), Value: sarama.StringEncoder("value-" + strconv.Itoa(i))})
	}
	return producer.SendMessages(messages)
}

// member consumes in group `group` until `count` messages arrived, marks and commits them.
type member struct {
	mu     sync.Mutex
	values []string
	count  int
	done   chan struct{}
	once   sync.Once
}

func (m *member) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (m *member) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (m *member) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for message := range claim.Messages() {
		session.MarkMessage(message, "")
		m.mu.Lock()
		m.values = append(m.values, string(message.Value))
		reached := len(m.values) >= m.count
		m.mu.Unlock()
		if reached {
			session.Commit()
			m.once.Do(func() { close(m.done) })
		}
	}
	return nil
}

func consumeInGroup(ctx context.Context, group, topic string, count int) ([]string, error) {
	consumer, err := sarama.NewConsumerGroup([]string{bootstrap}, group, config())
	if err != nil {
		return nil, err
	}
	m := &member{count: count, done: make(chan struct{})}
	runCtx, stop := context.WithCancel(ctx)
	finished := make(chan error, 1)
	go func() {
		for runCtx.Err() == nil {
			if err := consumer.Consume(runCtx, []string{topic}, m); err != nil {
				finished <- err
				return
			}
		}
		finished <- nil
	}()
	select {
	case <-m.done:
	case <-ctx.Done():
	case err := <-finished:
		if err != nil {
			stop()
			consumer.Close()
			return nil, err
		}
	}
	stop()
	if err := consumer.Close(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.values) < count {
		return m.values, fmt.Errorf("consumed %d of %d", len(m.values), count)
	}
	return m.values, nil
}

func main() {
	bootstrap = os.Args[1]
	run := strconv.FormatInt(time.Now().UnixNano(), 10)
	codecs := []struct {
		name  string
		codec sarama.CompressionCodec
	}{{"none", sarama.CompressionNone}, {"gzip", sarama.CompressionGZIP}, {"snappy", sarama.CompressionSnappy},
		{"lz4", sarama.CompressionLZ4}, {"zstd", sarama.CompressionZSTD}}
	for _, c := range codecs {
		topic := "sarama-" + c.name + "-" + run
		codec := c.codec
		check("produce-consume-"+c.name, func(ctx context.Context) error {
			if err := createTopic(topic, 3); err != nil {
				return err
			}
			if err := produce(topic, codec, 0, 600); err != nil {
				return err
			}
			values, err := consumeInGroup(ctx, "g-"+topic, topic, 600)
			if err != nil {
				return err
			}
			seen := map[string]bool{}
			for _, v := range values {
				seen[v] = true
			}
			if len(seen) != 600 {
				return fmt.Errorf("%d distinct of 600", len(seen))
			}
			return nil
		})
	}
	check("group-commit-resume", func(ctx context.Context) error {
		topic, group := "sarama-group-"+run, "sarama-group-"+run
		if err := createTopic(topic, 4); err != nil {
			return err
		}
		if err := produce(topic, sarama.CompressionNone, 0, 400); err != nil {
			return err
		}
		if _, err := consumeInGroup(ctx, group, topic, 400); err != nil {
			return err
		}
		if err := produce(topic, sarama.CompressionNone, 400, 100); err != nil {
			return err
		}
		values, err := consumeInGroup(ctx, group, topic, 100)
		if err != nil {
			return err
		}
		for _, v := range values {
			if n, _ := strconv.Atoi(v[len("value-"):]); n < 400 {
				return fmt.Errorf("replayed %s after the commit", v)
			}
		}
		return nil
	})
	admin, err := sarama.NewClusterAdmin([]string{bootstrap}, config())
	if err != nil {
		fmt.Printf("FAIL admin: %v\n", err)
	} else {
		topic := "sarama-admin-" + run
		check("admin-CreateTopic", func(context.Context) error {
			return admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false)
		})
		check("admin-ListTopics", func(context.Context) error {
			topics, err := admin.ListTopics()
			if err != nil {
				return err
			}
			if topics[topic].NumPartitions != 2 {
				return fmt.Errorf("partitions: %d", topics[topic].NumPartitions)
			}
			return nil
		})
		check("admin-DescribeTopics", func(context.Context) error {
			meta, err := admin.DescribeTopics([]string{topic})
			if err != nil {
				return err
			}
			if len(meta) != 1 || len(meta[0].Partitions) != 2 {
				return fmt.Errorf("metadata %v", meta)
			}
			return nil
		})
		check("admin-DescribeCluster", func(context.Context) error {
			brokers, _, err := admin.DescribeCluster()
			if err == nil && len(brokers) == 0 {
				err = fmt.Errorf("no brokers")
			}
			return err
		})
		check("admin-CreatePartitions", func(context.Context) error {
			return admin.CreatePartitions(topic, 3, nil, false)
		})
		check("admin-DescribeConfig", func(context.Context) error {
			_, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
			return err
		})
		check("admin-ListConsumerGroups", func(context.Context) error {
			_, err := admin.ListConsumerGroups()
			return err
		})
		check("admin-ListConsumerGroupOffsets", func(context.Context) error {
			_, err := admin.ListConsumerGroupOffsets("sarama-group-"+run, nil)
			return err
		})
		check("admin-DeleteTopic", func(context.Context) error {
			return admin.DeleteTopic(topic)
		})
		admin.Close()
	}
	fmt.Println("DONE")
}
