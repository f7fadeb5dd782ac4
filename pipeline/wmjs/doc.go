// Package wmjs is a Watermill Publisher and Subscriber over nats.go's
// jetstream API, written to replace watermill-nats v2 pkg/jetstream (see
// DESIGN.md §8 for its pitfalls).
//
// A topic is a NATS subject. The Publisher publishes to subject = topic,
// every message of a Publish call asynchronously, then waits for all the
// acks. The Subscriber takes a subject filter (wildcards allowed), finds the
// stream that holds it and consumes through a durable, explicitly acked pull
// consumer whose name the caller chooses, so every Subscriber (in this
// process or another) that uses the same durable name shares the work.
//
// What the Subscriber promises:
//   - every message received from the server is kept alive with
//     InProgress while it waits in the local buffer or in a handler, so
//     AckWait never abandons work that is still going on;
//   - Ack acks, Nack naks with a (capped, growing) delay; nothing is ever
//     acked that Watermill did not ack, and Close or a cancelled Subscribe
//     context naks what was fetched but not finished;
//   - a header repeated by a producer never crashes or drops a message: the
//     metadata takes its first value, as nats-server does;
//   - the JetStream delivery facts are message metadata (MetaSubject,
//     MetaStream, MetaStreamSeq, MetaNumDelivered);
//   - neither Publisher.Close nor Subscriber.Close closes the *nats.Conn:
//     the caller owns it;
//   - per-message logging is at Trace level only.
//
// Nats-Msg-Id is the metadata named by PublisherConfig.MsgIDMetadataKey,
// else the UUID. JetStream dedupes per stream, not per subject: a message and
// its Copy (same UUID) published to two subjects of one stream within the
// duplicate window are stored once. Give derived messages new UUIDs, or set
// the key. Received messages carry their Nats-Msg-Id header as metadata, so
// forwarding one unchanged keeps its dedupe id.
package wmjs
