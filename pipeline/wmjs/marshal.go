package wmjs

import (
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderUUID carries the Watermill message UUID.
const HeaderUUID = "Watermill-Uuid"

// legacyHeaderUUID is where watermill-nats puts the UUID; read so that
// messages published by it keep their UUID.
const legacyHeaderUUID = "_watermill_message_uuid"

// Metadata keys set on every received message from the JetStream delivery.
// They describe one delivery, not the message, so the Publisher does not
// forward them as headers.
const (
	// MetaSubject is the subject the message was published to (useful when
	// the topic is a wildcard filter).
	MetaSubject = "Jetstream-Subject"
	// MetaStream is the name of the stream holding the message.
	MetaStream = "Jetstream-Stream"
	// MetaStreamSeq is the message's stream sequence, in decimal: a
	// stable reference to the message (batches cross JetStream as these).
	MetaStreamSeq = "Jetstream-Stream-Seq"
	// MetaNumDelivered is how many times the message has been delivered to
	// the consumer, this delivery included (1 the first time), in decimal.
	MetaNumDelivered = "Jetstream-Num-Delivered"
)

func isDeliveryMeta(key string) bool {
	switch key {
	case MetaSubject, MetaStream, MetaStreamSeq, MetaNumDelivered:
		return true
	}
	return false
}

// toNats builds the NATS message for a Watermill message: metadata become
// headers (delivery metadata excepted), the UUID goes in HeaderUUID and
// Nats-Msg-Id is the msgIDKey metadata when set, else the UUID.
func toNats(subject string, msg *message.Message, msgIDKey string) *nats.Msg {
	h := make(nats.Header, len(msg.Metadata)+2)
	for k, v := range msg.Metadata {
		if isDeliveryMeta(k) {
			continue
		}
		h[k] = []string{v}
	}
	h[HeaderUUID] = []string{msg.UUID}
	id := msg.Metadata.Get(msgIDKey)
	if id == "" {
		id = msg.UUID
	}
	h[jetstream.MsgIDHeader] = []string{id}
	return &nats.Msg{Subject: subject, Header: h, Data: msg.Payload}
}

// fromJetStream builds the Watermill message for a delivery. It never fails:
// a header with several values gives its first value (the one nats-server
// itself reads), an empty one is skipped, unknown headers become metadata.
// The UUID is HeaderUUID, else watermill-nats' header, else Nats-Msg-Id,
// else "<stream>:<sequence>", so a message from a plain NATS producer has a
// stable UUID across redeliveries.
func fromJetStream(m jetstream.Msg) *message.Message {
	hdr := m.Headers()
	md := make(message.Metadata, len(hdr)+4)
	var uuid, legacyUUID string
	for k, vs := range hdr {
		if len(vs) == 0 {
			continue
		}
		switch k {
		case HeaderUUID:
			uuid = vs[0]
			continue
		case legacyHeaderUUID:
			legacyUUID = vs[0]
			continue
		}
		md[k] = vs[0]
	}
	md[MetaSubject] = m.Subject()
	var stream string
	var seq uint64
	if meta, err := m.Metadata(); err == nil {
		stream, seq = meta.Stream, meta.Sequence.Stream
		md[MetaStream] = stream
		md[MetaStreamSeq] = strconv.FormatUint(seq, 10)
		md[MetaNumDelivered] = strconv.FormatUint(meta.NumDelivered, 10)
	}
	switch {
	case uuid != "":
	case legacyUUID != "":
		uuid = legacyUUID
	case md[jetstream.MsgIDHeader] != "":
		uuid = md[jetstream.MsgIDHeader]
	default:
		uuid = stream + ":" + strconv.FormatUint(seq, 10)
	}
	wm := message.NewMessage(uuid, m.Data())
	wm.Metadata = md
	return wm
}
