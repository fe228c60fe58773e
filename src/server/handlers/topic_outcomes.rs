//! Shared by the topic admin APIs (CreateTopics, DeleteTopics, CreatePartitions): each is
//! translated into a controller request (core 0 decides, persists and pushes the new
//! snapshot to every core before answering); this turns its outcomes into answers.

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::cluster::control::TopicOutcome;
use spindle_protocol::ErrorCode;

pub(super) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub(super) fn split(outcome: &TopicOutcome) -> (ErrorCode, Option<StrBytes>) {
    match &outcome.result {
        Ok(_) => (ErrorCode::None, None),
        Err((code, message)) => (*code, Some(StrBytes::from_string(message.clone()))),
    }
}
