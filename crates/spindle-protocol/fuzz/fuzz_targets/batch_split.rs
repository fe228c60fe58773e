//! Splitting a record set into batches (what Produce does with a partition's records, and
//! what a scan does with a segment's bytes), then validating each batch: no panic, no abort,
//! no hang, whatever the bytes, and the split itself keeps its promises: ranges in order,
//! back to back from 0, inside the input, each at least a batch header long.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spindle_protocol::record_batch::{RECORD_BATCH_HEADER_BYTES, split_batches, validate_produced};

fuzz_target!(|records: &[u8]| {
    let mut expected_start = 0;
    for range in split_batches(records) {
        let Ok(range) = range else { break };
        assert_eq!(range.start, expected_start, "batches are back to back");
        assert!(range.end <= records.len(), "a batch ends inside the input");
        assert!(range.len() >= RECORD_BATCH_HEADER_BYTES, "a batch holds a header");
        let _ = validate_produced(&records[range.clone()]);
        expected_start = range.end;
    }
});
