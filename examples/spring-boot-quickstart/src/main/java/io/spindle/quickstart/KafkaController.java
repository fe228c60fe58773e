package io.spindle.quickstart;

import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

@RestController
public class KafkaController {
    private final Producer producer;

    public KafkaController(Producer producer) {
        this.producer = producer;
    }

    @GetMapping("/publish")
    public String publish(@RequestParam("message") String message) {
        producer.sendMessage(message);
        return "Published: " + message;
    }
}
