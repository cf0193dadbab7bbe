// Command mongo compares a MongoDB workload run directly against the server
// and through tenantgate in database and field mode, in one run:
//
//	go run ./bench/mongo [-upstream mongodb://127.0.0.1:27017/] [-clients 8] [-duration 5s] [-docs 1000] [-rounds 2]
//
// Each target gets the same workload through one driver client, in a fresh
// collection seeded (untimed) with -docs documents: clients goroutines
// finding seeded documents by an indexed key for half the time, then
// inserting for the other half. Finds therefore search collections of the
// same size on every target (a server without index pushdown scans them),
// whatever each target's insert rate. Targets take turns, -rounds times, so
// that drifting load on a shared machine hits them alike.
// It prints ops/s, p50 and p99 per operation and each proxy's throughput as
// a ratio of the direct one. The upstream defaults to
// $TENANTGATE_TEST_MONGO_URL (scripts/servers.sh starts one); the databases
// it creates are dropped at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/tenantgate/tenantgate/policy"
	"github.com/tenantgate/tenantgate/proxy"
	mongoproxy "github.com/tenantgate/tenantgate/proxy/mongo"
)

const tenant = "bench"

func main() {
	upstream := flag.String("upstream", os.Getenv("TENANTGATE_TEST_MONGO_URL"), "MongoDB URL of the server")
	clients := flag.Int("clients", 8, "concurrent clients per target")
	duration := flag.Duration("duration", 5*time.Second, "time per target and round")
	docs := flag.Int("docs", 1000, "documents seeded in each collection before the finds")
	rounds := flag.Int("rounds", 2, "rounds of all targets, taking turns")
	flag.Parse()
	if *docs < 1 || *rounds < 1 || *clients < 1 {
		log.Fatal("-docs, -rounds and -clients must be at least 1")
	}
	if *upstream == "" {
		log.Fatal("no upstream: pass -upstream or set TENANTGATE_TEST_MONGO_URL (scripts/servers.sh start DIR)")
	}
	ctx := context.Background()
	db := "tgbench" + randomHex(4)
	direct := connect(options.Client().ApplyURI(*upstream), *clients)
	defer func() {
		for _, name := range []string{db, db + "__" + tenant} {
			_ = direct.Database(name).Drop(ctx)
		}
		_ = direct.Disconnect(ctx)
	}()

	order := []string{"direct", mongoproxy.ModeDatabase, mongoproxy.ModeField}
	clientsOf := map[string]*mongo.Client{"direct": direct}
	for _, target := range order[1:] {
		addr, stop := startProxy(ctx, *upstream, target)
		client := connect(options.Client().ApplyURI("mongodb://"+addr+"/").SetAuth(options.Credential{
			AuthMechanism: "PLAIN", AuthSource: "$external", Password: mustToken(),
		}), *clients)
		defer stop()
		defer func() { _ = client.Disconnect(ctx) }()
		clientsOf[target] = client
	}
	results := map[string]*result{}
	for round := range *rounds {
		for _, target := range order {
			coll := clientsOf[target].Database(db).Collection(fmt.Sprintf("items_%s_%d", target, round))
			if err := seed(ctx, coll, *docs); err != nil {
				log.Fatalf("%s: seed: %v", target, err)
			}
			if results[target] == nil {
				results[target] = &result{lat: map[string][]time.Duration{}, elapsed: map[string]time.Duration{}}
			}
			run(ctx, results[target], coll, *clients, *docs, *duration)
		}
	}
	for _, r := range results {
		for _, l := range r.lat {
			slices.Sort(l)
		}
	}

	fmt.Printf("%d clients, %d rounds of %s per target: indexed finds among %d documents, then inserts\n\n", *clients, *rounds, *duration, *docs)
	fmt.Printf("%-9s %-7s %10s %10s %10s %8s\n", "target", "op", "ops/s", "p50", "p99", "ratio")
	for _, target := range order {
		for _, op := range []string{"insert", "find"} {
			r := results[target]
			ratio := r.rate(op) / results["direct"].rate(op)
			fmt.Printf("%-9s %-7s %10.0f %10s %10s %7.2fx\n", target, op, r.rate(op), r.pct(op, 50), r.pct(op, 99), ratio)
		}
	}
}

// result holds every latency of one target, and the time taken, by
// operation.
type result struct {
	lat     map[string][]time.Duration
	elapsed map[string]time.Duration
}

func (r *result) add(op string, lat []time.Duration, elapsed time.Duration) {
	r.lat[op] = append(r.lat[op], lat...)
	r.elapsed[op] += elapsed
}

func (r *result) rate(op string) float64 { return float64(len(r.lat[op])) / r.elapsed[op].Seconds() }

func (r *result) pct(op string, p int) time.Duration {
	l := r.lat[op]
	if len(l) == 0 {
		return 0
	}
	return l[(len(l)-1)*p/100].Round(time.Microsecond)
}

// seed creates the index on k and inserts n documents keyed s-0..s-(n-1).
func seed(ctx context.Context, coll *mongo.Collection, n int) error {
	if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "k", Value: 1}}}); err != nil {
		return err
	}
	for start := 0; start < n; start += 500 {
		batch := make([]any, 0, 500)
		for i := start; i < min(n, start+500); i++ {
			batch = append(batch, doc(fmt.Sprintf("s-%d", i), i))
		}
		if _, err := coll.InsertMany(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

func doc(k string, i int) bson.D {
	return bson.D{{Key: "k", Value: k}, {Key: "v", Value: i}, {Key: "pad", Value: "0123456789abcdef0123456789abcdef"}}
}

// run finds seeded documents by their indexed key for half of d, then
// inserts for the other half, with clients goroutines, adding to res.
func run(ctx context.Context, res *result, coll *mongo.Collection, clients, docs int, d time.Duration) {
	lat, took := phase(clients, d/2, func(c, i int) error {
		return coll.FindOne(ctx, bson.D{{Key: "k", Value: fmt.Sprintf("s-%d", (c*7919+i*31)%max(docs, 1))}}).Err()
	})
	res.add("find", lat, took)
	lat, took = phase(clients, d/2, func(c, i int) error {
		_, err := coll.InsertOne(ctx, doc(key(c, i), i))
		return err
	})
	res.add("insert", lat, took)
}

func key(c, i int) string { return fmt.Sprintf("c%d-%d", c, i) }

// phase runs op in clients goroutines for d and returns the latencies
// and the time taken.
func phase(clients int, d time.Duration, op func(c, i int) error) ([]time.Duration, time.Duration) {
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for c := range clients {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := op(c, i); err != nil {
					log.Fatal(err)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all, time.Since(start)
}

var secret = []byte("bench-secret-" + randomHex(16))

func mustToken() string {
	tok, err := policy.MintHS256(secret, "tenant_id", tenant, time.Hour, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	return tok
}

// startProxy runs a tenantgate MongoDB listener in mode in this process.
func startProxy(ctx context.Context, upstream, mode string) (addr string, stop func()) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := proxy.NewMetrics(prometheus.NewRegistry(), proxy.MetricsOptions{MaxTenants: 10})
	engine, err := mongoproxy.New(ctx, mongoproxy.Options{Upstream: upstream, Mode: mode, Log: logger, Metrics: metrics})
	if err != nil {
		log.Fatal(err)
	}
	v, err := policy.NewVerifier(ctx, policy.VerifierConfig{Secret: secret})
	if err != nil {
		log.Fatal(err)
	}
	reg, err := policy.NewStaticRegistry([]policy.Tenant{{ID: tenant, Active: true}})
	if err != nil {
		log.Fatal(err)
	}
	l, err := proxy.Listen(proxy.ListenerConfig{
		Protocol: "mongo", Address: "127.0.0.1:0", MaxConnections: 1000, HandshakeTimeout: 10 * time.Second,
	}, engine, proxy.Deps{
		Auth: policy.NewAuthenticator(v, reg), Sessions: proxy.NewSessionTable(), Metrics: metrics,
		Audit: proxy.NewAuditor(logger, nil, false), Log: logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = l.Serve() }()
	return l.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
		v.Close()
	}
}

func connect(opts *options.ClientOptions, pool int) *mongo.Client {
	c, err := mongo.Connect(opts.SetMaxPoolSize(uint64(pool)).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		log.Fatal(err)
	}
	return c
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
