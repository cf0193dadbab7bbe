package mongo

import (
	"bufio"
	"context"
	"crypto/md5" //nolint:gosec // SCRAM-SHA-1's password digest, as MongoDB defines it
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func TestParseUpstreamCredentials(t *testing.T) {
	for _, tc := range []struct {
		url, mech, source, user string
		err                     string
	}{
		{url: "mongodb://h:1/", user: ""},
		{url: "mongodb://proxy:pw@h:1/", source: "admin", user: "proxy"},
		{url: "mongodb://proxy:pw@h:1/?authSource=users", source: "users", user: "proxy"},
		{url: "mongodb://pr%40xy:p%3Aw@h:1/?authMechanism=SCRAM-SHA-1", mech: mechSCRAMSHA1, source: "admin", user: "pr@xy"},
		{url: "mongodb://proxy:pw@h:1/?authMechanism=scram-sha-256&tls=true", mech: mechSCRAMSHA256, source: "admin", user: "proxy"},
		{url: "mongodb://proxy:pw@h:1/?authMechanism=PLAIN", err: "not supported"},
		{url: "mongodb://proxy:pw@h:1/?authMechanism=MONGODB-X509", err: "not supported"},
		{url: "mongodb://proxy@h:1/", err: "without a password"},
		{url: "mongodb://:pw@h:1/", err: "empty user"},
		{url: "mongodb://h:1/?authSource=admin", err: "without credentials"},
		{url: "mongodb://proxy:pw@h:1/?authSource=%24external", err: "cannot hold SCRAM users"},
		{url: "mongodb://proxy:pw@h:1/?authMechanismProperties=x:y", err: "not supported"},
		{url: "mongodb://proxy:pw@h:1/db", err: "database in the URL"},
	} {
		cfg, err := parseUpstream(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.url, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("%s: the error quotes the password: %v", tc.url, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if tc.user == "" {
			if cfg.cred != nil {
				t.Errorf("%s: credentials from nowhere", tc.url)
			}
			continue
		}
		if cfg.cred == nil || cfg.cred.user != tc.user || cfg.cred.source != tc.source || cfg.cred.mechanism != tc.mech {
			t.Errorf("%s: cred = %+v, want user %q source %q mechanism %q", tc.url, cfg.cred, tc.user, tc.source, tc.mech)
		}
	}
	// A URL that does not parse is reported without echoing it.
	if _, err := parseUpstream("mongodb://proxy:se%zzcret@h:1/"); err == nil || strings.Contains(err.Error(), "se%zz") {
		t.Errorf("bad escape: err = %v", err)
	}
}

// scramServer is a minimal OP_MSG peer that runs xdg-go/scram's server side
// of saslStart/saslContinue, to test the client conversation against an
// independent implementation, including servers that misbehave.
type scramServer struct {
	password  string // the password the server knows
	skipEmpty bool   // honour the client's skipEmptyExchange
	impostor  bool   // accept any proof and claim success with a forged signature
	earlyDone bool   // claim done before sending the server-final message
}

func (s scramServer) credentials(mechanism, user string) (scram.StoredCredentials, scram.HashGeneratorFcn, error) {
	kf := scram.KeyFactors{Salt: "0123456789abcdef", Iters: 4096}
	hash := scram.SHA256
	c, err := scram.SHA256.NewClient(user, s.password, "")
	if mechanism == mechSCRAMSHA1 {
		sum := md5.Sum([]byte(user + ":mongo:" + s.password)) //nolint:gosec // see import
		hash = scram.SHA1
		c, err = scram.SHA1.NewClientUnprepped(user, hex.EncodeToString(sum[:]), "")
	}
	if err != nil {
		return scram.StoredCredentials{}, nil, err
	}
	cred, err := c.GetStoredCredentialsWithError(kf)
	return cred, hash, err
}

func (s scramServer) start(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn)
		}
	}()
	return ln.Addr().String()
}

func (s scramServer) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	var conv *scram.ServerConversation
	for {
		h, msg, err := readMessage(r, nil, 1<<20)
		if err != nil {
			return
		}
		m, err := parseOpMsg(msg)
		if err != nil {
			return
		}
		var reply bson.D
		switch firstKey(m.Body) {
		case "saslStart":
			mech, _ := m.Body.Lookup("mechanism").StringValueOK()
			_, payload, _ := m.Body.Lookup("payload").BinaryOK()
			user := strings.TrimPrefix(strings.SplitN(string(payload), ",", 4)[2], "n=")
			cred, hash, err := s.credentials(mech, user)
			if err != nil {
				return
			}
			srv, err := hash.NewServer(func(string) (scram.StoredCredentials, error) { return cred, nil })
			if err != nil {
				return
			}
			conv = srv.NewConversation()
			out, err := conv.Step(string(payload))
			if err != nil {
				reply = bson.D{{Key: "ok", Value: 0}, {Key: "errmsg", Value: err.Error()}, {Key: "code", Value: 18}}
				break
			}
			reply = bson.D{{Key: "conversationId", Value: int32(1)}, {Key: "done", Value: false}, {Key: "payload", Value: bson.Binary{Data: []byte(out)}}, {Key: "ok", Value: 1}}
		case "saslContinue":
			_, payload, _ := m.Body.Lookup("payload").BinaryOK()
			switch {
			case len(payload) == 0 && conv.Done():
				reply = bson.D{{Key: "conversationId", Value: int32(1)}, {Key: "done", Value: true}, {Key: "payload", Value: bson.Binary{}}, {Key: "ok", Value: 1}}
			case s.earlyDone:
				reply = bson.D{{Key: "conversationId", Value: int32(1)}, {Key: "done", Value: true}, {Key: "payload", Value: bson.Binary{}}, {Key: "ok", Value: 1}}
			case s.impostor:
				forged := "v=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
				reply = bson.D{{Key: "conversationId", Value: int32(1)}, {Key: "done", Value: true}, {Key: "payload", Value: bson.Binary{Data: []byte(forged)}}, {Key: "ok", Value: 1}}
			default:
				out, err := conv.Step(string(payload))
				if err != nil {
					reply = bson.D{{Key: "ok", Value: 0}, {Key: "errmsg", Value: "Authentication failed."}, {Key: "code", Value: 18}}
					break
				}
				reply = bson.D{{Key: "conversationId", Value: int32(1)}, {Key: "done", Value: s.skipEmpty}, {Key: "payload", Value: bson.Binary{Data: []byte(out)}}, {Key: "ok", Value: 1}}
			}
		case "ping":
			reply = bson.D{{Key: "ok", Value: 1}}
		default:
			reply = bson.D{{Key: "ok", Value: 0}, {Key: "errmsg", Value: "unexpected command"}}
		}
		body, _ := bson.Marshal(reply)
		if _, err := conn.Write(appendOpMsg(nil, 1, h.RequestID, &OpMsg{Body: body})); err != nil {
			return
		}
	}
}

// TestUpstreamSCRAMConversation runs the proxy's SCRAM client against
// xdg-go/scram's server: both mechanisms, with and without the final empty
// exchange, and servers that must not be believed.
func TestUpstreamSCRAMConversation(t *testing.T) {
	const user, password = "proxy", "s3cret-ü" // non-ASCII: SASLprep and the SHA-1 digest both matter
	dial := func(t *testing.T, srv scramServer, mechanism, pw string) error {
		t.Helper()
		addr := srv.start(t)
		cred, err := newUpstreamCred(user, pw, "admin", mechanism)
		if err != nil {
			t.Fatal(err)
		}
		u, err := upstreamConfig{addr: addr, cred: cred}.dial(context.Background(), 1<<20)
		if err != nil {
			return err
		}
		defer u.Close()
		// Authenticated, and the connection still carries commands in order.
		_, err = u.command("admin", bsoncore.AppendInt32Element(nil, "ping", 1))
		return err
	}
	for _, mech := range []string{mechSCRAMSHA256, mechSCRAMSHA1} {
		t.Run(mech, func(t *testing.T) {
			if err := dial(t, scramServer{password: password, skipEmpty: true}, mech, password); err != nil {
				t.Errorf("skipEmptyExchange: %v", err)
			}
			if err := dial(t, scramServer{password: password}, mech, password); err != nil {
				t.Errorf("with the empty exchange: %v", err)
			}
			err := dial(t, scramServer{password: password, skipEmpty: true}, mech, "wrong")
			if err == nil || !strings.Contains(err.Error(), "authentication failed") {
				t.Errorf("wrong password: err = %v", err)
			}
			if err != nil && strings.Contains(err.Error(), "wrong") {
				t.Errorf("the error quotes the password: %v", err)
			}
			// A server that does not know the password cannot prove it:
			// its success is not believed.
			if err := dial(t, scramServer{password: "other", impostor: true}, mech, password); err == nil || !strings.Contains(err.Error(), "server validation failed") {
				t.Errorf("impostor server: err = %v", err)
			}
			if err := dial(t, scramServer{password: password, earlyDone: true}, mech, password); err == nil {
				t.Error("a server claiming done without its final message was believed")
			}
		})
	}
	// The salted password is derived once per salt, not per connection.
	cred, _ := newUpstreamCred(user, password, "admin", mechSCRAMSHA256)
	addr := scramServer{password: password, skipEmpty: true}.start(t)
	for range 3 {
		u, err := upstreamConfig{addr: addr, cred: cred}.dial(context.Background(), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		_ = u.Close()
	}
}

// toolBinary finds a binary that scripts/install-deps.sh installs: in the
// tools cache first, then on PATH. It skips t when absent, and fails it
// under CI=true, where .ci/run installs it.
func toolBinary(t *testing.T, name string) string {
	t.Helper()
	var dirs []string
	if d := os.Getenv("TENANTGATE_TOOLS_DIR"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		dirs = append(dirs, filepath.Join(d, "tenantgate", "bin"))
	}
	if d, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(d, ".cache", "tenantgate", "bin"))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not found (scripts/install-deps.sh installs it)", name)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// startAuthFerretDB starts a FerretDB of its own, with authentication
// enabled and one user (user/password on admin), on a free port, and
// returns its address. The shared test server runs without authentication.
func startAuthFerretDB(t *testing.T, user, password string) string {
	t.Helper()
	bin := toolBinary(t, "ferretdb")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		cmd := exec.Command(bin,
			"--handler=sqlite", "--sqlite-url=file:"+filepath.Join(dir, "data")+"/",
			"--state-dir="+dir, "--listen-addr="+addr, "--debug-addr=-", "--telemetry=disable",
			"--test-enable-new-auth", "--setup-database=admin", "--setup-username="+user, "--setup-password="+password,
			"--log-level=warn")
		logf, err := os.Create(filepath.Join(dir, "ferretdb.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait(); _ = logf.Close() }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		if waitListening(addr, exited) {
			return addr
		}
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "ferretdb.log"))
			t.Fatalf("ferretdb with authentication did not start on %s:\n%s", addr, log)
		}
	}
}

// waitListening waits until addr answers hello, or the process exits.
func waitListening(addr string, exited <-chan error) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		u, err := upstreamConfig{addr: addr}.connect(ctx, 1<<20)
		cancel()
		if err == nil {
			_ = u.conn.SetDeadline(time.Now().Add(2 * time.Second))
			_, err = u.command("admin", bsoncore.AppendInt32Element(nil, "hello", 1))
			_ = u.Close()
			if err == nil {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// TestUpstreamSCRAMFerretDB: the proxy authenticates to a FerretDB that
// requires authentication, with the negotiated mechanism and with each one
// forced, in both modes; tenants work as usual through it.
func TestUpstreamSCRAMFerretDB(t *testing.T) {
	const user, password = "tgproxy", "p@ss:w/rd ü"
	addr := startAuthFerretDB(t, user, password)
	esc := url.UserPassword(user, password).String()
	ctx := ctxT(t)

	// The server really refuses the unauthenticated, so what follows proves
	// the proxy authenticated.
	anon := connect(t, options.Client().ApplyURI("mongodb://"+addr+"/").SetServerSelectionTimeout(5*time.Second))
	if _, err := anon.Database("x").Collection("y").InsertOne(ctx, bson.D{{Key: "a", Value: 1}}); err == nil {
		t.Fatal("the auth-enabled FerretDB accepted an unauthenticated insert")
	}

	for _, mech := range []string{"", mechSCRAMSHA256, mechSCRAMSHA1} {
		for _, mode := range []string{ModeDatabase, ModeField} {
			t.Run(fmt.Sprintf("%s/%s", mode, mech), func(t *testing.T) {
				upstream := "mongodb://" + esc + "@" + addr + "/?authSource=admin"
				if mech != "" {
					upstream += "&authMechanism=" + mech
				}
				p := startProxyAt(t, upstream, Options{Mode: mode})
				if mech == "" && p.engine.upstream.cred.mechanism != mechSCRAMSHA256 {
					t.Errorf("negotiated %q, want %s", p.engine.upstream.cred.mechanism, mechSCRAMSHA256)
				}
				db := uniqueDB()
				acme := p.client("acme").Database(db).Collection("docs")
				globex := p.client("globex").Database(db).Collection("docs")
				if _, err := acme.InsertOne(ctx, bson.D{{Key: "_id", Value: "a1"}, {Key: "v", Value: "acme"}}); err != nil {
					t.Fatalf("acme insert through the authenticated upstream: %v", err)
				}
				if _, err := globex.InsertOne(ctx, bson.D{{Key: "_id", Value: "g1"}, {Key: "v", Value: "globex"}}); err != nil {
					t.Fatalf("globex insert: %v", err)
				}
				for c, want := range map[*mongo.Collection]string{acme: "acme", globex: "globex"} {
					cur, err := c.Find(ctx, bson.D{})
					if err != nil {
						t.Fatal(err)
					}
					var docs []bson.M
					if err := cur.All(ctx, &docs); err != nil {
						t.Fatal(err)
					}
					if len(docs) != 1 || docs[0]["v"] != want {
						t.Errorf("%s sees %v", want, docs)
					}
				}
			})
		}
	}

	t.Run("wrong password", func(t *testing.T) {
		_, err := New(ctx, Options{Upstream: "mongodb://" + user + ":nope-nope@" + addr + "/"})
		if err == nil || !strings.Contains(err.Error(), "authentication failed") {
			t.Fatalf("New with a wrong password: err = %v", err)
		}
		if strings.Contains(err.Error(), "nope-nope") {
			t.Fatalf("the error quotes the password: %v", err)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		_, err := New(ctx, Options{Upstream: "mongodb://nobody:" + "x@" + addr + "/"})
		if err == nil {
			t.Fatal("New with an unknown user succeeded")
		}
	})
}
