//! The admin CLI's Kafka client: blocking, one request at a time on a plain TCP connection,
//! over the `kafka-protocol` codec, so it works against any Kafka-compatible broker. Runs
//! on the CLI's main thread; no broker code.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// How long a connection or an answer may take.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest answer taken: a length above it is an error, never an allocation.
const RESPONSE_BYTES_MAX: usize = 256 << 20;

pub struct Client {
    address: String,
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    pub fn connect(address: &str) -> Result<Client, String> {
        let unreachable = |e: std::io::Error| format!("cannot reach {address}: {e}");
        let socket = address
            .to_socket_addrs()
            .map_err(unreachable)?
            .next()
            .ok_or_else(|| format!("cannot resolve {address}"))?;
        let stream = TcpStream::connect_timeout(&socket, TIMEOUT).map_err(unreachable)?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(unreachable)?;
        stream
            .set_write_timeout(Some(TIMEOUT))
            .map_err(unreachable)?;
        let _ = stream.set_nodelay(true);
        Ok(Client {
            address: address.to_string(),
            stream,
            correlation_id: 0,
        })
    }

    /// Sends `body` as `api_key` v`version` and decodes the answer.
    pub fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Result<Resp, String> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            format!("{api_key:?} to {}: {what}: {e}", self.address)
        };
        self.correlation_id += 1;
        let mut frame = BytesMut::new();
        frame.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("spindle-cli")))
            .encode(&mut frame, api_key.request_header_version(version))
            .map_err(|e| failed("encoding", &e))?;
        body.encode(&mut frame, version)
            .map_err(|e| failed("encoding", &e))?;
        let size = (frame.len() - 4) as i32;
        frame[..4].copy_from_slice(&size.to_be_bytes());
        self.stream
            .write_all(&frame)
            .map_err(|e| failed("sending", &e))?;
        let mut prefix = [0u8; 4];
        self.stream
            .read_exact(&mut prefix)
            .map_err(|e| failed("reading the answer", &e))?;
        let size = i32::from_be_bytes(prefix);
        let size = usize::try_from(size)
            .ok()
            .filter(|&size| size <= RESPONSE_BYTES_MAX)
            .ok_or_else(|| failed("answer size", &size))?;
        let mut body = vec![0u8; size];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| failed("reading the answer", &e))?;
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, api_key.response_header_version(version))
            .map_err(|e| failed("decoding", &e))?;
        if header.correlation_id != self.correlation_id {
            return Err(failed("answer", &"for another request"));
        }
        let response = Resp::decode(&mut body, version).map_err(|e| failed("decoding", &e))?;
        if body.has_remaining() {
            return Err(failed("answer", &"bytes after the body"));
        }
        Ok(response)
    }
}

/// A cluster as its Metadata describes it: a connection to the bootstrap broker and, on
/// demand, to each broker by id.
pub struct Cluster {
    pub bootstrap: Client,
    brokers: BTreeMap<i32, String>,
    connections: BTreeMap<i32, Client>,
}

impl Cluster {
    pub fn connect(bootstrap: &str) -> Result<Cluster, String> {
        let mut cluster = Cluster {
            bootstrap: Client::connect(bootstrap)?,
            brokers: BTreeMap::new(),
            connections: BTreeMap::new(),
        };
        cluster.metadata(Some(Vec::new()))?;
        Ok(cluster)
    }

    /// Metadata v12 of `topics` (`None`: every topic), remembering the brokers' addresses.
    pub fn metadata(&mut self, topics: Option<Vec<String>>) -> Result<MetadataResponse, String> {
        use kafka_protocol::messages::TopicName;
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .into_iter()
                    .map(|name| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(name))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let response: MetadataResponse = self.bootstrap.call(ApiKey::Metadata, 12, &request)?;
        for broker in &response.brokers {
            self.brokers
                .insert(broker.node_id.0, format!("{}:{}", broker.host, broker.port));
        }
        Ok(response)
    }

    /// The brokers' ids, from the last Metadata.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.brokers.keys().copied().collect()
    }

    /// A connection to broker `id` (from the last Metadata).
    pub fn broker(&mut self, id: i32) -> Result<&mut Client, String> {
        if !self.connections.contains_key(&id) {
            let address = self
                .brokers
                .get(&id)
                .ok_or_else(|| format!("broker {id} is not in the cluster's metadata"))?;
            let client = Client::connect(address)?;
            self.connections.insert(id, client);
        }
        Ok(self.connections.get_mut(&id).expect("just connected"))
    }

    /// A connection to the broker at `address` (FindCoordinator's answer).
    pub fn at(&mut self, id: i32, address: String) -> Result<&mut Client, String> {
        self.brokers.entry(id).or_insert(address);
        self.broker(id)
    }
}
