//! The data directory belongs to one broker process at a time.

use std::time::Duration;

use crate::common::{Broker, RawClient, temp_dir};
use kafka_protocol::messages::*;

#[test]
fn a_second_broker_on_the_same_data_dir_refuses_to_start() {
    let dir = temp_dir("locked");
    let first = Broker::start(dir.path(), &[]);
    let second = Broker::command(dir.path(), &[])
        .env("RUST_LOG", "off")
        .output()
        .expect("run spindle");
    assert!(!second.status.success(), "the second broker must not run");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("in use by another process"), "{stderr}");
    // The first is undisturbed.
    let mut client = RawClient::connect(&first.bootstrap);
    let response: ApiVersionsResponse =
        client.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(response.error_code, 0);
    // Once the first has stopped (even by SIGKILL), the directory is free again.
    first.kill();
    std::thread::sleep(Duration::from_millis(100));
    let third = Broker::start(dir.path(), &[]);
    let status = third.stop();
    assert!(status.success(), "{status:?}");
}
