//! Message keys and payloads for the load generators: Kafka's default partitioner
//! (murmur2 of the key, as the Java client and librdkafka's `murmur2_random` place keyed
//! messages), per-partition key pools so pre-built batches hold keys that really belong to
//! their partition, and payload bytes shaped like kafka-producer-perf-test's (random
//! letters: not all zeros, which a compressing layer would shrink to nothing).

/// Kafka's murmur2 (the 32-bit MurmurHash2 variant of `Utils.murmur2`, seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition Kafka's default partitioner picks for `key` among `partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions as u32) as i32
}

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
    fn murmur2_matches_kafkas_partitioner() {
        // Expected values from Kafka's `UtilsTest.testMurmur2` and the Java client's
        // default partitioner.
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
        assert_eq!(
            murmur2(b"a-little-bit-longer-string") as i32,
            -1_486_304_829
        );
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58_897_971
        );
        assert_eq!(murmur2(b"abc") as i32, 479_470_107);
    }

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
