// Package secrets seals the secrets a coordinator keeps in its replicated
// state (the cluster CA's private key, and later client secrets) with
// AES-256-GCM, so that neither the Raft log, nor a snapshot, nor a copy of
// a data directory holds them in the clear.
//
// The keys live outside Raft: a coordinator derives them from the cluster
// key file (see coordinator/cluster), which every server of a cluster
// shares and which is never written to the data directory of a server.
//
// A Keyring holds one or more keys; the first is the primary, which
// seals. Any key of the ring opens what it sealed, so a rotation installs
// a new key beside the old, makes it primary, re-seals, and only then
// removes the old. Every sealed value names the key that sealed it and is
// bound to its purpose (the additional data), so a value sealed for one
// purpose does not open as another.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the size of a sealing key (AES-256).
const KeySize = 32

// Key is one sealing key with its ID, a short fingerprint that names it in
// sealed values without revealing it.
type Key struct {
	id  string
	raw [KeySize]byte
}

// NewKey wraps raw key material.
func NewKey(raw []byte) (Key, error) {
	if len(raw) != KeySize {
		return Key{}, fmt.Errorf("a sealing key is %d bytes, not %d", KeySize, len(raw))
	}
	var k Key
	copy(k.raw[:], raw)
	sum := sha256.Sum256(append([]byte("proximity seal key id\x00"), raw...))
	k.id = hex.EncodeToString(sum[:6])
	return k, nil
}

// ID names the key.
func (k Key) ID() string { return k.id }

// Sealed is a sealed secret as it is stored.
type Sealed struct {
	KeyID string `json:"key_id"`
	Nonce []byte `json:"nonce"`
	Data  []byte `json:"data"`
}

// Keyring is an ordered set of keys; the first seals.
type Keyring struct {
	keys []Key
}

// NewKeyring makes a keyring whose primary is keys[0].
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("a keyring needs at least one key")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if k.id == "" {
			return nil, errors.New("keyring: a key was not made with NewKey")
		}
		if seen[k.id] {
			return nil, fmt.Errorf("keyring: key %s appears twice", k.id)
		}
		seen[k.id] = true
	}
	return &Keyring{keys: append([]Key(nil), keys...)}, nil
}

// PrimaryID is the ID of the key that seals.
func (r *Keyring) PrimaryID() string { return r.keys[0].id }

// IDs are the IDs of every key, primary first.
func (r *Keyring) IDs() []string {
	out := make([]string, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.id
	}
	return out
}

// Has reports whether the ring holds the key with this ID.
func (r *Keyring) Has(id string) bool {
	_, ok := r.key(id)
	return ok
}

func (r *Keyring) key(id string) (Key, bool) {
	for _, k := range r.keys {
		if k.id == id {
			return k, true
		}
	}
	return Key{}, false
}

func aead(k Key) (cipher.AEAD, error) {
	b, err := aes.NewCipher(k.raw[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Seal encrypts plaintext under the primary key, bound to purpose.
func (r *Keyring) Seal(purpose string, plaintext []byte) (*Sealed, error) {
	k := r.keys[0]
	g, err := aead(k)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", purpose, err)
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal %s: %w", purpose, err)
	}
	return &Sealed{KeyID: k.id, Nonce: nonce, Data: g.Seal(nil, nonce, plaintext, []byte(purpose))}, nil
}

// ErrUnknownKey is a sealed value whose key is not in the ring.
var ErrUnknownKey = errors.New("sealed with a key this keyring does not hold")

// Open decrypts a value sealed for purpose by any key of the ring.
func (r *Keyring) Open(purpose string, s *Sealed) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("open %s: nothing sealed", purpose)
	}
	k, ok := r.key(s.KeyID)
	if !ok {
		return nil, fmt.Errorf("open %s: key %s: %w", purpose, s.KeyID, ErrUnknownKey)
	}
	g, err := aead(k)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", purpose, err)
	}
	if len(s.Nonce) != g.NonceSize() {
		return nil, fmt.Errorf("open %s: bad nonce", purpose)
	}
	out, err := g.Open(nil, s.Nonce, s.Data, []byte(purpose))
	if err != nil {
		return nil, fmt.Errorf("open %s: the sealed value does not authenticate under key %s", purpose, s.KeyID)
	}
	return out, nil
}
