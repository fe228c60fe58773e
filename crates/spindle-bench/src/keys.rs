//! Message keys and payloads for the load generators: Kafka's default partitioner
//! (murmur2 of the key, as the Java client and librdkafka's `murmur2_random` place keyed
//! messages), per-partition key pools so pre-built batches hold keys that really belong to
//! their partition, and payload bytes shaped like kafka-producer-perf-test's (random
//! letters: not all zeros, which a compressing layer would shrink to nothing).

pub use spindle_protocol::partitioner::{murmur2, partition_for_key};

/// `count` distinct keys (8-byte big-endian counters) that the default partitioner sends to
/// `partition` out of `partitions`.
pub fn keys_for_partition(partition: i32, partitions: i32, count: usize) -> Vec<[u8; 8]> {
    (0u64..)
        .map(u64::to_be_bytes)
        .filter(|key| partition_for_key(key, partitions) == partition)
        .take(count)
        .collect()
}

/// `len` pseudo-random upper-case letters from `seed`: every run sends the same bytes.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_pools_belong_to_their_partition() {
        for partition in 0..8 {
            let keys = keys_for_partition(partition, 8, 100);
            assert_eq!(keys.len(), 100);
            assert!(keys.iter().all(|k| partition_for_key(k, 8) == partition));
        }
        let a = payload(1000, 7);
        assert!(a.iter().all(u8::is_ascii_uppercase));
        assert_eq!(a, payload(1000, 7));
        assert_ne!(a, payload(1000, 8));
    }
}
