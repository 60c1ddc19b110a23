package secrets

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func newKey(t *testing.T) Key {
	t.Helper()
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	k, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRotate(t *testing.T) {
	a, b := newKey(t), newKey(t)
	old, err := NewKeyring(a)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("the CA's private key")
	s, err := old.Seal("ca-key", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s.Data, secret) {
		t.Fatal("sealed data holds the plaintext")
	}
	if s.KeyID != a.ID() {
		t.Fatalf("sealed by %s, want the primary %s", s.KeyID, a.ID())
	}
	// Both keys installed, the new one primary: old values open, new ones
	// are sealed by the new key.
	both, err := NewKeyring(b, a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := both.Open("ca-key", s)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open with both keys: %q, %v", got, err)
	}
	s2, err := both.Seal("ca-key", secret)
	if err != nil || s2.KeyID != b.ID() {
		t.Fatalf("reseal: %+v, %v", s2, err)
	}
	// The old key removed: only the re-sealed value opens.
	only, _ := NewKeyring(b)
	if _, err := only.Open("ca-key", s); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("open an old value without its key: %v", err)
	}
	if got, err := only.Open("ca-key", s2); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open the re-sealed value: %q, %v", got, err)
	}
}

func TestSealedValueIsBoundToItsPurposeAndKey(t *testing.T) {
	a := newKey(t)
	r, _ := NewKeyring(a)
	s, _ := r.Seal("ca-key", []byte("x"))
	if _, err := r.Open("oidc-secret", s); err == nil {
		t.Fatal("a value sealed as ca-key opened as oidc-secret")
	}
	bad := *s
	bad.Data = append([]byte(nil), s.Data...)
	bad.Data[0] ^= 1
	if _, err := r.Open("ca-key", &bad); err == nil {
		t.Fatal("a tampered value opened")
	}
	// A key of the same ID but other material (impossible by
	// construction, as the ID is its fingerprint) would not open it
	// either: a different ring with another key refuses by ID.
	other, _ := NewKeyring(newKey(t))
	if _, err := other.Open("ca-key", s); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("another ring: %v", err)
	}
	if _, err := NewKeyring(a, a); err == nil {
		t.Fatal("a ring with a key twice")
	}
	if _, err := NewKey(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte key")
	}
}
