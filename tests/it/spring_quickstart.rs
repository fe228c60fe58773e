//! The Spring Boot quick start (`examples/spring-boot-quickstart`), the first Kafka app a
//! Spring user writes, unchanged against Spindle: a `KafkaTemplate` behind `GET /publish`
//! and a `@KafkaListener` in group `my-group` from the earliest offset. Every message
//! published is consumed exactly once; after a restart the app consumes nothing it had
//! already consumed (its committed offsets hold); app and broker stop cleanly.
//!
//! Needs Maven and a JDK 17 (`.ci/run` installs them); Maven fetches Spring Boot from Maven
//! Central into `~/.m2` on its first run. A missing tool fails the test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{Broker, maven, temp_dir};

const MESSAGES: usize = 300;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/spring-boot-quickstart")
}

/// `mvn package` of the example; the path of its runnable jar.
fn build_jar() -> PathBuf {
    maven(&example_dir(), &["package", "-DskipTests"]);
    example_dir().join("target/quickstart.jar")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The app's process and every line it has printed so far.
struct App {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    port: u16,
}

impl App {
    fn start(jar: &Path, bootstrap: &str) -> App {
        let port = free_port();
        let mut child = Command::new("java")
            .arg("-jar")
            .arg(jar)
            .arg(format!("--spring.kafka.bootstrap-servers={bootstrap}"))
            .arg(format!("--server.port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("java is missing: apt-get install -y openjdk-17-jdk-headless");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let app = App { child, lines, port };
        let deadline = Instant::now() + Duration::from_secs(90);
        while app.get("/").is_none() {
            assert!(
                Instant::now() < deadline,
                "the app did not serve HTTP within 90 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        app
    }

    /// The status line and body of `GET path`, or `None` if nothing listens yet.
    fn get(&self, path: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        Some(response)
    }

    fn publish(&self, message: &str) {
        let response = self
            .get(&format!("/publish?message={message}"))
            .expect("the app answers");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "GET /publish?message={message}: {response}"
        );
    }

    /// What the listener printed, in order.
    fn consumed(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| line.strip_prefix("Consumed message: ").map(String::from))
            .collect()
    }

    fn wait_consumed(&self, wanted: &[String], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let consumed = self.consumed();
            if wanted.iter().all(|message| consumed.contains(message)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "consumed {} of {} within {timeout:?}",
                wanted.iter().filter(|m| consumed.contains(m)).count(),
                wanted.len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, as a service manager stops it; the JVM runs Spring's shutdown (the listener
    /// commits and leaves its group) and exits.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // 143 = 128 + SIGTERM: the JVM's exit after an orderly shutdown on TERM.
                assert!(
                    status.success() || status.code() == Some(143),
                    "app exit: {status:?}"
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the app did not stop within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn spring_boot_quickstart_consumes_every_message_once_and_resumes_after_restart() {
    let jar = build_jar();
    let dir = temp_dir("spring-quickstart");
    let broker = Broker::start(dir.path(), &[]);

    let app = App::start(&jar, &broker.bootstrap);
    let messages: Vec<String> = (0..MESSAGES).map(|i| format!("msg-{i}")).collect();
    for message in &messages {
        app.publish(message);
    }
    app.wait_consumed(&messages, Duration::from_secs(60));
    let consumed = app.consumed();
    for message in &messages {
        let times = consumed.iter().filter(|m| *m == message).count();
        assert_eq!(times, 1, "{message} consumed {times} times");
    }
    assert_eq!(consumed.len(), MESSAGES, "nothing else was consumed");
    app.stop();

    // Restarted, the listener resumes from its group's committed offsets: only what is
    // published now arrives. Without commits, auto-offset-reset=earliest would replay all.
    let app = App::start(&jar, &broker.bootstrap);
    let later: Vec<String> = (0..20).map(|i| format!("after-restart-{i}")).collect();
    for message in &later {
        app.publish(message);
    }
    app.wait_consumed(&later, Duration::from_secs(60));
    // Give a replay, had there been one, time to show on every partition.
    std::thread::sleep(Duration::from_secs(2));
    let replayed: Vec<String> = app
        .consumed()
        .into_iter()
        .filter(|m| m.starts_with("msg-"))
        .collect();
    assert!(
        replayed.is_empty(),
        "consumed again after the restart: {} messages, e.g. {:?}",
        replayed.len(),
        replayed.first()
    );
    assert_eq!(app.consumed().len(), later.len());
    app.stop();
    let status = broker.stop();
    assert!(status.success(), "broker exit: {status:?}");
}
