package auth

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fast keeps the tests quick; the format and the checks are the same.
var fast = Params{Time: 1, MemoryKiB: 1024, Threads: 1, KeyLen: 32}

func TestPasswordHashAndVerify(t *testing.T) {
	ctx := context.Background()
	h, err := HashPassword(ctx, "correct horse battery", fast)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") || strings.Contains(h, "correct horse") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := HashPassword(ctx, "correct horse battery", fast)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if ok, err := VerifyPassword(ctx, h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("the right password: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword(ctx, h, "correct horse batterY"); ok {
		t.Fatal("a wrong password matched")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=99999999,t=1,p=1$AAAA$" + strings.Repeat("A", 43), "plain"} {
		if ok, err := VerifyPassword(ctx, bad, "x"); ok || err == nil {
			t.Errorf("malformed hash %q: %v %v", bad, ok, err)
		}
	}
	// The default parameters are RFC 9106's second option.
	if DefaultParams != (Params{Time: 3, MemoryKiB: 65536, Threads: 4, KeyLen: 32}) {
		t.Fatalf("default parameters %+v", DefaultParams)
	}
}

func TestPasswordRules(t *testing.T) {
	for pw, ok := range map[string]bool{
		"short":                     false,
		"exactly12chr":              true,
		"with\nnewline and length":  false,
		"\xff\xfe not utf-8 at all": false,
		strings.Repeat("é", 12):     true,
		strings.Repeat("a", 513):    false,
		GeneratePassword():          true,
	} {
		if err := CheckPassword(pw); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", pw, err, ok)
		}
	}
}

func TestCSRFTokenIsBoundToTheSession(t *testing.T) {
	a, b := "pxs_session_a", "pxs_session_b"
	if !CheckCSRF(a, CSRFToken(a)) {
		t.Fatal("the session's own token refused")
	}
	if CheckCSRF(a, CSRFToken(b)) || CheckCSRF(a, "") || CheckCSRF(a, a) {
		t.Fatal("another session's token, none, or the session secret itself passed")
	}
	r := httptest.NewRequest("POST", "https://api.example:7070/api/v1/apps", nil)
	for origin, ok := range map[string]bool{"": true, "https://api.example:7070": true, "https://evil.example": false, "http://api.example:7070": false, "null": false} {
		r.Header.Set("Origin", origin)
		if SameOrigin(r) != ok {
			t.Errorf("Origin %q: want %v", origin, ok)
		}
	}
}

// TestTOTPWithAFakeClock checks RFC 6238 codes at chosen times: the
// code of the step, the steps beside it (skew), and nothing further.
func TestTOTPWithAFakeClock(t *testing.T) {
	secret, uri, err := NewTOTP("alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(uri, "otpauth://totp/Proximity:alice?") || !strings.Contains(uri, "secret="+secret) {
		t.Fatalf("uri %q", uri)
	}
	at := time.Date(2026, 11, 30, 12, 0, 15, 0, time.UTC) // inside a step
	code, err := TOTPCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	step, ok := CheckTOTP(secret, code, at)
	if !ok || step != uint64(at.Unix())/30 {
		t.Fatalf("the step's own code: %v %d", ok, step)
	}
	for _, d := range []time.Duration{-30 * time.Second, 30 * time.Second} {
		if _, ok := CheckTOTP(secret, code, at.Add(d)); !ok {
			t.Errorf("a code %s off refused", d)
		}
	}
	for _, d := range []time.Duration{-90 * time.Second, 90 * time.Second} {
		if _, ok := CheckTOTP(secret, code, at.Add(d)); ok {
			t.Errorf("a code %s off accepted", d)
		}
	}
	if _, ok := CheckTOTP(secret, "000000", at); ok && code != "000000" {
		t.Error("a wrong code accepted")
	}
	// RFC 6238's SHA-1 test vector: secret "12345678901234567890" at
	// 59 s gives 94287082 (eight digits), so 287082 with six.
	rfc := "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	if c, _ := TOTPCode(rfc, time.Unix(59, 0)); c != "287082" {
		t.Errorf("RFC 6238 vector: %s, want 287082", c)
	}
	codes, hashes := NewRecoveryCodes(10)
	if len(codes) != 10 || !IsRecoveryCode(codes[0]) || HashRecoveryCode(strings.ToUpper(codes[0])) != hashes[0] {
		t.Fatalf("recovery codes %v", codes)
	}
}
