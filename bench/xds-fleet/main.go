// Command xds-fleet is the client side of Switchyard's xDS benchmarks: N Envoy-like ADS
// clients, each on its own connection, speaking State-of-the-World or delta xDS to any
// management server. Each client subscribes to every cluster (CDS wildcard) and to the
// endpoints of every cluster by name, ACKs every response as Envoy does, and reconnects with
// an empty configuration when its stream ends (a fleet of new Envoys).
//
// It reads commands from stdin, one per line, and writes events to stdout as JSON lines:
//
//	arm ROUND CLUSTER PORT -> {"event":"armed"}, then {"event":"received"} once every stream
//	                          holds CLUSTER's endpoints with PORT (arrival times, wall-clock ms)
//	storm [K]              -> every client (or the last K: churning clients) drops its
//	                          connection and reconnects empty at once (a reconnect storm):
//	                          {"event":"storm_started"}, then {"event":"synced"} when every
//	                          stream holds the full config again. After `storm K`, armed
//	                          changes wait only for the steady clients (all but the last K).
//	stop                   -> {"event":"stats"} (peak RSS), then exits
//
// Without a command it reports {"event":"started"} and {"event":"synced"} for the first sync.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

const (
	clusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	endpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

func wallMs() float64 { return float64(time.Now().UnixNano()) / 1e6 }

// events writes one JSON object per line to stdout.
type events struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (e *events) emit(fields map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.enc.Encode(fields); err != nil {
		log.Fatal(err)
	}
}

// arming is a change the fleet waits for: CLUSTER's endpoints with PORT on every stream.
type arming struct {
	round    int
	cluster  string
	port     uint32
	arrivals []float64
}

// fleet holds what every client shares: the subscription and the counters behind the events.
type fleet struct {
	out     *events
	target  string
	wire    wire
	clients []*client
	names   []string
	index   map[string]int
	mu      sync.Mutex
	// synced counts the streams that hold the full config since the last storm (generation).
	synced     int
	generation int
	awaiting   bool
	armed      *arming
	// steady clients (indices below it) are the ones an armed change waits for.
	steady int
}

// streamSynced counts one more stream in sync; it returns the generation it was counted in.
func (f *fleet) streamSynced() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.synced++
	if f.synced == len(f.clients) && f.awaiting {
		f.awaiting = false
		f.out.emit(map[string]any{"event": "synced", "at": wallMs(), "streams": f.synced})
	}
	return f.generation
}

// streamLost takes back a stream counted in generation (a count from before a storm is gone).
func (f *fleet) streamLost(generation int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if generation == f.generation {
		f.synced--
	}
}

// storm makes the last k clients drop their connections and reconnect empty, all at once;
// the others stay connected (and synced: a storm is started on a synced fleet).
func (f *fleet) storm(k int) {
	f.mu.Lock()
	f.generation++
	f.steady = len(f.clients) - k
	f.synced = f.steady
	f.awaiting = true
	f.mu.Unlock()
	at := wallMs()
	for _, c := range f.clients[f.steady:] {
		c.reconnect()
	}
	f.out.emit(map[string]any{"event": "storm_started", "at": at})
}

// arrived records that one steady stream received the armed change (once per stream and round).
func (f *fleet) arrived(index int, round int, at float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.armed
	if a == nil || a.round != round || index >= f.steady {
		return
	}
	a.arrivals = append(a.arrivals, at)
	if len(a.arrivals) < f.steady {
		return
	}
	sort.Float64s(a.arrivals)
	pick := func(p float64) float64 { return a.arrivals[int(p*float64(len(a.arrivals)-1))] }
	f.out.emit(map[string]any{
		"event": "received", "round": round, "first": a.arrivals[0], "p50": pick(0.5), "p99": pick(0.99),
		"last": a.arrivals[len(a.arrivals)-1],
	})
	f.armed = nil
}

func (f *fleet) currentArming() *arming {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.armed
}

// bits is a set of resource indices.
type bits struct {
	words []uint64
	count int
}

func newBits(n int) bits { return bits{words: make([]uint64, (n+63)/64)} }

func (b *bits) set(i int, on bool) {
	mask := uint64(1) << (i % 64)
	was := b.words[i/64]&mask != 0
	if on && !was {
		b.words[i/64] |= mask
		b.count++
	} else if !on && was {
		b.words[i/64] &^= mask
		b.count--
	}
}

// nameField reads field 1 of an encoded message without decoding the rest: the name of a
// Cluster, the cluster_name of a ClusterLoadAssignment (a SotW response can hold thousands).
func nameField(value []byte) string {
	for len(value) > 0 {
		num, typ, n := protowire.ConsumeTag(value)
		if n < 0 {
			return ""
		}
		value = value[n:]
		if num == 1 && typ == protowire.BytesType {
			name, _ := protowire.ConsumeBytes(value)
			return string(name)
		}
		m := protowire.ConsumeFieldValue(num, typ, value)
		if m < 0 {
			return ""
		}
		value = value[m:]
	}
	return ""
}

func hasPort(value []byte, port uint32) bool {
	var cla endpoint.ClusterLoadAssignment
	if proto.Unmarshal(value, &cla) != nil {
		return false
	}
	for _, locality := range cla.GetEndpoints() {
		for _, lb := range locality.GetLbEndpoints() {
			if lb.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue() == port {
				return true
			}
		}
	}
	return false
}

// client is one Envoy-like ADS client; its state lives as long as one stream.
type client struct {
	fleet     *fleet
	index     int
	conn      *grpc.ClientConn
	node      *core.Node
	clusters  bits
	endpoints bits
	synced    bool
	countedIn int
	lastRound int
	// cancel ends the current stream; redial asks for a new connection after it.
	mu     sync.Mutex
	cancel context.CancelFunc
	redial bool
}

func (c *client) reset() {
	if c.synced {
		c.fleet.streamLost(c.countedIn)
	}
	c.clusters = newBits(len(c.fleet.names))
	c.endpoints = newBits(len(c.fleet.names))
	c.synced = false
}

func (c *client) mark(set *bits, name string, on bool) {
	if i, ok := c.fleet.index[name]; ok {
		set.set(i, on)
	}
}

// sawEndpoints marks one ClusterLoadAssignment and checks it against the armed change.
func (c *client) sawEndpoints(value []byte, at float64, armed *arming) {
	name := nameField(value)
	c.mark(&c.endpoints, name, true)
	if armed != nil && armed.round > c.lastRound && name == armed.cluster && hasPort(value, armed.port) {
		c.lastRound = armed.round
		c.fleet.arrived(c.index, armed.round, at)
	}
}

func (c *client) checkSynced() {
	n := len(c.fleet.names)
	if !c.synced && c.clusters.count == n && c.endpoints.count == n {
		c.synced = true
		c.countedIn = c.fleet.streamSynced()
	}
}

// wire is what a client sends and reads as raw protobuf: responses are read field by field
// (names and the one armed resource, nothing else decoded), and the long EDS name list is
// encoded once for every request that repeats it, as a careful client would.
type wire struct {
	sotwNames  []byte
	deltaNames []byte
}

func newWire(names []string) wire {
	sotw, _ := proto.Marshal(&discovery.DiscoveryRequest{ResourceNames: names})
	delta, _ := proto.Marshal(&discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: names})
	return wire{sotwNames: sotw, deltaNames: delta}
}

func marshal(m proto.Message, tail []byte) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		log.Fatal(err)
	}
	return append(b, tail...)
}

// rawCodec hands messages through as bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// eachField calls fn for every field of an encoded message, with the bytes of length-delimited ones.
func eachField(msg []byte, fn func(num protowire.Number, value []byte)) {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return
		}
		msg = msg[n:]
		var value []byte
		m := protowire.ConsumeFieldValue(num, typ, msg)
		if m < 0 {
			return
		}
		if typ == protowire.BytesType {
			value, _ = protowire.ConsumeBytes(msg)
		}
		fn(num, value)
		msg = msg[m:]
	}
}

func field(msg []byte, want protowire.Number) []byte {
	var out []byte
	eachField(msg, func(num protowire.Number, value []byte) {
		if num == want && out == nil {
			out = value
		}
	})
	return out
}

// response is the envelope of a DiscoveryResponse or DeltaDiscoveryResponse (same field numbers
// for version 1, resources 2, type_url 4, nonce 5; removed_resources 6 is delta only).
type response struct {
	typeURL, version, nonce string
	resources               [][]byte
	removed                 []string
}

func parseResponse(msg []byte) response {
	var r response
	eachField(msg, func(num protowire.Number, value []byte) {
		switch num {
		case 1:
			r.version = string(value)
		case 2:
			r.resources = append(r.resources, value)
		case 4:
			r.typeURL = string(value)
		case 5:
			r.nonce = string(value)
		case 6:
			r.removed = append(r.removed, string(value))
		}
	})
	return r
}

// received applies one response to the client's view and returns the ACK to send.
func (c *client) received(r response, delta bool, at float64) []byte {
	set := &c.endpoints
	if r.typeURL == clusterType {
		set = &c.clusters
		if !delta {
			// A SotW CDS response is the whole set.
			c.clusters = newBits(len(c.fleet.names))
		}
	}
	armed := c.fleet.currentArming()
	for _, raw := range r.resources {
		// SotW: an Any (value is field 2); delta: a Resource (its Any is field 2).
		value := field(raw, 2)
		if delta {
			value = field(value, 2)
		}
		if set == &c.endpoints {
			c.sawEndpoints(value, at, armed)
		} else {
			c.mark(set, nameField(value), true)
		}
	}
	for _, name := range r.removed {
		c.mark(set, name, false)
	}
	if delta {
		return marshal(&discovery.DeltaDiscoveryRequest{TypeUrl: r.typeURL, ResponseNonce: r.nonce}, nil)
	}
	var names []byte
	if r.typeURL == endpointType {
		names = c.fleet.wire.sotwNames
	}
	return marshal(&discovery.DiscoveryRequest{TypeUrl: r.typeURL, VersionInfo: r.version, ResponseNonce: r.nonce}, names)
}

// runStream speaks one ADS stream: CDS wildcard first, EDS for every cluster once clusters
// arrived, an ACK for every response.
func (c *client) runStream(ctx context.Context, delta bool) error {
	method, name := "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources", "StreamAggregatedResources"
	first := marshal(&discovery.DiscoveryRequest{Node: c.node, TypeUrl: clusterType}, nil)
	subscribe := marshal(&discovery.DiscoveryRequest{TypeUrl: endpointType}, c.fleet.wire.sotwNames)
	if delta {
		method, name = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources", "DeltaAggregatedResources"
		first = marshal(&discovery.DeltaDiscoveryRequest{Node: c.node, TypeUrl: clusterType}, nil)
		subscribe = marshal(&discovery.DeltaDiscoveryRequest{TypeUrl: endpointType}, c.fleet.wire.deltaNames)
	}
	desc := &grpc.StreamDesc{StreamName: name, ClientStreams: true, ServerStreams: true}
	stream, err := c.conn.NewStream(ctx, desc, method, grpc.ForceCodec(rawCodec{}), grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	if err := stream.SendMsg(&first); err != nil {
		return err
	}
	edsRequested := false
	for {
		var msg []byte
		if err := stream.RecvMsg(&msg); err != nil {
			return err
		}
		r := parseResponse(msg)
		ack := c.received(r, delta, wallMs())
		if err := stream.SendMsg(&ack); err != nil {
			return err
		}
		if r.typeURL == clusterType && !edsRequested {
			edsRequested = true
			if err := stream.SendMsg(&subscribe); err != nil {
				return err
			}
		}
		c.checkSynced()
	}
}

// run keeps one stream open, starting empty after every disconnect.
func (c *client) run(mode string) {
	for {
		ctx, cancel := context.WithCancel(context.Background())
		c.mu.Lock()
		c.cancel = cancel
		redial := c.redial
		c.redial = false
		c.mu.Unlock()
		if redial {
			_ = c.conn.Close()
			c.conn = dial(c.fleet.target)
		}
		c.reset()
		_ = c.runStream(ctx, mode == "delta")
		cancel()
	}
}

// reconnect ends the stream and its connection; run opens new ones.
func (c *client) reconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.redial = true
	if c.cancel != nil {
		c.cancel()
	}
}

func dial(target string) *grpc.ClientConn {
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Envoy's HTTP/2 windows are large; a 64 KiB window would make a full-config transfer
		// wait for a window update every 64 KiB.
		grpc.WithInitialWindowSize(16<<20),
		grpc.WithInitialConnWindowSize(16<<20),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(64<<20)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	return conn
}

func (f *fleet) command(line string) error {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil
	}
	switch fields[0] {
	case "arm":
		if len(fields) != 4 {
			return fmt.Errorf("usage: arm ROUND CLUSTER PORT")
		}
		round, err1 := strconv.Atoi(fields[1])
		port, err2 := strconv.ParseUint(fields[3], 10, 32)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("arm: ROUND and PORT must be numbers: %q", line)
		}
		f.mu.Lock()
		f.armed = &arming{round: round, cluster: fields[2], port: uint32(port)}
		f.mu.Unlock()
		f.out.emit(map[string]any{"event": "armed", "round": round})
	case "storm":
		k := len(f.clients)
		if len(fields) == 2 {
			n, err := strconv.Atoi(fields[1])
			if err != nil || n <= 0 || n > len(f.clients) {
				return fmt.Errorf("storm: K must be a number from 1 to %d: %q", len(f.clients), line)
			}
			k = n
		}
		f.storm(k)
	case "stop":
		var usage syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
		f.out.emit(map[string]any{"event": "stats", "rss_mb": float64(usage.Maxrss) / 1024})
		os.Exit(0)
	default:
		return fmt.Errorf("unknown command %q", fields[0])
	}
	return nil
}

func main() {
	target := flag.String("target", "", "management server host:port")
	streams := flag.Int("streams", 1000, "number of clients, each on its own connection")
	clusters := flag.Int("clusters", 10000, "clusters the server serves, named by -name-format")
	nameFormat := flag.String("name-format", "c%05d", "cluster name for index i (fmt verb)")
	mode := flag.String("mode", "sotw", "sotw or delta")
	idPrefix := flag.String("id-prefix", "fleet", "node ids are PREFIX-0, PREFIX-1, …")
	flag.Parse()
	if *target == "" || (*mode != "sotw" && *mode != "delta") {
		log.Fatal("usage: xds-fleet -target HOST:PORT [-streams N] [-clusters N] [-mode sotw|delta]")
	}
	f := &fleet{out: &events{enc: json.NewEncoder(os.Stdout)}, target: *target, index: map[string]int{}, awaiting: true, steady: *streams}
	for i := 0; i < *clusters; i++ {
		name := fmt.Sprintf(*nameFormat, i)
		f.names = append(f.names, name)
		f.index[name] = i
	}
	f.wire = newWire(f.names)
	for i := 0; i < *streams; i++ {
		node := &core.Node{Id: fmt.Sprintf("%s-%d", *idPrefix, i), Cluster: "fleet", UserAgentName: "envoy"}
		f.clients = append(f.clients, &client{fleet: f, index: i, conn: dial(*target), node: node})
	}
	f.out.emit(map[string]any{"event": "started", "at": wallMs()})
	for _, c := range f.clients {
		go c.run(*mode)
	}
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		if err := f.command(lines.Text()); err != nil {
			f.out.emit(map[string]any{"event": "error", "error": err.Error()})
		}
	}
	os.Exit(0)
}
