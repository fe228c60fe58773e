//! The integration tests' shared helpers, in one place: the real `spindle` binary on
//! ephemeral ports of 127.0.0.1 (`Broker`), the one blocking Kafka test client on the
//! `kafka-protocol` codec for requests real clients never send (`RawClient`: bad frames,
//! wrong cores, every version), the one temp-dir helper (`temp_dir`) and hand-built frames.
//! Record batches come from `spindle_protocol::record_batch::build_batch`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// A broker process. Killed (SIGKILL) when dropped.
pub struct Broker {
    child: Option<Child>,
    pub bootstrap: String,
    pub core_ports: Vec<u16>,
    pub data_dir: PathBuf,
    /// `host:port` of the metrics endpoint.
    pub metrics: String,
}

impl Broker {
    /// Starts `spindle serve` with two unpinned cores on ephemeral ports.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Broker {
        Broker::start_with_stderr(data_dir, extra_args, Stdio::inherit())
    }

    /// The `spindle serve` command every test broker runs: two unpinned cores (unless
    /// `extra_args` names `--cores`), ephemeral ports on 127.0.0.1 (the metrics port too,
    /// unless `extra_args` names one), `data_dir`, then `extra_args`.
    pub fn command(data_dir: &Path, extra_args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spindle"));
        command.args(["serve", "--listen", "127.0.0.1:0", "--no-pin"]);
        if !extra_args.contains(&"--metrics-listen") {
            command.args(["--metrics-listen", "127.0.0.1:0"]);
        }
        if !extra_args.contains(&"--cores") {
            command.args(["--cores", "2"]);
        }
        command.arg("--data-dir").arg(data_dir).args(extra_args);
        command
    }

    /// [`Broker::start`] with the broker's stderr going to `stderr`.
    pub fn start_with_stderr(data_dir: &Path, extra_args: &[&str], stderr: Stdio) -> Broker {
        Broker::spawn(Broker::command(data_dir, extra_args), data_dir, stderr).listening()
    }

    /// Starts `command` without waiting for it to listen, so several brokers that wait
    /// for each other (a quorum) can start together; [`Starting::listening`] then waits.
    pub fn spawn(mut command: Command, data_dir: &Path, stderr: Stdio) -> Starting {
        let child = command
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start spindle");
        Starting {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
        }
    }

    pub fn core_address(&self, core: usize) -> String {
        format!("127.0.0.1:{}", self.core_ports[core])
    }

    /// SIGTERM, then waits for the exit status (at most 60 s).
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        wait_with_timeout(&mut child, Duration::from_secs(60))
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, ...) to the process.
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("running");
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, signal) };
    }

    /// SIGKILL: a crash at an arbitrary moment.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The broker's stderr, when started with it piped.
    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.as_mut()?.stderr.take()
    }

    /// Waits up to `timeout` for the process to exit by itself; its status, or `None`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().expect("try_wait").is_none())
    }
}

/// A broker process that has not announced its ports yet.
pub struct Starting {
    child: Option<Child>,
    data_dir: PathBuf,
}

impl Starting {
    /// Waits (at most 60 s) for the "listening" line and reads the ports from it.
    pub fn listening(mut self) -> Broker {
        let mut child = self.child.take().expect("not yet listening");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let Ok(line) = received.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the broker did not start listening within 60 s");
        };
        // "spindle listening on 127.0.0.1:PORT (cores 2, core ports A,B, data D,
        // metrics http://127.0.0.1:PORT/metrics)"
        let bootstrap = line
            .split_whitespace()
            .nth(3)
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let core_ports = line
            .split("core ports ")
            .nth(1)
            .and_then(|rest| {
                rest.split(',')
                    .take_while(|p| p.starts_with(|c: char| c.is_ascii_digit()))
                    .map(|p| {
                        p.trim_end_matches(|c: char| !c.is_ascii_digit())
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_else(|| panic!("no core ports in {line:?}"));
        let metrics = line
            .split("metrics http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
            .to_string();
        Broker {
            child: Some(child),
            bootstrap,
            core_ports,
            data_dir: self.data_dir.clone(),
            metrics,
        }
    }
}

impl Starting {
    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().expect("try_wait").is_none())
    }

    /// SIGTERM, then waits for the exit status (at most 60 s).
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        wait_with_timeout(&mut child, Duration::from_secs(60))
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("broker did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A blocking Kafka connection speaking through the codec.
pub struct RawClient {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl RawClient {
    pub fn connect(address: &str) -> RawClient {
        RawClient::from_stream(TcpStream::connect(address).expect("connect"))
    }

    /// A client on a connection made elsewhere (from a chosen source address, say).
    pub fn from_stream(stream: TcpStream) -> RawClient {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        RawClient {
            stream,
            correlation_id: 0,
        }
    }

    /// Sends one request; returns its correlation id.
    pub fn send<R: Encodable>(&mut self, api_key: ApiKey, version: i16, body: &R) -> i32 {
        self.send_claiming(api_key, version, version, body)
    }

    /// Sends `body` encoded at `version` but with `claimed_version` in the header (a request
    /// from a client newer than the codec).
    pub fn send_claiming<R: Encodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        claimed_version: i16,
        body: &R,
    ) -> i32 {
        self.correlation_id += 1;
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("spindle-test")))
            .encode(&mut frame, api_key.request_header_version(version))
            .unwrap();
        body.encode(&mut frame, version)
            .unwrap_or_else(|e| panic!("encode {api_key:?} v{version}: {e}"));
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        frame[6..8].copy_from_slice(&claimed_version.to_be_bytes());
        self.stream.write_all(&frame).expect("send");
        self.correlation_id
    }

    /// Reads one response frame body; `None` if the broker closed the connection.
    pub fn receive_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        if self.stream.read_exact(&mut size).is_err() {
            return None;
        }
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    /// Reads and decodes the response to `correlation_id`.
    pub fn receive<T: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
    ) -> T {
        let mut frame = self
            .receive_frame()
            .unwrap_or_else(|| panic!("{api_key:?} v{version}: connection closed"));
        let header =
            ResponseHeader::decode(&mut frame, api_key.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, correlation_id);
        let body = T::decode(&mut frame, version)
            .unwrap_or_else(|e| panic!("decode {api_key:?} v{version} response: {e}"));
        assert_eq!(
            frame.remaining(),
            0,
            "{api_key:?} v{version}: bytes after the body"
        );
        body
    }

    pub fn call<R: Encodable, T: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &R,
    ) -> T {
        let correlation_id = self.send(api_key, version, body);
        self.receive(api_key, version, correlation_id)
    }

    /// Whether the broker has closed this connection (reads EOF or a reset within
    /// `timeout`); `false` if it is still open when the time is up.
    pub fn is_closed_within(&mut self, timeout: Duration) -> bool {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

/// Runs the admin CLI, `spindle ARGS --brokers BROKERS`: its exit code, stdout and stderr.
pub fn spindle_cli(brokers: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(args)
        .args(["--brokers", brokers])
        .output()
        .expect("spindle runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// [`spindle_cli`], which must succeed.
pub fn spindle_cli_ok(brokers: &str, args: &[&str]) {
    let (code, stdout, stderr) = spindle_cli(brokers, args);
    assert_eq!(code, 0, "spindle {args:?}: {stdout}{stderr}");
}

pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("spindle-{name}-"))
        .tempdir_in(std::env::temp_dir())
        .expect("temp dir")
}

/// Queues one message on a librdkafka producer, waiting while its queue is full.
pub fn send_retrying<C>(
    producer: &rdkafka::producer::ThreadedProducer<C>,
    topic: &str,
    key: &str,
    value: &str,
) where
    C: rdkafka::producer::ProducerContext<DeliveryOpaque = ()> + 'static,
{
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;
    let mut record = rdkafka::producer::BaseRecord::to(topic)
        .key(key)
        .payload(value);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((error, _)) => panic!("send: {error}"),
        }
    }
}

/// A request frame built by hand: size, header (v1, or v2 with an empty tagged-field
/// section when `flexible`) with `client_id`, and `body` as given, so the body can say
/// what no encoder would.
pub fn raw_request_frame(
    api_key: ApiKey,
    version: i16,
    client_id: &str,
    flexible: bool,
    body: &[u8],
) -> Vec<u8> {
    let mut frame = vec![0; 4];
    frame.extend_from_slice(&(api_key as i16).to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&1i32.to_be_bytes());
    frame.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    frame.extend_from_slice(client_id.as_bytes());
    if flexible {
        frame.push(0);
    }
    frame.extend_from_slice(body);
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    frame
}

/// Runs a client-interop program (tests/interop/*) that prints "PASS name" or "FAIL name:
/// error" per check and "DONE" at its end; its stdout. Killed and failed after `timeout`.
pub fn run_checks(mut command: Command, timeout: Duration) -> String {
    let program = format!("{:?}", command.get_program());
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is missing ({e}): .ci/run installs it"));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{program}: the checks did not finish in {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    reader.join().unwrap()
}

/// Checks such a program's output against `expected`: every check listed and no other, each
/// ending as listed ("PASS", or the start of its FAIL line), and the program ran to "DONE".
pub fn assert_checks(output: &str, expected: &[(&str, &str)]) {
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"DONE"),
        "the program ran to its end:\n{output}"
    );
    let mut unexpected = Vec::new();
    for (name, want) in expected {
        let line = lines
            .iter()
            .find(|line| {
                line.strip_prefix("PASS ")
                    .or_else(|| line.strip_prefix("FAIL "))
                    .is_some_and(|rest| rest == *name || rest.starts_with(&format!("{name}:")))
            })
            .unwrap_or_else(|| panic!("no result for {name}:\n{output}"));
        let ok = if *want == "PASS" {
            *line == format!("PASS {name}")
        } else {
            line.starts_with(want)
        };
        if !ok {
            unexpected.push(format!("{name}: want {want}, got: {line}"));
        }
    }
    assert!(
        unexpected.is_empty(),
        "unexpected results:\n{}",
        unexpected.join("\n")
    );
    assert_eq!(
        lines.len(),
        expected.len() + 1,
        "every check is listed in the test:\n{output}"
    );
}

/// `mvn -q -B <goals...> -f <project>/pom.xml` (Maven and a JDK: `.ci/run` installs them);
/// fails the test with Maven's output if the build fails.
pub fn maven(project: &Path, goals: &[&str]) {
    let output = Command::new("mvn")
        .args(["-q", "-B"])
        .args(goals)
        .arg("-f")
        .arg(project.join("pom.xml"))
        .output()
        .unwrap_or_else(|e| {
            panic!("mvn is missing ({e}): apt-get install -y maven (.ci/run does)")
        });
    assert!(
        output.status.success(),
        "mvn {goals:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A consumer's Fetch (replica -1, no wait, 1 MiB) of one partition from `offset`, naming the
/// topic by `topic` and `topic_id` (v13+ read the id, older versions the name).
pub fn fetch_request(
    topic: &str,
    topic_id: uuid::Uuid,
    partition: i32,
    offset: i64,
) -> kafka_protocol::messages::FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(kafka_protocol::protocol::StrBytes::from_string(
                    topic.to_string(),
                )))
                .with_topic_id(topic_id)
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

/// A topic's name as requests carry it.
pub fn topic_name(topic: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(StrBytes::from_string(topic.to_string()))
}

/// Produce v9 of `records` to `topic`-`partition` with `acks`: `(error code, base offset)`.
pub fn produce_records(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: i16,
) -> (i16, i64) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
    let response: ProduceResponse = client.call(
        ApiKey::Produce,
        9,
        &ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(topic_name(topic))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(records)),
                    ]),
            ]),
    );
    let answer = &response.responses[0].partition_responses[0];
    (answer.error_code, answer.base_offset)
}

/// ListOffsets v7 of `topic`-`partition` at `timestamp` (-2 earliest, -1 latest):
/// `(error code, offset)`.
pub fn list_offset(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> (i16, i64) {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse};
    let response: ListOffsetsResponse = client.call(
        ApiKey::ListOffsets,
        7,
        &ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_timestamp(timestamp),
                    ]),
            ]),
    );
    let answer = &response.topics[0].partitions[0];
    (answer.error_code, answer.offset)
}
