package cluster

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"

	"github.com/proximity-ve/proximity/internal/secrets"
)

// KeySize is the size of a cluster key.
const KeySize = 32

// ClusterKey is one cluster key: 32 random bytes, written base64 in the
// key file. Every other secret between servers is derived from it with
// HKDF-SHA256 under its own label, so the key itself is never used twice:
// the gossip encryption key, the sealing key for secrets in Raft, and the
// seed of the server CA that signs the certificates of Raft and
// server-to-server TLS.
type ClusterKey struct {
	raw [KeySize]byte
	id  string
}

// GenerateKey makes a new random cluster key and returns its text form.
func GenerateKey() (string, error) {
	var raw [KeySize]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate cluster key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(raw[:]), nil
}

// ParseKey reads a key's text form.
func ParseKey(s string) (ClusterKey, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(raw) != KeySize {
		return ClusterKey{}, errors.New("a cluster key is 32 bytes in base64 (make one with `proximity-coordinator keygen`)")
	}
	var k ClusterKey
	copy(k.raw[:], raw)
	sum := sha256.Sum256(append([]byte("proximity cluster key id\x00"), raw...))
	k.id = hex.EncodeToString(sum[:6])
	return k, nil
}

// ID is the key's fingerprint: it names the key in logs and in the API
// without revealing it.
func (k ClusterKey) ID() string { return k.id }

func (k ClusterKey) derive(label string) []byte {
	out, err := hkdf.Key(sha256.New, k.raw[:], nil, "proximity "+label+" v1", 32)
	if err != nil {
		// Only a length beyond 255 hashes fails; 32 bytes cannot.
		panic("hkdf: " + err.Error())
	}
	return out
}

// gossipKey is the AES-256 key of memberlist's encryption.
func (k ClusterKey) gossipKey() []byte { return k.derive("gossip") }

// sealKey is the key that seals secrets in Raft.
func (k ClusterKey) sealKey() secrets.Key {
	sk, err := secrets.NewKey(k.derive("seal"))
	if err != nil {
		panic(err) // derive returns KeySize bytes
	}
	return sk
}

// serverCA is the CA of server-to-server TLS derived from the key. Its
// certificate is deterministic (Ed25519 signatures are, and every field
// is fixed), so every server holding the key has the same CA without
// exchanging anything, and a server with another key has another CA.
func (k ClusterKey) serverCA() (*x509.Certificate, ed25519.PrivateKey, error) {
	priv := ed25519.NewKeyFromSeed(k.derive("server ca"))
	serial := new(big.Int).SetBytes(k.derive("server ca serial")[:16])
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Proximity server CA " + k.id, Organization: []string{"Proximity"}},
		NotBefore:             time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2125, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		return nil, nil, fmt.Errorf("server CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("server CA: %w", err)
	}
	return cert, priv, nil
}

// Keys is the cluster keyring: the keys of the key file in order; the
// first is primary (it encrypts gossip, seals secrets and signs this
// server's certificate) and every key is accepted.
type Keys []ClusterKey

// Primary is the key in use.
func (ks Keys) Primary() ClusterKey { return ks[0] }

// IDs are the keys' fingerprints, primary first.
func (ks Keys) IDs() []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.id
	}
	return out
}

// Sealer is the keyring that seals and opens secrets in Raft.
func (ks Keys) Sealer() *secrets.Keyring {
	sk := make([]secrets.Key, len(ks))
	for i, k := range ks {
		sk[i] = k.sealKey()
	}
	r, err := secrets.NewKeyring(sk...)
	if err != nil {
		panic(err) // ParseKeys refuses duplicates and empty rings
	}
	return r
}

// ParseKeys reads a key file: one base64 key a line, the primary first;
// blank lines and lines starting with # are ignored.
func ParseKeys(b []byte) (Keys, error) {
	var ks Keys
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		k, err := ParseKey(t)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if seen[k.id] {
			return nil, fmt.Errorf("line %d: key %s appears twice", line, k.id)
		}
		seen[k.id] = true
		ks = append(ks, k)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, errors.New("no key in the file (make one with `proximity-coordinator keygen --out FILE`)")
	}
	if len(ks) > 8 {
		return nil, errors.New("more than 8 keys: remove the ones no longer in use")
	}
	return ks, nil
}

// LoadKeys reads the cluster key file. It refuses a file that others can
// read: the key is the root of trust between servers.
func LoadKeys(path string) (Keys, error) {
	if path == "" {
		return nil, errors.New("--cluster-key-file: required (make a key with `proximity-coordinator keygen --out FILE` and give every server of the cluster the same file)")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--cluster-key-file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("--cluster-key-file %s: mode %o lets other users read the cluster key; chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--cluster-key-file: %w", err)
	}
	ks, err := ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("--cluster-key-file %s: %w", path, err)
	}
	return ks, nil
}

// WriteNewKeyFile writes a new key to path (mode 0600). It refuses to
// overwrite a file, so a typo cannot replace a cluster's key.
func WriteNewKeyFile(path string) (ClusterKey, error) {
	text, err := GenerateKey()
	if err != nil {
		return ClusterKey{}, err
	}
	k, err := ParseKey(text)
	if err != nil {
		return ClusterKey{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return ClusterKey{}, fmt.Errorf("write cluster key: %w", err)
	}
	_, werr := f.WriteString(text + "\n")
	serr := f.Sync()
	if err := errors.Join(werr, serr, f.Close()); err != nil {
		return ClusterKey{}, fmt.Errorf("write cluster key: %w", err)
	}
	return k, nil
}
