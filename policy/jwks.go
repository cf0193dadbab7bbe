package policy

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/time/rate"
)

// jwksHTTPTimeout bounds one JWKS fetch. It also bounds how long a Verify
// call may wait for the unknown-kid rate limiter plus the refresh it
// unlocks, so a flood of tokens with made-up kids cannot pin callers.
const jwksHTTPTimeout = 10 * time.Second

// jwksSource serves the keys of a remote JWK Set. It is a thin layer over
// github.com/MicahParks/jwkset (the storage keyfunc/v3 uses), built directly
// so that it can track when the key set changes: a verification cached
// against a key that a rotation has since removed must not outlive it.
type jwksSource struct {
	ctx     context.Context // ends with the Verifier; bounds refreshes
	keys    *trackedStorage // the fetched keys, swapped on every refresh
	storage jwkset.Storage  // keys plus rate-limited refresh on unknown kid
}

type jwksOptions struct {
	url             string
	client          *http.Client
	refresh         time.Duration // periodic refresh interval
	unknownKIDEvery time.Duration // minimum interval between unknown-kid refreshes
	logger          *slog.Logger
}

// newJWKSSource fetches the key set once (an unreachable or invalid JWKS at
// start is a configuration error the operator should see) and starts the
// periodic refresh, which stops when ctx ends.
func newJWKSSource(ctx context.Context, o jwksOptions) (*jwksSource, error) {
	keys := &trackedStorage{MemoryJWKSet: jwkset.NewMemoryStorage()}
	client := o.client
	if client == nil {
		client = &http.Client{Timeout: jwksHTTPTimeout}
	}
	httpStore, err := jwkset.NewStorageFromHTTP(o.url, jwkset.HTTPClientStorageOptions{
		Client:          client,
		Ctx:             ctx,
		HTTPTimeout:     jwksHTTPTimeout,
		RefreshInterval: o.refresh,
		RefreshErrorHandler: func(ctx context.Context, err error) {
			// The previous key set stays in use: tokens keep verifying
			// against keys we already trust while the IdP is unreachable.
			o.logger.WarnContext(ctx, "JWKS refresh failed; keeping the previous key set", "url", o.url, "error", err)
		},
		Storage: keys,
	})
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", o.url, err)
	}
	storage, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{o.url: httpStore},
		RateLimitWaitMax:  jwksHTTPTimeout,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(o.unknownKIDEvery), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", o.url, err)
	}
	return &jwksSource{ctx: ctx, keys: keys, storage: storage}, nil
}

// generation changes whenever the fetched key set changes.
func (s *jwksSource) generation() uint64 { return s.keys.gen.Load() }

// key returns the public key with the given kid for a token signed with alg.
// An unknown kid makes jwkset refresh the set (rate limited) before giving up.
func (s *jwksSource) key(kid, alg string) (any, error) {
	jwk, err := s.storage.KeyRead(s.ctx, kid)
	if err != nil {
		return nil, Refuse(ReasonUnknownKID, "no key with kid %s in the JWKS", quoteShort(kid))
	}
	m := jwk.Marshal()
	if m.ALG != "" && m.ALG.String() != alg {
		return nil, Refuse(ReasonBadAlg, "key %s is for %s, token uses %s", quoteShort(kid), quoteShort(m.ALG.String()), alg)
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, Refuse(ReasonBadAlg, "key %s is not a signing key", quoteShort(kid))
	}
	key := publicOf(jwk.Key())
	if !keyFitsAlg(key, alg) {
		return nil, Refuse(ReasonBadAlg, "key %s cannot verify %s", quoteShort(kid), alg)
	}
	return key, nil
}

// forAlg returns every fetched key that may verify alg; it serves tokens
// without a kid.
func (s *jwksSource) forAlg(alg string) []any {
	all, err := s.keys.KeyReadAll(s.ctx)
	if err != nil {
		return nil
	}
	var keys []any
	for _, jwk := range all {
		m := jwk.Marshal()
		if (m.ALG != "" && m.ALG.String() != alg) || (m.USE != "" && m.USE != jwkset.UseSig) {
			continue
		}
		if key := publicOf(jwk.Key()); keyFitsAlg(key, alg) {
			keys = append(keys, key)
		}
	}
	return keys
}

// publicOf returns the public half of a private key (a JWKS should never
// carry private keys, but jwkset parses them) and any other key unchanged.
func publicOf(key any) any {
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		return pk.Public()
	}
	return key
}

// trackedStorage is a jwkset in-memory storage that counts the refreshes
// that changed the key set.
type trackedStorage struct {
	*jwkset.MemoryJWKSet
	gen         atomic.Uint64
	fingerprint atomic.Pointer[[sha256.Size]byte]
}

// KeyReplaceAll is what every jwkset refresh calls with the fetched set.
func (t *trackedStorage) KeyReplaceAll(ctx context.Context, given []jwkset.JWK) error {
	if err := t.MemoryJWKSet.KeyReplaceAll(ctx, given); err != nil {
		return err
	}
	fp, err := fingerprint(given)
	if err != nil {
		t.gen.Add(1) // cannot tell: assume it changed
		return nil
	}
	if old := t.fingerprint.Swap(&fp); old == nil || *old != fp {
		t.gen.Add(1)
	}
	return nil
}

func fingerprint(keys []jwkset.JWK) ([sha256.Size]byte, error) {
	ms := make([]jwkset.JWKMarshal, len(keys))
	for i, k := range keys {
		ms[i] = k.Marshal()
	}
	b, err := json.Marshal(ms)
	if err != nil {
		return [sha256.Size]byte{}, errors.Join(errors.New("fingerprint JWKS"), err)
	}
	return sha256.Sum256(b), nil
}

// quoteShort quotes an attacker-supplied header value for an error detail,
// cut short so that details stay short and logs stay readable.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		s = s[:max] + "..."
	}
	return fmt.Sprintf("%q", s)
}
