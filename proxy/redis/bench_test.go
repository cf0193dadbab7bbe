package redis

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/proxy"
)

// BenchmarkProxySetGet measures SET and GET through the proxy to the test
// Redis from 50 concurrent connections (like redis-benchmark -c 50), each
// sending pipeline commands per round trip (redis-benchmark -P). The
// clients speak raw RESP, so that a CPU profile shows the proxy. An op is
// one round trip; cmds/s counts commands.
//
//	go test -run '^$' -bench ProxySetGet -cpuprofile cpu.out ./proxy/redis/
func BenchmarkProxySetGet(b *testing.B) {
	for _, depth := range []int{1, 16} {
		b.Run(fmt.Sprintf("pipeline=%d", depth), func(b *testing.B) { benchSetGet(b, depth) })
	}
}

func benchSetGet(b *testing.B, depth int) {
	id := tenants(1)[0]
	p := startProxyOpts(b, proxy.ListenerConfig{}, Options{}, id)
	token := p.token(id)
	// Two batches alternate: SETs, then GETs of the same keys.
	var sets, gets []byte
	for i := range depth {
		key := "key:" + strconv.Itoa(i)
		sets = appendRESP(sets, "SET", key, "0123456789abcdef")
		gets = appendRESP(gets, "GET", key)
	}
	b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", p.addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		if err := roundTrip(conn, r, appendRESP(nil, "AUTH", token), 1); err != nil {
			b.Error(err)
			return
		}
		for i := 0; pb.Next(); i++ {
			batch := sets
			if i%2 == 1 {
				batch = gets
			}
			if err := roundTrip(conn, r, batch, depth); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*depth)/time.Since(start).Seconds(), "cmds/s")
}

func appendRESP(dst []byte, args ...string) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// roundTrip writes batch and reads n replies (simple strings, errors or
// bulk strings: what SET, GET and AUTH answer).
func roundTrip(w io.Writer, r *bufio.Reader, batch []byte, n int) error {
	if _, err := w.Write(batch); err != nil {
		return err
	}
	for range n {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		switch line[0] {
		case '+':
		case '$':
			size, err := strconv.Atoi(string(line[1 : len(line)-2]))
			if err != nil {
				return err
			}
			if size >= 0 {
				if _, err := r.Discard(size + 2); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unexpected reply %q", line)
		}
	}
	return nil
}
