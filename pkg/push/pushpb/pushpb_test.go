package pushpb

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// golden is assembled by hand from the documented push.proto, field by field.
var golden = strings.Join([]string{
	"0a28",                       // PushRequest.streams (1, bytes), 40 bytes
	"0a09", "7b6a6f623d2261227d", // StreamAdapter.labels (1) = {job="a"}
	"1219",                 // StreamAdapter.entries (2), 25 bytes
	"0a04", "0801", "1002", // EntryAdapter.timestamp (1): seconds=1, nanos=2
	"1202", "6869", // EntryAdapter.line (2) = "hi"
	"1a0d",                     // EntryAdapter.structuredMetadata (3), 13 bytes
	"0a08", "74726163655f6964", // LabelPairAdapter.name (1) = trace_id
	"1201", "78", // LabelPairAdapter.value (2) = x
	"1805", // StreamAdapter.hash (3, varint) = 5
}, "")

var goldenReq = PushRequest{Streams: []Stream{{
	Labels: `{job="a"}`,
	Entries: []Entry{{
		Timestamp:          time.Unix(1, 2).UTC(),
		Line:               "hi",
		StructuredMetadata: []LabelPair{{Name: "trace_id", Value: "x"}},
	}},
	Hash: 5,
}}}

func TestGolden(t *testing.T) {
	want, err := hex.DecodeString(golden)
	if err != nil {
		t.Fatal(err)
	}
	got, err := goldenReq.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal:\n got %x\nwant %x", got, want)
	}
	if goldenReq.Size() != len(want) {
		t.Errorf("Size = %d, want %d", goldenReq.Size(), len(want))
	}
	var back PushRequest
	if err := Unmarshal(want, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, goldenReq) {
		t.Errorf("Unmarshal = %+v, want %+v", back, goldenReq)
	}
}

// logprotoDescriptor builds push.proto's messages as a descriptor, so the
// protobuf module's own (BSD) encoder can produce reference bytes.
func logprotoDescriptor(t testing.TB) protoreflect.FileDescriptor {
	t.Helper()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	u64 := descriptorpb.FieldDescriptorProto_TYPE_UINT64.Enum()
	i64 := descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum()
	i32 := descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	field := func(name string, num int32, typ *descriptorpb.FieldDescriptorProto_Type, label *descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Type: typ, Label: label, JsonName: proto.String(name)}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	fd := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("push.proto"),
		Package: proto.String("logproto"),
		Syntax:  proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Timestamp"), Field: []*descriptorpb.FieldDescriptorProto{
				field("seconds", 1, i64, opt, ""), field("nanos", 2, i32, opt, ""),
			}},
			{Name: proto.String("PushRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				field("streams", 1, msg, rep, ".logproto.StreamAdapter"),
			}},
			{Name: proto.String("StreamAdapter"), Field: []*descriptorpb.FieldDescriptorProto{
				field("labels", 1, str, opt, ""),
				field("entries", 2, msg, rep, ".logproto.EntryAdapter"),
				field("hash", 3, u64, opt, ""),
			}},
			{Name: proto.String("LabelPairAdapter"), Field: []*descriptorpb.FieldDescriptorProto{
				field("name", 1, str, opt, ""), field("value", 2, str, opt, ""),
			}},
			{Name: proto.String("EntryAdapter"), Field: []*descriptorpb.FieldDescriptorProto{
				field("timestamp", 1, msg, opt, ".logproto.Timestamp"),
				field("line", 2, str, opt, ""),
				field("structuredMetadata", 3, msg, rep, ".logproto.LabelPairAdapter"),
			}},
		},
	}
	f, err := protodesc.NewFile(fd, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// reference encodes r with the protobuf module's dynamic messages.
func reference(t testing.TB, fd protoreflect.FileDescriptor, r *PushRequest) []byte {
	t.Helper()
	md := fd.Messages()
	reqD, tsD, streamD, pairD, entryD := md.ByName("PushRequest"), md.ByName("Timestamp"), md.ByName("StreamAdapter"), md.ByName("LabelPairAdapter"), md.ByName("EntryAdapter")
	req := dynamicpb.NewMessage(reqD)
	streams := req.Mutable(reqD.Fields().ByName("streams")).List()
	for _, s := range r.Streams {
		sm := dynamicpb.NewMessage(streamD)
		sm.Set(streamD.Fields().ByName("labels"), protoreflect.ValueOfString(s.Labels))
		sm.Set(streamD.Fields().ByName("hash"), protoreflect.ValueOfUint64(s.Hash))
		entries := sm.Mutable(streamD.Fields().ByName("entries")).List()
		for _, e := range s.Entries {
			em := dynamicpb.NewMessage(entryD)
			ts := dynamicpb.NewMessage(tsD)
			ts.Set(tsD.Fields().ByName("seconds"), protoreflect.ValueOfInt64(e.Timestamp.Unix()))
			ts.Set(tsD.Fields().ByName("nanos"), protoreflect.ValueOfInt32(int32(e.Timestamp.Nanosecond())))
			em.Set(entryD.Fields().ByName("timestamp"), protoreflect.ValueOfMessage(ts))
			em.Set(entryD.Fields().ByName("line"), protoreflect.ValueOfString(e.Line))
			md := em.Mutable(entryD.Fields().ByName("structuredMetadata")).List()
			for _, p := range e.StructuredMetadata {
				pm := dynamicpb.NewMessage(pairD)
				pm.Set(pairD.Fields().ByName("name"), protoreflect.ValueOfString(p.Name))
				pm.Set(pairD.Fields().ByName("value"), protoreflect.ValueOfString(p.Value))
				md.Append(protoreflect.ValueOfMessage(pm))
			}
			entries.Append(protoreflect.ValueOfMessage(em))
		}
		streams.Append(protoreflect.ValueOfMessage(sm))
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randString is valid UTF-8 (the protobuf module refuses anything else in a
// proto3 string; Loki's gogo code and Unmarshal do not check).
func randString(rng *rand.Rand, max int) string {
	r := make([]rune, rng.IntN(max+1))
	for i := range r {
		if rng.IntN(4) == 0 {
			r[i] = rune(0x80 + rng.IntN(0x2000))
		} else {
			r[i] = rune(rng.IntN(0x80))
		}
	}
	return string(r)
}

func randRequest(rng *rand.Rand) PushRequest {
	var r PushRequest
	for range rng.IntN(4) {
		s := Stream{Labels: randString(rng, 40)}
		if rng.IntN(2) == 0 {
			s.Hash = rng.Uint64() >> rng.IntN(64)
		}
		for range rng.IntN(5) {
			var ts time.Time
			switch rng.IntN(4) {
			case 0: // the zero time
			case 1:
				ts = time.Unix(-rng.Int64N(1<<40), int64(rng.IntN(1e9))).UTC()
			case 2:
				ts = time.Unix(rng.Int64N(1<<33), 0).UTC()
			default:
				ts = time.Unix(0, rng.Int64N(1<<62)).UTC()
			}
			e := Entry{Timestamp: ts, Line: randString(rng, 300)}
			for range rng.IntN(3) {
				e.StructuredMetadata = append(e.StructuredMetadata, LabelPair{Name: randString(rng, 10), Value: randString(rng, 10)})
			}
			s.Entries = append(s.Entries, e)
		}
		r.Streams = append(r.Streams, s)
	}
	return r
}

// TestAgainstProtobufModule checks Marshal byte for byte against
// google.golang.org/protobuf's encoder on random requests, and Unmarshal
// against what it wrote.
func TestAgainstProtobufModule(t *testing.T) {
	fd := logprotoDescriptor(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		r := randRequest(rng)
		want := reference(t, fd, &r)
		got := r.MarshalAppend([]byte("prefix"))
		if !bytes.Equal(got[len("prefix"):], want) {
			t.Fatalf("request %d: Marshal differs from the protobuf module:\n got %x\nwant %x", i, got[len("prefix"):], want)
		}
		if r.Size() != len(want) {
			t.Fatalf("request %d: Size = %d, want %d", i, r.Size(), len(want))
		}
		var back PushRequest
		if err := Unmarshal(want, &back); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !equalRequests(back, r) {
			t.Fatalf("request %d: Unmarshal = %+v, want %+v", i, back, r)
		}
	}
}

// equalRequests compares requests treating nil and empty slices alike.
func equalRequests(a, b PushRequest) bool {
	if len(a.Streams) != len(b.Streams) {
		return false
	}
	for i := range a.Streams {
		sa, sb := a.Streams[i], b.Streams[i]
		if sa.Labels != sb.Labels || sa.Hash != sb.Hash || len(sa.Entries) != len(sb.Entries) {
			return false
		}
		for j := range sa.Entries {
			ea, eb := sa.Entries[j], sb.Entries[j]
			if !ea.Timestamp.Equal(eb.Timestamp) || ea.Line != eb.Line || len(ea.StructuredMetadata) != len(eb.StructuredMetadata) {
				return false
			}
			for k := range ea.StructuredMetadata {
				if ea.StructuredMetadata[k] != eb.StructuredMetadata[k] {
					return false
				}
			}
		}
	}
	return true
}

func TestUnmarshalErrors(t *testing.T) {
	full, _ := hex.DecodeString(golden)
	tests := []struct {
		name  string
		in    string // hex
		where string
	}{
		{"truncated request", hex.EncodeToString(full[:len(full)-1]), "streams[0]"},
		{"missing length", "0a", "streams[0]"},
		{"truncated tag", "80", "request"},
		{"streams as varint", "0801", "streams[0]"},
		{"labels as varint", "0a020801", "streams[0].labels"},
		{"hash as bytes", "0a021a00", "streams[0].hash"},
		{"entry past its stream", "0a0312050a", "streams[0].entries[0]"},
		{"line past its entry", "0a04120212 05", "streams[0].entries[0].line"},
		{"nanos too large", "0a0a1208" + "0a06" + "108094ebdc03", "streams[0].entries[0].timestamp"},
		{"negative nanos", "0a0f120d" + "0a0b" + "10ffffffffffffffffff01", "streams[0].entries[0].timestamp"},
		{"metadata name as varint", "0a0612041a020801", "streams[0].entries[0].structuredMetadata[0]"},
		{"bad varint", "0a0b18ffffffffffffffffffff", "streams[0].hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := hex.DecodeString(strings.ReplaceAll(tt.in, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			var r PushRequest
			err = Unmarshal(in, &r)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Where != tt.where {
				t.Errorf("err = %v, want where %q", err, tt.where)
			}
		})
	}
}

func TestUnknownFieldsSkipped(t *testing.T) {
	full, _ := hex.DecodeString(golden)
	// Field 9 (varint 7) and field 10 (bytes "zz") before the request's
	// stream, and a fixed64 field 11 in the request.
	in := append([]byte{0x48, 0x07, 0x52, 0x02, 'z', 'z', 0x59, 1, 2, 3, 4, 5, 6, 7, 8}, full...)
	var r PushRequest
	if err := Unmarshal(in, &r); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, goldenReq) {
		t.Errorf("Unmarshal = %+v, want %+v", r, goldenReq)
	}
}

func TestSnappy(t *testing.T) {
	// A snappy block written by hand: varint length 5, then one literal
	// (tag 0b000100_00 = length 5) of "hello".
	hand := []byte{0x05, 0x10, 'h', 'e', 'l', 'l', 'o'}
	got, err := DecodeSnappy(nil, hand)
	if err != nil || string(got) != "hello" {
		t.Fatalf("DecodeSnappy(hand) = %q, %v", got, err)
	}
	if n, err := DecodedLen(hand); n != 5 || err != nil {
		t.Errorf("DecodedLen = %d, %v", n, err)
	}
	src := bytes.Repeat([]byte("level=info msg=hello "), 1000)
	enc := EncodeSnappy(nil, src)
	if len(enc) >= len(src) {
		t.Errorf("EncodeSnappy did not compress: %d >= %d", len(enc), len(src))
	}
	dec, err := DecodeSnappy(nil, enc)
	if err != nil || !bytes.Equal(dec, src) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := DecodeSnappy(nil, enc[:len(enc)/2]); err == nil {
		t.Error("DecodeSnappy of a truncated block: no error")
	}
	if _, err := DecodedLen([]byte{0xff}); err == nil {
		t.Error("DecodedLen of a bad header: no error")
	}
}

func FuzzUnmarshal(f *testing.F) {
	full, _ := hex.DecodeString(golden)
	f.Add(full)
	f.Add([]byte{})
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		r := randRequest(rng)
		b, _ := r.Marshal()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r PushRequest
		if err := Unmarshal(in, &r); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		// What decodes re-encodes to bytes that decode to the same request.
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var again PushRequest
		if err := Unmarshal(b, &again); err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if !equalRequests(r, again) {
			t.Fatalf("re-decoded %+v, want %+v", again, r)
		}
	})
}
