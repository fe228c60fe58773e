//! Request decoding and produced-batch validation on arbitrary bytes: neither may panic,
//! abort (a failed allocation is an abort) or hang, whatever the input. The first byte
//! picks the path, so one corpus drives both.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use spindle_protocol::api::{DECODABLE_APIS, decode_request};
use spindle_protocol::record_batch::validate_produced;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        let _ = decode_request(Bytes::copy_from_slice(input), DECODABLE_APIS);
    } else {
        let _ = validate_produced(input);
    }
});
