// Command interop runs franz-go, a widely used Go Kafka client, against a broker: produce
// with its default partitioner and each compression codec, a consumer group that commits
// and is resumed by a later member, and kadm admin calls. It prints one line per check,
// "PASS name" or "FAIL name: error", then "DONE". Every call is bounded in time.
// Usage: interop BOOTSTRAP (tests/it/go_clients.rs runs it).
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var bootstrap string

func check(name string, run func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("PASS %s\n", name)
}

func client(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap)}, opts...)...)
}

func admin() (*kadm.Client, *kgo.Client, error) {
	c, err := client()
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(c), c, nil
}

func createTopic(ctx context.Context, topic string, partitions int32) error {
	adm, c, err := admin()
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err != nil {
		return err
	}
	return resp.Err
}

// produce sends count keyed records from `from` and waits for every ack.
func produce(ctx context.Context, topic string, codec kgo.CompressionCodec, from, count int) error {
	c, err := client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec))
	if err != nil {
		return err
	}
	defer c.Close()
	var records []*kgo.Record
	for i := from; i < from+count; i++ {
		records = append(records, &kgo.Record{Key: []byte("key-" + strconv.Itoa(i)), Value: []byte("value-" + strconv.Itoa(i))})
	}
	return c.ProduceSync(ctx, records...).FirstErr()
}

// consume polls until count records arrived; returns their values.
func consume(ctx context.Context, c *kgo.Client, count int) ([]string, error) {
	var values []string
	for len(values) < count {
		fetches := c.PollFetches(ctx)
		if ctx.Err() != nil {
			return values, fmt.Errorf("consumed %d of %d: %w", len(values), count, ctx.Err())
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return values, fmt.Errorf("fetch: %v", errs[0].Err)
		}
		fetches.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	return values, nil
}

func main() {
	bootstrap = os.Args[1]
	run := strconv.FormatInt(time.Now().UnixNano(), 10)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for _, name := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		codec := codecs[name]
		topic := "franz-" + name + "-" + run
		check("produce-consume-"+name, func(ctx context.Context) error {
			if err := createTopic(ctx, topic, 3); err != nil {
				return err
			}
			if err := produce(ctx, topic, codec, 0, 1000); err != nil {
				return err
			}
			c, err := client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				return err
			}
			defer c.Close()
			values, err := consume(ctx, c, 1000)
			if err != nil {
				return err
			}
			seen := map[string]bool{}
			for _, v := range values {
				seen[v] = true
			}
			if len(values) != 1000 || len(seen) != 1000 {
				return fmt.Errorf("%d records, %d distinct, want 1000", len(values), len(seen))
			}
			return nil
		})
	}
	check("group-commit-resume", func(ctx context.Context) error {
		topic, group := "franz-group-"+run, "franz-group-"+run
		if err := createTopic(ctx, topic, 4); err != nil {
			return err
		}
		if err := produce(ctx, topic, kgo.NoCompression(), 0, 400); err != nil {
			return err
		}
		member := func() (*kgo.Client, error) {
			return client(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		}
		c, err := member()
		if err != nil {
			return err
		}
		if _, err := consume(ctx, c, 400); err != nil {
			c.Close()
			return err
		}
		if err := c.CommitUncommittedOffsets(ctx); err != nil {
			c.Close()
			return err
		}
		c.Close() // leaves the group
		if err := produce(ctx, topic, kgo.NoCompression(), 400, 100); err != nil {
			return err
		}
		later, err := member()
		if err != nil {
			return err
		}
		defer later.Close()
		values, err := consume(ctx, later, 100)
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
	adm, c, err := admin()
	if err != nil {
		fmt.Printf("FAIL admin: %v\n", err)
	} else {
		topic := "franz-admin-" + run
		check("kadm-CreateTopic", func(ctx context.Context) error {
			if err := createTopic(ctx, topic, 2); err != nil {
				return err
			}
			return produce(ctx, topic, kgo.NoCompression(), 0, 20)
		})
		check("kadm-ListTopics", func(ctx context.Context) error {
			details, err := adm.ListTopics(ctx, topic)
			if err != nil {
				return err
			}
			if d := details[topic]; len(d.Partitions) != 2 {
				return fmt.Errorf("partitions: %d", len(d.Partitions))
			}
			return nil
		})
		check("kadm-BrokerMetadata", func(ctx context.Context) error {
			m, err := adm.BrokerMetadata(ctx)
			if err != nil {
				return err
			}
			if len(m.Brokers) == 0 {
				return fmt.Errorf("no brokers")
			}
			return nil
		})
		check("kadm-ListEndOffsets", func(ctx context.Context) error {
			offsets, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				return err
			}
			total := int64(0)
			offsets.Each(func(o kadm.ListedOffset) { total += o.Offset })
			if total != 20 {
				return fmt.Errorf("end offsets sum to %d, want 20", total)
			}
			return nil
		})
		check("kadm-CommitAndFetchOffsets", func(ctx context.Context) error {
			var offsets kadm.Offsets
			offsets.AddOffset(topic, 0, 3, -1)
			if _, err := adm.CommitOffsets(ctx, "franz-admin-group-"+run, offsets); err != nil {
				return err
			}
			fetched, err := adm.FetchOffsets(ctx, "franz-admin-group-"+run)
			if err != nil {
				return err
			}
			if o, ok := fetched.Lookup(topic, 0); !ok || o.At != 3 {
				return fmt.Errorf("fetched %v", fetched)
			}
			return nil
		})
		check("kadm-ListGroups", func(ctx context.Context) error {
			_, err := adm.ListGroups(ctx)
			return err
		})
		check("kadm-DescribeTopicConfigs", func(ctx context.Context) error {
			_, err := adm.DescribeTopicConfigs(ctx, topic)
			return err
		})
		check("kadm-DeleteTopic", func(ctx context.Context) error {
			resp, err := adm.DeleteTopic(ctx, topic)
			if err != nil {
				return err
			}
			return resp.Err
		})
		c.Close()
	}
	fmt.Println("DONE")
}
