package mongo

import (
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// serverFacts are what the proxy learned from the upstream's hello and
// buildInfo at startup, and repeats to clients.
type serverFacts struct {
	maxBSONObjectSize   int32
	maxMessageSizeBytes int32
	maxWriteBatchSize   int32
	minWireVersion      int32
	maxWireVersion      int32
	sessionTimeoutMins  int32 // 0: the upstream has no logical sessions
	buildInfo           bsoncore.Document
}

// messageOverhead is room for a command's own fields around the largest
// document it carries.
const messageOverhead = 16 << 10

func learnServer(u *upstreamConn, maxMessage int) (serverFacts, error) {
	hello, err := u.command("admin", bsoncore.AppendInt32Element(nil, "hello", 1))
	if err != nil {
		return serverFacts{}, fmt.Errorf("hello: %w", err)
	}
	f := serverFacts{
		maxBSONObjectSize:   int32Of(hello, "maxBsonObjectSize", 16<<20),
		maxMessageSizeBytes: int32Of(hello, "maxMessageSizeBytes", 48_000_000),
		maxWriteBatchSize:   int32Of(hello, "maxWriteBatchSize", 100_000),
		minWireVersion:      int32Of(hello, "minWireVersion", 0),
		maxWireVersion:      int32Of(hello, "maxWireVersion", 0),
		sessionTimeoutMins:  int32Of(hello, "logicalSessionTimeoutMinutes", 0),
	}
	if f.maxWireVersion < 8 {
		return serverFacts{}, fmt.Errorf("the upstream's maxWireVersion %d is below 8 (MongoDB 4.2): OP_MSG with document sequences is required", f.maxWireVersion)
	}
	// Drivers size messages and documents by these; a message over the
	// proxy's own limit would end the connection.
	f.maxMessageSizeBytes = min(f.maxMessageSizeBytes, int32(min(maxMessage, 1<<31-1)))
	f.maxBSONObjectSize = min(f.maxBSONObjectSize, f.maxMessageSizeBytes-min(f.maxMessageSizeBytes/2, messageOverhead))
	if f.buildInfo, err = u.command("admin", bsoncore.AppendInt32Element(nil, "buildInfo", 1)); err != nil {
		return serverFacts{}, fmt.Errorf("buildInfo: %w", err)
	}
	return f, nil
}

func int32Of(doc bsoncore.Document, key string, def int32) int32 {
	if n, ok := doc.Lookup(key).AsInt64OK(); ok {
		return int32(n)
	}
	return def
}

// helloReply answers hello/isMaster as a mongos would: the sidecar is the
// only host a driver ever learns about, compression is never offered and no
// topologyVersion is given, so drivers poll instead of streaming with exhaust.
func (f *serverFacts) helloReply(req bsoncore.Document, legacy bool, connID uint64, mechs []string) bsoncore.Document {
	idx, d := bsoncore.AppendDocumentStart(nil)
	if legacy {
		d = bsoncore.AppendBooleanElement(d, "ismaster", true)
	} else {
		d = bsoncore.AppendBooleanElement(d, "isWritablePrimary", true)
	}
	if v, ok := req.Lookup("helloOk").BooleanOK(); ok && v {
		d = bsoncore.AppendBooleanElement(d, "helloOk", true)
	}
	d = bsoncore.AppendStringElement(d, "msg", "isdbgrid")
	d = bsoncore.AppendInt32Element(d, "maxBsonObjectSize", f.maxBSONObjectSize)
	d = bsoncore.AppendInt32Element(d, "maxMessageSizeBytes", f.maxMessageSizeBytes)
	d = bsoncore.AppendInt32Element(d, "maxWriteBatchSize", f.maxWriteBatchSize)
	d = bsoncore.AppendDateTimeElement(d, "localTime", time.Now().UnixMilli())
	if f.sessionTimeoutMins > 0 {
		d = bsoncore.AppendInt32Element(d, "logicalSessionTimeoutMinutes", f.sessionTimeoutMins)
	}
	d = bsoncore.AppendInt32Element(d, "connectionId", int32(connID&0x7fffffff))
	d = bsoncore.AppendInt32Element(d, "minWireVersion", f.minWireVersion)
	d = bsoncore.AppendInt32Element(d, "maxWireVersion", f.maxWireVersion)
	d = bsoncore.AppendBooleanElement(d, "readOnly", false)
	if _, ok := req.Lookup("saslSupportedMechs").StringValueOK(); ok {
		aidx, arr := bsoncore.AppendArrayElementStart(d, "saslSupportedMechs")
		for i, m := range mechs {
			arr = bsoncore.AppendStringElement(arr, fmt.Sprint(i), m)
		}
		d, _ = bsoncore.AppendArrayEnd(arr, aidx)
	}
	d = bsoncore.AppendDoubleElement(d, "ok", 1)
	d, _ = bsoncore.AppendDocumentEnd(d, idx)
	return d
}

// okReply is {ok: 1}.
func okReply() bsoncore.Document {
	return bsoncore.BuildDocument(nil, bsoncore.AppendDoubleElement(nil, "ok", 1))
}
