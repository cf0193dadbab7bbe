// Command mongo compares a MongoDB workload run directly against the server
// and through tenantgate in database and field mode, in one run:
//
//	go run ./bench/mongo [-upstream mongodb://127.0.0.1:27017/] [-clients 8] [-duration 5s]
//
// Each target gets the same workload through one driver client: clients
// goroutines inserting for half the time, then finding the inserted
// documents by an indexed key for the other half.
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
	duration := flag.Duration("duration", 5*time.Second, "time per target")
	flag.Parse()
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

	results := map[string]result{}
	order := []string{"direct", mongoproxy.ModeDatabase, mongoproxy.ModeField}
	for _, target := range order {
		client := direct
		if target != "direct" {
			addr, stop := startProxy(ctx, *upstream, target)
			client = connect(options.Client().ApplyURI("mongodb://"+addr+"/").SetAuth(options.Credential{
				AuthMechanism: "PLAIN", AuthSource: "$external", Password: mustToken(),
			}), *clients)
			defer stop()
			defer func() { _ = client.Disconnect(ctx) }()
		}
		coll := client.Database(db).Collection("items_" + target)
		if _, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "k", Value: 1}}}); err != nil {
			log.Fatalf("%s: create index: %v", target, err)
		}
		results[target] = run(ctx, coll, *clients, *duration)
	}

	fmt.Printf("%d clients, %s per target: inserts, then indexed finds\n\n", *clients, *duration)
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
	if r.elapsed == nil {
		r.elapsed = map[string]time.Duration{}
	}
	r.lat[op], r.elapsed[op] = lat, elapsed
}

func (r result) rate(op string) float64 { return float64(len(r.lat[op])) / r.elapsed[op].Seconds() }

func (r result) pct(op string, p int) time.Duration {
	l := r.lat[op]
	if len(l) == 0 {
		return 0
	}
	return l[(len(l)-1)*p/100].Round(time.Microsecond)
}

// run inserts for half of d, then finds what was inserted by its indexed
// key for the other half, with clients goroutines.
func run(ctx context.Context, coll *mongo.Collection, clients int, d time.Duration) result {
	res := result{lat: map[string][]time.Duration{}}
	inserted := make([]int, clients)
	lat, took := phase(clients, d/2, func(c, i int) error {
		_, err := coll.InsertOne(ctx, bson.D{{Key: "k", Value: key(c, i)}, {Key: "v", Value: i}, {Key: "pad", Value: "0123456789abcdef0123456789abcdef"}})
		inserted[c] = i + 1
		return err
	})
	res.add("insert", lat, took)
	lat, took = phase(clients, d/2, func(c, i int) error {
		return coll.FindOne(ctx, bson.D{{Key: "k", Value: key(c, i%max(inserted[c], 1))}}).Err()
	})
	res.add("find", lat, took)
	return res
}

func key(c, i int) string { return fmt.Sprintf("c%d-%d", c, i) }

// phase runs op in clients goroutines for d and returns the sorted
// latencies and the time taken.
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
	slices.Sort(all)
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
