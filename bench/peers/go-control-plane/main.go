// Command go-control-plane is the peer in Switchyard's xDS benchmark: a management server built
// on github.com/envoyproxy/go-control-plane the way its users build one (snapshot cache, the
// library's ADS server for State-of-the-World and delta), serving the resources the benchmark
// wrote to a file.
//
// It prints one JSON line when it serves ({"xds_port":…, "control_port":…}) and answers
// POST /eds?round=N on its control port: the body is one encoded google.protobuf.Any holding a
// ClusterLoadAssignment that replaces the one of the same name in a new snapshot version; the
// reply says when the snapshot was set ({"t0_ms":…}, wall-clock milliseconds).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cache "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	server "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// resourceFile is what the benchmark writes: each resource as the bytes of a google.protobuf.Any.
type resourceFile struct {
	Clusters  [][]byte `json:"clusters"`
	Endpoints [][]byte `json:"endpoints"`
}

// fleetHash puts every node in one snapshot: all benchmark clients get the same configuration,
// as Switchyard's Envoy node group does.
type fleetHash struct{}

func (fleetHash) ID(*core.Node) string { return "fleet" }

// state is the current resource set and the version counter behind each new snapshot.
type state struct {
	mu        sync.Mutex
	cache     cache.SnapshotCache
	clusters  cache.Resources
	endpoints []types.Resource
	index     map[string]int
	version   int
}

func decodeAll(encoded [][]byte) ([]types.Resource, error) {
	out := make([]types.Resource, 0, len(encoded))
	for i, raw := range encoded {
		var packed anypb.Any
		if err := proto.Unmarshal(raw, &packed); err != nil {
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
		msg, err := packed.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
		out = append(out, msg.(types.Resource))
	}
	return out, nil
}

func load(path string) (*state, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var file resourceFile
	if err := json.Unmarshal(raw, &file); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s := &state{cache: cache.NewSnapshotCache(false, fleetHash{}, nil), index: map[string]int{}}
	clusters, err := decodeAll(file.Clusters)
	if err != nil {
		return nil, fmt.Errorf("clusters: %w", err)
	}
	// Versions per type, as a careful user keeps them: an EDS change leaves CDS at its version,
	// so the library does not resend every cluster with each endpoint change.
	s.clusters = cache.NewResources("1", clusters)
	if s.endpoints, err = decodeAll(file.Endpoints); err != nil {
		return nil, fmt.Errorf("endpoints: %w", err)
	}
	for i, r := range s.endpoints {
		s.index[r.(*endpoint.ClusterLoadAssignment).GetClusterName()] = i
	}
	return s, s.publish()
}

// publish sets a snapshot with a new endpoints version. Callers hold mu (or own s).
func (s *state) publish() error {
	s.version++
	snapshot := &cache.Snapshot{}
	snapshot.Resources[types.Cluster] = s.clusters
	snapshot.Resources[types.Endpoint] = cache.NewResources(strconv.Itoa(s.version), s.endpoints)
	return s.cache.SetSnapshot(context.Background(), "fleet", snapshot)
}

// replaceEndpoints swaps one ClusterLoadAssignment in a new endpoints list; publish sends it.
func (s *state) replaceEndpoints(cla *endpoint.ClusterLoadAssignment) error {
	i, ok := s.index[cla.GetClusterName()]
	if !ok {
		return fmt.Errorf("no cluster %q", cla.GetClusterName())
	}
	next := make([]types.Resource, len(s.endpoints))
	copy(next, s.endpoints)
	next[i] = cla
	s.endpoints = next
	return nil
}

func (s *state) handleEds(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var packed anypb.Any
	var cla endpoint.ClusterLoadAssignment
	if err := proto.Unmarshal(body, &packed); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := packed.UnmarshalTo(&cla); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.replaceEndpoints(&cla); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The reply (when the change starts) goes out first, whole (its length set, so the client
	// is done reading it): with a thousand SotW watches, SetSnapshot can take longer than an
	// HTTP client waits for a body to end.
	t0 := float64(time.Now().UnixNano()) / 1e6
	reply, _ := json.Marshal(map[string]float64{"t0_ms": t0})
	w.Header().Set("content-type", "application/json")
	w.Header().Set("content-length", strconv.Itoa(len(reply)))
	_, _ = w.Write(reply)
	w.(http.Flusher).Flush()
	if err := s.publish(); err != nil {
		log.Fatal(err)
	}
}

func listen(port int) net.Listener {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		log.Fatal(err)
	}
	return l
}

func main() {
	resources := flag.String("resources", "", "JSON file of the resources to serve")
	xdsPort := flag.Int("port", 0, "xDS port on 127.0.0.1 (0: any free port)")
	flag.Parse()
	s, err := load(*resources)
	if err != nil {
		log.Fatal(err)
	}
	grpcServer := grpc.NewServer(grpc.MaxRecvMsgSize(64<<20), grpc.MaxConcurrentStreams(1<<20))
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(grpcServer, server.NewServer(context.Background(), s.cache, nil))
	xds := listen(*xdsPort)
	control := listen(0)
	mux := http.NewServeMux()
	mux.HandleFunc("/eds", s.handleEds)
	go func() { log.Fatal(http.Serve(control, mux)) }()
	ready, _ := json.Marshal(map[string]int{
		"xds_port":     xds.Addr().(*net.TCPAddr).Port,
		"control_port": control.Addr().(*net.TCPAddr).Port,
	})
	fmt.Println(string(ready))
	log.Fatal(grpcServer.Serve(xds))
}
