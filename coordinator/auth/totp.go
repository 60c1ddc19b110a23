package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP is RFC 6238 with the parameters every authenticator app accepts:
// SHA-1, six digits, 30-second steps; a code of the step before or after
// is accepted too (clock skew), and each step's code is accepted once.
const (
	totpPeriod = 30
	totpSkew   = 1
)

// NewTOTP makes a new TOTP secret for account and its otpauth:// URI.
func NewTOTP(account string) (secret, uri string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: "Proximity", AccountName: account, Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", "", err
	}
	return key.Secret(), key.URL(), nil
}

// CheckTOTP reports whether code is valid for secret at now, and the time
// step it belongs to (so that a step is accepted once).
func CheckTOTP(secret, code string, now time.Time) (step uint64, ok bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, false
	}
	for d := -totpSkew; d <= totpSkew; d++ {
		t := now.Add(time.Duration(d*totpPeriod) * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && hmacEqual(want, code) {
			return uint64(t.Unix()) / totpPeriod, true
		}
	}
	return 0, false
}

func hmacEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// NewRecoveryCodes makes n one-time recovery codes (50 random bits each,
// as xxxxx-xxxxx) and the hashes to store.
func NewRecoveryCodes(n int) (codes, hashes []string) {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	for i := 0; i < n; i++ {
		var b [7]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic("crypto/rand: " + err.Error())
		}
		s := strings.ToLower(enc.EncodeToString(b[:]))[:10]
		code := s[:5] + "-" + s[5:]
		codes = append(codes, code)
		hashes = append(hashes, HashRecoveryCode(code))
	}
	return codes, hashes
}

// HashRecoveryCode is the stored form of a recovery code.
func HashRecoveryCode(code string) string {
	sum := sha256.Sum256([]byte("proximity recovery\x00" + strings.ToLower(strings.TrimSpace(code))))
	return hex.EncodeToString(sum[:])
}

// IsRecoveryCode says whether s has a recovery code's form.
func IsRecoveryCode(s string) bool {
	s = strings.TrimSpace(s)
	return len(s) == 11 && s[5] == '-'
}

// TOTPCode is a secret's code at t (for tests and tools).
func TOTPCode(secret string, t time.Time) (string, error) {
	c, err := totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", fmt.Errorf("totp code: %w", err)
	}
	return c, nil
}
