package policy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Key-size floors. RFC 7518 §3.2 requires an HMAC key at least as long as
// the hash output; 32 bytes is the floor for HS256 and we apply it to every
// HS* algorithm. RSA keys below 2048 bits are factorable by a determined
// attacker and are refused outright.
const (
	minHMACSecretLen = 32
	minRSABits       = 2048
)

// Algorithm families. The family a token may use is decided by the keys the
// operator configured, never by the token's own header: that is what stops
// alg-confusion attacks such as HS256 signed with an RSA public key.
const (
	familyHMAC    = "HMAC"
	familyRSA     = "RSA"
	familyECDSA   = "ECDSA"
	familyEd25519 = "Ed25519"
)

// familyOf maps every JWS algorithm this package can verify to its key
// family, and anything else ("none" included) to "".
func familyOf(alg string) string {
	switch alg {
	case "HS256", "HS384", "HS512":
		return familyHMAC
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return familyRSA
	case "ES256", "ES384", "ES512":
		return familyECDSA
	case "EdDSA":
		return familyEd25519
	default:
		return ""
	}
}

// curveOf is the only curve each ES* algorithm may be used with
// (RFC 7518 §3.4); nil for any other algorithm.
func curveOf(alg string) elliptic.Curve {
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	case "ES512":
		return elliptic.P521()
	default:
		return nil
	}
}

// asymmetricAlgs are the algorithms a JWKS may serve keys for. Symmetric
// keys are never taken from a JWKS: a key set published over HTTP is public,
// and an HMAC key that is public lets anyone mint tokens.
func asymmetricAlgs() []string {
	return []string{
		"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
		"ES256", "ES384", "ES512", "EdDSA",
	}
}

// staticKeys holds the keys configured inline: an HMAC secret and PEM public
// keys. It is immutable after construction.
type staticKeys struct {
	secret  []byte
	rsa     []*rsa.PublicKey
	ecdsa   []*ecdsa.PublicKey
	ed25519 []ed25519.PublicKey
}

// newStaticKeys validates the secret and parses each PEM entry. An entry may
// hold several PEM blocks (a bundle); every block must be a public key or a
// certificate.
func newStaticKeys(secret []byte, pems [][]byte) (*staticKeys, error) {
	k := &staticKeys{}
	if len(secret) > 0 {
		if len(secret) < minHMACSecretLen {
			return nil, fmt.Errorf("HMAC secret is %d bytes; at least %d are required", len(secret), minHMACSecretLen)
		}
		k.secret = append([]byte(nil), secret...)
	}
	for i, data := range pems {
		if err := k.addPEM(data); err != nil {
			return nil, fmt.Errorf("public key PEM #%d: %w", i, err)
		}
	}
	return k, nil
}

func (k *staticKeys) addPEM(data []byte) error {
	blocks := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		blocks++
		pub, err := parsePEMBlock(block)
		if err != nil {
			return fmt.Errorf("block %d (%s): %w", blocks, block.Type, err)
		}
		if err := k.addPublic(pub); err != nil {
			return fmt.Errorf("block %d (%s): %w", blocks, block.Type, err)
		}
	}
	if blocks == 0 {
		return errors.New("no PEM block found")
	}
	return nil
}

func parsePEMBlock(block *pem.Block) (any, error) {
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY":
		// The sidecar only verifies. A private key in its configuration
		// means signing material was copied somewhere it need not be.
		return nil, errors.New("a private key was given; configure the public key instead")
	default:
		return nil, errors.New("unsupported PEM block type")
	}
}

func (k *staticKeys) addPublic(pub any) error {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key is %d bits; at least %d are required", p.N.BitLen(), minRSABits)
		}
		k.rsa = append(k.rsa, p)
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("unsupported ECDSA curve %s", p.Curve.Params().Name)
		}
		k.ecdsa = append(k.ecdsa, p)
	case ed25519.PublicKey:
		k.ed25519 = append(k.ed25519, p)
	default:
		return fmt.Errorf("unsupported public key type %T", pub)
	}
	return nil
}

// algorithms lists the algorithms the configured static keys can verify.
func (k *staticKeys) algorithms() []string {
	var algs []string
	if k.secret != nil {
		algs = append(algs, "HS256", "HS384", "HS512")
	}
	if len(k.rsa) > 0 {
		algs = append(algs, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
	}
	for _, alg := range []string{"ES256", "ES384", "ES512"} {
		for _, p := range k.ecdsa {
			if p.Curve == curveOf(alg) {
				algs = append(algs, alg)
				break
			}
		}
	}
	if len(k.ed25519) > 0 {
		algs = append(algs, "EdDSA")
	}
	return algs
}

// forAlg returns the static keys that may verify a token signed with alg.
func (k *staticKeys) forAlg(alg string) []any {
	var keys []any
	switch familyOf(alg) {
	case familyHMAC:
		if k.secret != nil {
			keys = append(keys, k.secret)
		}
	case familyRSA:
		for _, p := range k.rsa {
			keys = append(keys, p)
		}
	case familyECDSA:
		for _, p := range k.ecdsa {
			if p.Curve == curveOf(alg) {
				keys = append(keys, p)
			}
		}
	case familyEd25519:
		for _, p := range k.ed25519 {
			keys = append(keys, p)
		}
	}
	return keys
}

// keyFitsAlg reports whether key is of the type (and, for ECDSA, the curve)
// that alg requires. It guards keys that come from a JWKS, whose "kty" and
// "alg" are data fetched over the network.
func keyFitsAlg(key any, alg string) bool {
	switch familyOf(alg) {
	case familyRSA:
		_, ok := key.(*rsa.PublicKey)
		return ok
	case familyECDSA:
		p, ok := key.(*ecdsa.PublicKey)
		return ok && p.Curve == curveOf(alg)
	case familyEd25519:
		_, ok := key.(ed25519.PublicKey)
		return ok
	default:
		return false // HMAC keys never come from a JWKS
	}
}
