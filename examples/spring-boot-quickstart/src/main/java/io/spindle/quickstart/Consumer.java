package io.spindle.quickstart;

import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.stereotype.Service;

@Service
public class Consumer {
    @KafkaListener(topics = Producer.TOPIC, groupId = "my-group")
    public void consume(String message) {
        System.out.println("Consumed message: " + message);
    }
}
